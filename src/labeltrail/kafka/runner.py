"""Run a pure fold against Kafka: restore its state from the log, then process live.

Delivery is at least once, made exact by deterministic ids: on start the runner reads each
input partition from the beginning; records before the group's committed offset only rebuild
state (their outputs were already written), records after it are processed and their outputs
produced. Restoring finishes on every partition before any live record is applied: a fold may
hold an input until another arrives (a vote before its task), and the output that the later
input releases must be emitted if, and only if, that later input is new.

What happens to each record is :class:`~labeltrail.kafka.records.RecordHandler`'s (shared
with the faust runner); when its offset is committed, :class:`~labeltrail.kafka.commits.Commits`'
(only after the outputs it covers are acknowledged by the broker). This module is the loop.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition

from labeltrail.config import Settings
from labeltrail.events.topics import topic_name
from labeltrail.folds.base import Fold
from labeltrail.kafka.commits import Commits
from labeltrail.kafka.consumer import drained, make_consumer, unread
from labeltrail.kafka.metrics import ServiceMetrics, serve_metrics, state_entries
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.progress import Progress
from labeltrail.kafka.records import (
    RecordHandler,
    StageStats,
    dead_letter,
    held_dead_letter,
    msg_at,
)
from labeltrail.kafka.security import refusal

__all__ = [
    "StageRunner",
    "StageStats",
    "dead_letter",
    "held_dead_letter",
    "msg_at",
]

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.2
"""How long one poll waits for input when nothing is in flight."""

INFLIGHT_WAIT_S = 0.005
"""How long one poll waits for input while outputs still await acknowledgement."""

GC_FREEZE_S = 1.0
"""How often the objects that survived a young collection are moved out of the collector's
reach (``gc.freeze``). A fold keeps its state for the life of the process; without this,
every full collection walks all of it, a pause that grows with the state (measured: 80-180 ms
after a few thousand votes on the loaded machine, in the middle of the latency benchmark)."""


class StageRunner:
    """Feeds one fold from its input topics and writes its outputs and rejections."""

    def __init__(
        self,
        fold: Fold,
        settings: Settings,
        *,
        group: str | None = None,
        batch_size: int = 500,
        finite: bool = False,
    ) -> None:
        """``finite``: this stage's input is a finished history (a replay, a test): when it is
        read to the end the fold's ``drain()`` settles what it still holds. A live stage never
        drains by itself (a lull is not the end of the input); a pipeline of stages whose
        inputs feed each other drains each one with :meth:`request_drain` once all of them
        are idle, as the demo does."""
        self.settings = settings
        self.stats = StageStats()
        self._producer = self._new_producer(settings)
        self._use_fold(fold)
        self.group = group or f"{settings.topic_prefix}.{fold.name}"
        self.topics = [topic_name(settings.topic_prefix, s) for s in fold.inputs]
        self.deadletter_topic = topic_name(settings.topic_prefix, "deadletter")
        self.batch_size = batch_size
        self.finite = finite
        self._drain_requested = threading.Event()
        self.drain_done = threading.Event()
        self._progress = Progress(lambda: self.fold.name, self.stats, self._held_reason, self._lag)
        self.caught_up = threading.Event()
        self._consumer = make_consumer(
            settings, self.group, on_commit=self._on_commit, **self._membership(settings)
        )
        self._commits = Commits(fold.name, self._consumer, self._producer)
        self._resume_at: dict[tuple[str, int], int] = {}
        self._last_freeze = 0.0
        self._read_to: dict[tuple[str, int], int] = {}
        self._restoring = False
        self._held_live: list[Message] = []
        self.metrics = ServiceMetrics(
            fold.name, lambda: self.stats, state=lambda: state_entries(self.fold)
        )
        """Its Prometheus registry and vitals, served while it runs when
        ``LABELTRAIL_METRICS_PORT`` is set (:mod:`labeltrail.kafka.metrics`)."""

    # lifecycle ---------------------------------------------------------------------------

    def _membership(self, settings: Settings) -> dict[str, Any]:
        """Group membership settings of the consumer (the scale-out runner joins a group)."""
        return {}

    def _new_producer(self, settings: Settings) -> EventProducer:
        """Its producer (the fused runner's also hands its outputs over in memory)."""
        return EventProducer(settings)

    def _assign(self) -> None:
        meta = self._consumer.list_topics(timeout=30)
        partitions = [
            TopicPartition(t, p)
            for t in self.topics
            for p in sorted(meta.topics[t].partitions)
            if t in meta.topics
        ]
        self._start_restore(partitions)

    def _use_fold(self, fold: Fold) -> None:
        """Run ``fold`` from now on (the scale-out runner starts a fresh one per rebalance)."""
        self.fold = fold
        self._handler = RecordHandler(fold, self.settings.topic_prefix, self.stats, self._producer)

    def _start_restore(self, partitions: list[TopicPartition]) -> None:
        """Read ``partitions`` from the beginning; below the committed offsets only restore."""
        self._resume_at.clear()
        self._read_to.clear()
        self._held_live.clear()
        committed = self._consumer.committed(partitions, timeout=30) if partitions else []
        for tp in committed:
            self._resume_at[(tp.topic, tp.partition)] = max(tp.offset, 0)
        self._commits.reset(self._resume_at)
        self._restoring = any(offset > 0 for offset in self._resume_at.values())
        self._consumer.assign(
            [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        )

    def run(self, stop: threading.Event, *, idle_seconds: float = 1.0) -> StageStats:
        """Process until ``stop`` is set. Sets ``caught_up`` whenever input is drained.

        With metrics on, ``/metrics`` and ``/healthz`` are served while it runs (a taken port:
        :class:`~labeltrail.kafka.metrics.MetricsPortInUseError`, before anything is read).
        """
        server = serve_metrics(self.metrics, self.settings)
        idle_since: float | None = None
        try:
            self._assign()
            self._freeze_state(force=True)  # what the imports made is as long-lived as the state
            while not stop.is_set():
                self._between_batches()
                messages = self._fetch()
                self._report_vitals()
                if messages:
                    idle_since = None
                    self.caught_up.clear()
                    self._process(messages)
                    self._progress.tick()
                    continue
                self._commits.commit_delivered(force=True)
                now = time.monotonic()
                idle_since = idle_since or now
                idle = now - idle_since >= idle_seconds
                if idle and not self.caught_up.is_set():
                    # Downstream may only see this stage as caught up once its outputs are
                    # acknowledged and its offsets committed.
                    self._settle()
                    if self._at_end():
                        if self.finite or self._drain_requested.is_set():
                            self._drain()
                        self.caught_up.set()
                        self._report_vitals(force=True)
                        self._progress.tick(caught_up=True)
            self._settle()
        except BaseException as exc:
            # Whatever raised (a fatal consumer error, a failed delivery, a bug), no offset may
            # be committed from here on, not even by the revoke that closing the consumer
            # triggers: a restart resumes at the last commit and redoes the work, with the
            # same ids.
            self._commits.failed = True
            self.metrics.vitals.failure = repr(exc)
            raise
        finally:
            self._close()
            if server is not None:
                server.close()
        return self.stats

    def _report_vitals(self, *, force: bool = False) -> None:
        """Tell the metrics what only this thread may ask the consumer: that it polls, the
        lag per partition, the commit state (refreshed every ``VITALS_EVERY_S``)."""
        vitals = self.metrics.vitals
        now = time.monotonic()
        vitals.polled_at = now
        vitals.caught_up = self.caught_up.is_set()
        if not self.metrics.due(now, force=force):
            return
        lag = unread(self._consumer, self._read_to)
        if lag is not None:
            vitals.lag, vitals.assigned = lag, len(lag)
        vitals.committed_at = self._commits.committed_at
        vitals.uncommitted = self._commits.uncommitted()

    def _held_reason(self) -> str | None:
        held = getattr(self.fold, "held_reason", None)
        return held() if callable(held) else None

    def _lag(self) -> int | None:
        """Records not yet read on the assigned partitions (from cached watermarks)."""
        lag = unread(self._consumer, self._read_to)
        return None if lag is None else sum(lag.values())

    def _fetch(self) -> list[Message]:
        """What is already fetched, up to a batch; else wait briefly for the first record.

        ``consume(n, timeout)`` would wait for ``n`` records or the whole timeout, adding up to
        that timeout to every record's latency when input trickles in.
        """
        messages: list[Message] = self._consumer.consume(self.batch_size, timeout=0)
        if messages:
            return messages
        wait = INFLIGHT_WAIT_S if self._awaiting() else IDLE_WAIT_S
        first = self._consumer.poll(wait)
        if first is None:
            return []
        return [first, *self._consumer.consume(self.batch_size - 1, timeout=0)]

    def _awaiting(self) -> bool:
        """Whether outputs still await acknowledgement or offsets their commit."""
        return self._commits.waiting

    def _between_batches(self) -> None:
        """A hook for subclasses (the scale-out runner reads its broadcast inputs here)."""

    def _close(self) -> None:
        self._consumer.close()
        self._producer.close()

    def _at_end(self) -> bool:
        return drained(self._consumer, self._read_to)

    # processing --------------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        if self._restoring:
            messages = self._restore(messages)
        for msg in messages:
            err = msg.error()
            if err is not None:
                refused = refusal(self.settings, err, doing="read", resource=msg.topic() or "")
                if refused is not None:  # no ACL for an input: retrying will not help
                    raise refused
                if err.fatal():
                    raise RuntimeError(f"{self.fold.name}: fatal consumer error {err}")
                # Transport errors and the like: the client reconnects by itself.
                log.warning("%s: consumer: %s", self.fold.name, err)
                continue
            self._one(msg)
        self._end_batch()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self._freeze_state()

    def _end_batch(self) -> None:
        """Close the batch: its offsets wait for the outputs sent so far (the fused runner
        first hands its outputs to the fused stages that read them)."""
        self._commits.end_batch()

    def _freeze_state(self, *, force: bool = False) -> None:
        """Collect the young generations, then exempt what survives from later collections.

        The survivors are mostly the fold's state, which lives as long as the process. The
        cost: a cycle that becomes garbage after it was frozen is never reclaimed, and folds
        do not drop state, so such cycles are rare.
        """
        now = time.monotonic()
        if force or now - self._last_freeze >= GC_FREEZE_S:
            self._last_freeze = now
            gc.collect(1)
            gc.freeze()

    def _restore(self, messages: list[Message]) -> list[Message]:
        """Apply restored records; hold live ones (pausing their partition) until all are in.

        Returns the messages to process live now: none until every partition has been read
        up to its committed offset, then everything held, in the order it arrived.
        """
        for msg in messages:
            if msg.error() is not None:
                continue
            key = (msg.topic() or "", msg.partition() or 0)
            if (msg.offset() or 0) < self._resume_at.get(key, 0):
                self._one(msg)
            else:
                self._held_live.append(msg)
                self._consumer.pause([TopicPartition(*key)])
        done = all(self._read_to.get(k, 0) >= at for k, at in self._resume_at.items() if at > 0)
        if not done:
            return []
        self._restoring = False
        self._consumer.resume(self._consumer.assignment())
        held, self._held_live = self._held_live, []
        log.info("%s: restored %d records; now live", self.fold.name, self.stats.restored)
        return held

    def _one(self, msg: Message) -> None:
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        key = (topic, partition)
        self._read_to[key] = offset + 1
        if offset >= self._resume_at.get(key, 0):
            self._handler.live(msg, topic, partition, offset)
            self.metrics.observe_age(msg.timestamp()[1])
        else:
            self._handler.restore(msg, topic, partition, offset)
        # Only now is the record dealt with (processed, skipped or dead-lettered), so only now
        # may its offset be committed, once the outputs sent so far are acknowledged. An
        # exception above leaves the offset where it was: the record is read again.
        self._commits.done(key, offset + 1)

    def _foreign(self, topic: str, kind: str) -> str | None:
        """Why a ``kind`` record does not belong on ``topic``, or None when it does."""
        return self._handler.foreign(topic, kind)

    def request_drain(self) -> None:
        """Drain the fold the next time its input is read to the end (then once only)."""
        self.drain_done.clear()
        self._drain_requested.set()
        self.caught_up.clear()

    def _drain(self) -> None:
        self._drain_requested.clear()
        self._handler.drain()
        self._producer.flush()
        self.drain_done.set()

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self._commits.on_commit_result(err, partitions)

    def _settle(self) -> None:
        """Wait for every output to be acknowledged, then commit every offset (see
        :meth:`Commits.settle`)."""
        self._commits.settle()
