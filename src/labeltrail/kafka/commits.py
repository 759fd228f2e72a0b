"""The StageRunner's offset bookkeeping: commit an offset only once its outputs are delivered.

Each consumed batch's outputs are sent under a producer ticket; the batch's next offsets wait
in a queue and are committed (without blocking) as soon as their ticket and every earlier one
are acknowledged. :meth:`Commits.settle` flushes and commits synchronously: before a stage
reports itself caught up, on a rebalance and when it stops. After a failure nothing is
committed any more, so a restart reads the record the stage failed on again.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from labeltrail.kafka.producer import EventProducer

__all__ = ["COMMIT_INTERVAL_S", "COMMIT_PATIENCE_S", "Commits"]

log = logging.getLogger("labeltrail.kafka.runner")

COMMIT_PATIENCE_S = 120.0
"""How long a commit is retried while the group coordinator is away (a broker restart)."""

COMMIT_INTERVAL_S = 0.1
"""At most this often, delivered offsets are committed while records keep arriving."""

_TRANSIENT = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._WAIT_COORD,  # settling (idle, stopping) while the broker restarts
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
    }
)


class Commits:
    """Offsets of records dealt with, committed once the outputs sent before are delivered."""

    def __init__(self, name: str, consumer: Consumer, producer: EventProducer) -> None:
        self.name = name
        self._consumer = consumer
        self._producer = producer
        self.failed = False
        """Set when the stage failed: from then on nothing is committed (see :meth:`settle`)."""
        self._pending: dict[tuple[str, int], int] = {}
        """Next offsets of the current batch's records."""
        self._inflight: deque[tuple[int, dict[tuple[str, int], int]]] = deque()
        """(producer ticket, next offsets) per processed batch, oldest first."""
        self._deliverable: dict[tuple[str, int], int] = {}
        """Offsets whose outputs are acknowledged and that are not committed yet."""
        self._last_commit = 0.0
        self.committed_at: float | None = None
        """When a commit last succeeded (monotonic; the metrics' time since the last commit)."""
        self._done_to: dict[tuple[str, int], int] = {}
        self._committed_to: dict[tuple[str, int], int] = {}

    def reset(self, committed: dict[tuple[str, int], int] | None = None) -> None:
        """Forget everything uncommitted (a new assignment starts from the committed offsets,
        ``committed``)."""
        self._pending.clear()
        self._inflight.clear()
        self._deliverable.clear()
        self._done_to.clear()
        self._committed_to = dict(committed or {})

    def uncommitted(self) -> int:
        """Records dealt with (closed in a batch) whose offsets are not committed yet."""
        return sum(max(at - self._committed_to.get(key, 0), 0) for key, at in self._done_to.items())

    def _committed(self, offsets: list[TopicPartition]) -> None:
        for tp in offsets:
            if tp.offset >= 0 and tp.error is None:
                key = (tp.topic, tp.partition)
                self._committed_to[key] = max(self._committed_to.get(key, 0), tp.offset)
        self.committed_at = time.monotonic()

    def done(self, key: tuple[str, int], next_offset: int) -> None:
        """The record before ``next_offset`` is dealt with (processed, skipped, dead-lettered)."""
        self._pending[key] = next_offset

    @property
    def waiting(self) -> bool:
        """Whether outputs still await acknowledgement or offsets their commit."""
        return bool(self._inflight or self._deliverable)

    def end_batch(self) -> None:
        """Close the batch: its offsets wait for the outputs sent so far."""
        ticket = self._producer.checkpoint()
        self._done_to.update(self._pending)
        if self._pending:
            self._inflight.append((ticket, self._pending))
            self._pending = {}
        self.commit_delivered()

    def on_commit_result(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The consumer's ``on_commit`` callback."""
        # A failed background commit is covered by the next commit of the same partitions
        # (offsets only grow). If none follows, the group resumes from the last committed
        # offset after a restart and re-emits outputs with the same event ids, which every
        # sink deduplicates: delivery stays at least once, never lossy.
        if err is not None:
            log.warning("%s: offset commit failed (%s); the next one covers it", self.name, err)
        else:
            self._committed(partitions)

    def commit_delivered(self, *, force: bool = False) -> None:
        """Commit, without blocking, the offsets of batches whose outputs are acknowledged.

        ``force``: commit now, else at most every ``COMMIT_INTERVAL_S``.
        """
        self._producer.poll(0)
        while self._inflight and self._producer.delivered(self._inflight[0][0]):
            self._deliverable.update(self._inflight.popleft()[1])
        if not self._deliverable:
            return
        now = time.monotonic()
        if not force and now - self._last_commit < COMMIT_INTERVAL_S:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._deliverable.items()]
        self._deliverable = {}
        self._last_commit = now
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # e.g. no coordinator known yet: settle() retries
            log.warning("%s: commit not sent (%s); will retry", self.name, exc)
            for tp in offsets:
                key = (tp.topic, tp.partition)
                self._deliverable[key] = max(self._deliverable.get(key, 0), tp.offset)

    def settle(self) -> None:
        """Wait for every output to be acknowledged, then commit every offset synchronously.

        Never after a failure: then the outputs of what was applied are not known to be
        delivered, and committing would skip the record the stage failed on.
        """
        if self.failed:
            return
        self._producer.flush()
        for _, offsets in self._inflight:
            self._deliverable.update(offsets)
        self._inflight.clear()
        self._done_to.update(self._pending)
        self._deliverable.update(self._pending)
        self._pending = {}
        self._commit()

    def _commit(self) -> None:
        if not self._deliverable:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._deliverable.items()]
        deadline = time.monotonic() + COMMIT_PATIENCE_S
        while True:
            try:
                self._committed(self._consumer.commit(offsets=offsets, asynchronous=False) or [])
                break
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                retriable = isinstance(error, KafkaError) and error.retriable()
                unavailable = isinstance(error, KafkaError) and error.code() in _TRANSIENT
                if not (retriable or unavailable) or time.monotonic() > deadline:
                    raise
                log.warning("%s: commit failed (%s); retrying", self.name, exc)
                time.sleep(0.5)
        self._deliverable.clear()
