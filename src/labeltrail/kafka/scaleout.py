"""Several workers of one stage: keyed inputs split by the consumer group, rebuilt on rebalance.

Topics keyed by comment id are co-partitioned (same partition count, murmur2 on the same
key), so the worker that owns partition p of votes also owns partition p of tasks, and a
fold's keyed state never needs another worker's records. Registries that every worker needs
whole (schemas, the annotator pool, reliability estimates, models, the gold set) are
*broadcast* inputs: each worker reads all of their partitions, outside the group, and commits
nothing for them.

On every assignment the worker starts a fresh fold, loads the broadcast inputs to their end,
and restores its keyed partitions up to the group's committed offsets before it processes
anything live (see :mod:`labeltrail.kafka.runner`). Work between a previous owner's last
commit and the rebalance is redone with the same deterministic ids.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from labeltrail.config import Settings
from labeltrail.events.topics import topic_name
from labeltrail.folds.base import Fold
from labeltrail.kafka.consumer import high_watermark, make_consumer
from labeltrail.kafka.runner import StageRunner

__all__ = ["BROADCAST_INPUTS", "GroupStageRunner", "read_to_end"]

log = logging.getLogger(__name__)

BROADCAST_INPUTS = frozenset(
    {"schemas", "annotators", "annotators.status", "quality", "models", "gold"}
)
"""Inputs every worker reads whole: registries, not keyed work."""


def read_to_end(
    consumer: Consumer,
    partitions: list[TopicPartition],
    apply: Callable[[Message], None],
    batch_size: int = 500,
) -> None:
    """Hand every record of ``partitions``, from the start to their end as of now, to
    ``apply`` (with ``consumer``, which is assigned to them and nothing else)."""
    parts = [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
    ends = {(tp.topic, tp.partition): high_watermark(consumer, tp) for tp in parts}
    consumer.assign(parts)
    read: dict[tuple[str, int], int] = {}
    while any(read.get(k, 0) < end for k, end in ends.items()):
        for msg in consumer.consume(batch_size, timeout=0.5):
            if msg.error() is None:
                read[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
                apply(msg)


class GroupStageRunner(StageRunner):
    """One worker of a stage that may run as several processes over the same group."""

    def __init__(
        self,
        make_fold: Callable[[], Fold],
        settings: Settings,
        *,
        group: str | None = None,
        batch_size: int = 500,
        finite: bool = False,
        broadcast: frozenset[str] = BROADCAST_INPUTS,
    ) -> None:
        super().__init__(make_fold(), settings, group=group, batch_size=batch_size, finite=finite)
        self._make_fold = make_fold
        prefix = settings.topic_prefix
        self.broadcast_topics = [topic_name(prefix, s) for s in self.fold.inputs if s in broadcast]
        self.keyed_topics = [topic_name(prefix, s) for s in self.fold.inputs if s not in broadcast]
        # Its own throwaway group id: it only ever uses assign() and never commits.
        self._broadcast = make_consumer(settings, f"{self.group}.broadcast.{uuid.uuid4().hex[:8]}")
        self.rebalances = 0
        self.metrics.vitals.must_own_partitions = False  # a surplus worker holds none

    # assignment --------------------------------------------------------------------------

    def _assign(self) -> None:
        self._consumer.subscribe(
            self.keyed_topics, on_assign=self._on_assign, on_revoke=self._on_revoke
        )

    def _membership(self, settings: Settings) -> dict[str, Any]:
        """Static membership when the worker has a stable instance id: a worker restarted
        under the same id gets its partitions back at once, without waiting for the group to
        notice the old one is gone (``session.timeout.ms``) and rebalancing."""
        if settings.group_instance_id:
            instance = settings.group_instance_id.replace("{hostname}", socket.gethostname())
            return {"group.instance.id": instance}
        return {}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalances += 1
        self._use_fold(self._make_fold())
        self._load_broadcast()
        log.info(
            "%s: assigned %d partitions (rebalance %d)",
            self.fold.name,
            len(partitions),
            self.rebalances,
        )
        self._start_restore(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Everything applied live so far is acknowledged and committed before they go.
        self._settle()

    # broadcast inputs --------------------------------------------------------------------

    def _load_broadcast(self) -> None:
        """Read every broadcast partition from the start to its current end."""
        meta = self._broadcast.list_topics(timeout=30).topics
        parts = [
            TopicPartition(t, p)
            for t in self.broadcast_topics
            if t in meta
            for p in meta[t].partitions
        ]
        read_to_end(self._broadcast, parts, self._apply_broadcast, self.batch_size)
        self._producer.flush()

    def _between_batches(self) -> None:
        messages = self._broadcast.consume(self.batch_size, timeout=0)
        for msg in messages:
            if msg.error() is None:
                self._apply_broadcast(msg)
        if messages:
            self._producer.flush()

    def _apply_broadcast(self, msg: Message) -> None:
        self._handler.broadcast(msg)

    def _close(self) -> None:
        self._broadcast.close()
        super()._close()
