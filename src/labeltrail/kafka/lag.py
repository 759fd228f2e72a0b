"""How far a consumer group is behind: its committed offsets against the log's ends, per
partition (``labeltrail status``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from labeltrail.config import Settings
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
    settings: Settings, group: str, topics: Sequence[str], *, timeout: float = 30.0
) -> list[PartitionLag]:
    """Every partition of ``topics`` (missing topics left out) with the group's committed offset.

    Ends are read from each partition's leader (:func:`labeltrail.kafka.log.end_positions`),
    committed offsets with the admin API, which does not join the group.
    """
    ends = end_positions(settings, topics)
    if not ends:
        return []
    admin, _errors = _quiet_admin(settings)
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(p.topic, p.partition) for p in ends]
    )
    try:
        future = admin.list_consumer_group_offsets(
            [request], request_timeout=max(timeout, PREFLIGHT_TIMEOUT_S)
        )[group]
        result = future.result(timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        raise LabeltrailError(f"cannot read the offsets of group {group}: {exc}") from exc
    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in result.topic_partitions or []
        if tp.error is None and tp.offset >= 0
    }
    return [
        PartitionLag(p.topic, p.partition, p.offset, committed.get((p.topic, p.partition)))
        for p in ends
    ]
