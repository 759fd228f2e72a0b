"""How far a consumer group is behind: its committed offsets against the log's ends, per
partition (``labeltrail status``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from labeltrail.config import Settings
from labeltrail.events.base import LogPosition
from labeltrail.exceptions import LabeltrailError
from labeltrail.kafka.admin import PREFLIGHT_TIMEOUT_S, _quiet_admin
from labeltrail.kafka.log import end_positions

__all__ = ["PartitionLag", "group_lag"]


@dataclass(frozen=True)
class PartitionLag:
    """One input partition of a group: where the log ends, what the group committed (None:
    nothing yet, so everything from offset 0 is still to do) and the records in between."""

    topic: str
    partition: int
    end: int
    committed: int | None

    @property
    def lag(self) -> int:
        return max(self.end - (self.committed or 0), 0)


def group_lag(
    settings: Settings, groups: Mapping[str, Sequence[str]], *, timeout: float = 30.0
) -> dict[str, list[PartitionLag]]:
    """For each consumer group, every partition of its topics (missing topics left out) with
    the group's committed offset.

    The log's ends are read once for all groups, from each partition's leader
    (:func:`labeltrail.kafka.log.end_positions`); the committed offsets with the admin API,
    all groups at once, without joining any.
    """
    wanted = sorted({t for topics in groups.values() for t in topics})
    ends = end_positions(settings, wanted)
    by_topic: dict[str, list[LogPosition]] = {}
    for position in ends:
        by_topic.setdefault(position.topic, []).append(position)
    partitions = {
        group: [p for t in topics for p in by_topic.get(t, [])] for group, topics in groups.items()
    }
    admin, _errors = _quiet_admin(settings)
    futures = {
        group: admin.list_consumer_group_offsets(
            [
                ConsumerGroupTopicPartitions(
                    group, [TopicPartition(p.topic, p.partition) for p in mine]
                )
            ],
            request_timeout=max(timeout, PREFLIGHT_TIMEOUT_S),
        )[group]
        for group, mine in partitions.items()
        if mine
    }
    out: dict[str, list[PartitionLag]] = {}
    for group, mine in partitions.items():
        if group not in futures:
            out[group] = []
            continue
        try:
            result = futures[group].result(timeout=timeout)
        except (KafkaException, TimeoutError) as exc:
            raise LabeltrailError(f"cannot read the offsets of group {group}: {exc}") from exc
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or []
            if tp.error is None and tp.offset >= 0
        }
        out[group] = [
            PartitionLag(p.topic, p.partition, p.offset, committed.get((p.topic, p.partition)))
            for p in mine
        ]
    return out
