"""Run a pure fold against Kafka: restore its state from the log, then process live.

Delivery is at least once, made exact by deterministic ids: on start the runner reads each
input partition from the beginning; records before the group's committed offset only rebuild
state (their outputs were already written), records after it are processed and their outputs
produced. Restoring finishes on every partition before any live record is applied: a fold may
hold an input until another arrives (a vote before its task), and the output that the later
input releases must be emitted if, and only if, that later input is new.

Offsets are committed only after the outputs they cover are acknowledged by the broker, so a
crash between the two re-emits outputs with the same event ids, which every sink deduplicates.
The runner does not wait for those acknowledgements: each consumed batch's outputs are sent
under a producer ticket, the batch's offsets wait in a queue, and they are committed (without
blocking) as soon as their ticket and every earlier one are delivered. Before it reports
itself caught up, on a rebalance and when it stops, the runner flushes and commits
synchronously.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from labeltrail.config import Settings
from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import DeadLettered
from labeltrail.events.serde import decode, event_type_of
from labeltrail.events.topics import events_on, foreign, topic_name
from labeltrail.exceptions import SerializationError
from labeltrail.folds.base import Fold, Rejected
from labeltrail.kafka.consumer import drained, make_consumer
from labeltrail.kafka.producer import EventProducer, RecordTooLargeError
from labeltrail.kafka.progress import Progress

__all__ = [
    "StageRunner",
    "StageStats",
    "dead_letter",
    "held_dead_letter",
    "msg_at",
]

log = logging.getLogger(__name__)

COMMIT_PATIENCE_S = 120.0
"""How long a commit is retried while the group coordinator is away (a broker restart)."""

COMMIT_INTERVAL_S = 0.1
"""At most this often, delivered offsets are committed while records keep arriving."""

IDLE_WAIT_S = 0.2
"""How long one poll waits for input when nothing is in flight."""

INFLIGHT_WAIT_S = 0.005
"""How long one poll waits for input while outputs still await acknowledgement."""

GC_FREEZE_S = 1.0
"""How often the objects that survived a young collection are moved out of the collector's
reach (``gc.freeze``). A fold keeps its state for the life of the process; without this,
every full collection walks all of it, a pause that grows with the state (measured: 80-180 ms
after a few thousand votes on the loaded machine, in the middle of the latency benchmark)."""

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


def msg_at(msg: Message) -> tuple[str, int, int]:
    """A message's (topic, partition, offset)."""
    return msg.topic() or "", msg.partition() or 0, msg.offset() or 0


def dead_letter(msg: Message, stage: str, reason_code: str, reason: str) -> DeadLettered:
    """The dead-letter record of a rejected message (id fixed by its source position).

    An oversized value travels by reference (size, hash, a prefix): the dead letter of any
    record the broker could deliver always fits under the producer's limit.
    """
    return DeadLettered.rejecting(
        stage=stage,
        source=msg_at(msg),
        key=msg.key(),
        value=msg.value() or b"",
        reason_code=reason_code,
        reason=reason,
    )


def held_dead_letter(stage: str, reason: str) -> DeadLettered:
    """The dead-letter record of input a fold held and rejected when drained.

    The input was read long before, so no source position is given; the id is fixed by the
    stage and the reason, which names the held record.
    """
    return DeadLettered.rejecting(
        stage=stage,
        source=("(held)", -1, -1),
        key=None,
        value=b"",
        reason_code="policy_rejected",
        reason=reason,
        id_parts=("deadletter", stage, reason),
    )


@dataclass
class StageStats:
    """What a stage has done; ``consumed == processed + rejected + restored``.

    ``skipped`` (a part of processed or restored) counts records of event types the fold
    declares it does not handle (``fold.accepts``), passed over without decoding the body.
    """

    consumed: int = 0
    restored: int = 0
    processed: int = 0
    rejected: int = 0
    emitted: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


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
        self._use_fold(fold)
        self.settings = settings
        self.group = group or f"{settings.topic_prefix}.{fold.name}"
        self.topics = [topic_name(settings.topic_prefix, s) for s in fold.inputs]
        self._on_topic = events_on(settings.topic_prefix)
        """The event types that belong on each topic; any other is dead-lettered."""
        self._failed = False
        """Set when the loop raised: from then on nothing is committed (see :meth:`_settle`)."""
        self.deadletter_topic = topic_name(settings.topic_prefix, "deadletter")
        self.batch_size = batch_size
        self.finite = finite
        self._drain_requested = threading.Event()
        self.drain_done = threading.Event()
        self.stats = StageStats()
        self._progress = Progress(lambda: self.fold.name, self.stats, self._held_reason, self._lag)
        self.caught_up = threading.Event()
        self._consumer = make_consumer(
            settings, self.group, on_commit=self._on_commit_result, **self._membership(settings)
        )
        self._producer = EventProducer(settings)
        self._resume_at: dict[tuple[str, int], int] = {}
        self._pending_commit: dict[tuple[str, int], int] = {}
        self._inflight: deque[tuple[int, dict[tuple[str, int], int]]] = deque()
        """(producer ticket, next offsets) per processed batch, oldest first."""
        self._deliverable: dict[tuple[str, int], int] = {}
        """Offsets whose outputs are acknowledged and that are not committed yet."""
        self._last_commit = 0.0
        self._last_freeze = 0.0
        self._read_to: dict[tuple[str, int], int] = {}
        self._restoring = False
        self._held_live: list[Message] = []

    # lifecycle ---------------------------------------------------------------------------

    def _membership(self, settings: Settings) -> dict[str, Any]:
        """Group membership settings of the consumer (the scale-out runner joins a group)."""
        return {}

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
        self._accepts: frozenset[str] | None = getattr(fold, "accepts", None)
        """The event types the fold handles (None: all); others are skipped undecoded."""

    def _start_restore(self, partitions: list[TopicPartition]) -> None:
        """Read ``partitions`` from the beginning; below the committed offsets only restore."""
        self._resume_at.clear()
        self._read_to.clear()
        self._pending_commit.clear()
        self._inflight.clear()
        self._deliverable.clear()
        self._held_live.clear()
        committed = self._consumer.committed(partitions, timeout=30) if partitions else []
        for tp in committed:
            self._resume_at[(tp.topic, tp.partition)] = max(tp.offset, 0)
        self._restoring = any(offset > 0 for offset in self._resume_at.values())
        self._consumer.assign(
            [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        )

    def run(self, stop: threading.Event, *, idle_seconds: float = 1.0) -> StageStats:
        """Process until ``stop`` is set. Sets ``caught_up`` whenever input is drained."""
        self._assign()
        self._freeze_state(force=True)  # what the imports made is as long-lived as the state
        idle_since: float | None = None
        try:
            while not stop.is_set():
                self._between_batches()
                messages = self._fetch()
                if messages:
                    idle_since = None
                    self.caught_up.clear()
                    self._process(messages)
                    self._progress.tick()
                    continue
                self._commit_delivered(force=True)
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
                        self._progress.tick(caught_up=True)
            self._settle()
        except BaseException:
            # Whatever raised (a fatal consumer error, a failed delivery, a bug), no offset may
            # be committed from here on, not even by the revoke that closing the consumer
            # triggers: a restart resumes at the last commit and redoes the work, with the
            # same ids.
            self._failed = True
            raise
        finally:
            self._close()
        return self.stats

    def _held_reason(self) -> str | None:
        held = getattr(self.fold, "held_reason", None)
        return held() if callable(held) else None

    def _lag(self) -> int | None:
        """Records not yet read on the assigned partitions (from cached watermarks)."""
        try:
            assignment = self._consumer.assignment()
        except KafkaException:
            return None
        lag = 0
        for tp in assignment:
            low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                lag += max(high - self._read_to.get((tp.topic, tp.partition), low), 0)
        return lag

    def _fetch(self) -> list[Message]:
        """What is already fetched, up to a batch; else wait briefly for the first record.

        ``consume(n, timeout)`` would wait for ``n`` records or the whole timeout, adding up to
        that timeout to every record's latency when input trickles in.
        """
        messages: list[Message] = self._consumer.consume(self.batch_size, timeout=0)
        if messages:
            return messages
        wait = INFLIGHT_WAIT_S if self._inflight or self._deliverable else IDLE_WAIT_S
        first = self._consumer.poll(wait)
        if first is None:
            return []
        return [first, *self._consumer.consume(self.batch_size - 1, timeout=0)]

    def _between_batches(self) -> None:
        """A hook for subclasses (the scale-out runner reads its broadcast inputs here)."""

    def _close(self) -> None:
        self._consumer.close()

    def _at_end(self) -> bool:
        return drained(self._consumer, self._read_to)

    # processing --------------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        if self._restoring:
            messages = self._restore(messages)
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise RuntimeError(f"{self.fold.name}: fatal consumer error {err}")
                # Transport errors and the like: the client reconnects by itself.
                log.warning("%s: consumer: %s", self.fold.name, err)
                continue
            self._one(msg)
        ticket = self._producer.checkpoint()
        if self._pending_commit:
            self._inflight.append((ticket, self._pending_commit))
            self._pending_commit = {}
        self._commit_delivered()
        self._freeze_state()

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
        self.stats.consumed += 1
        self._read_to[key] = offset + 1
        if offset >= self._resume_at.get(key, 0):
            self._live(msg, topic, partition, offset)
        else:
            self._restore_one(msg, topic, partition, offset)
        # Only now is the record dealt with (processed, skipped or dead-lettered), so only now
        # may its offset be committed, once the outputs sent so far are acknowledged. An
        # exception above leaves the offset where it was: the record is read again.
        self._pending_commit[key] = offset + 1

    def _foreign(self, topic: str, kind: str) -> str | None:
        """Why a ``kind`` record does not belong on ``topic``, or None when it does."""
        return foreign(self._on_topic, topic, kind)

    def _restore_one(self, msg: Message, topic: str, partition: int, offset: int) -> None:
        """Rebuild state from a record processed before; emit nothing.

        A record rejected when it was live (foreign, undecodable, a fold error) is passed over
        the same way now, so the state rebuilt equals the state the stage had.
        """
        self.stats.restored += 1
        data = msg.value() or b""
        try:
            kind = event_type_of(data)
            if self._foreign(topic, kind) or (
                self._accepts is not None and kind not in self._accepts
            ):
                return
            event = decode(data)
            self.fold.apply(event, LogPosition.at(topic, partition, offset))
        except SerializationError:
            return
        except Exception:  # it raised when live too, and was dead-lettered then
            return

    def _live(self, msg: Message, topic: str, partition: int, offset: int) -> None:
        data = msg.value() or b""
        try:
            kind = event_type_of(data)
            foreign = self._foreign(topic, kind)
            if foreign:
                self._reject(msg, "wrong_topic", foreign)
                return
            if self._accepts is not None and kind not in self._accepts:
                # The fold declares it would return nothing for this type: skip the body.
                self.stats.skipped += 1
                self.stats.processed += 1
                return
            event = decode(data)
        except SerializationError as exc:
            self._reject(msg, exc.reason_code, str(exc))
            return
        try:
            outputs = self.fold.apply(event, LogPosition.at(topic, partition, offset))
        except Exception as exc:
            # A poison record: dead-lettered with the error, never skipped in silence. The
            # fold may have changed its state before it raised; a restore repeats exactly that.
            log.exception("%s: the fold raised on %s[%s]@%s", self.fold.name, *msg_at(msg))
            self._reject(msg, "fold_error", f"{type(exc).__name__}: {exc}")
            return
        events = [o for o in outputs if isinstance(o, Event)]
        try:
            self._producer.send_all(events)
        except RecordTooLargeError as exc:
            self._reject(msg, "output_too_large", f"nothing emitted: {exc}")
            return
        self.stats.emitted += len(events)
        rejected = [o.reason for o in outputs if isinstance(o, Rejected)]
        if rejected:
            self._reject(msg, "policy_rejected", "; ".join(rejected))
        else:
            self.stats.processed += 1

    def request_drain(self) -> None:
        """Drain the fold the next time its input is read to the end (then once only)."""
        self.drain_done.clear()
        self._drain_requested.set()
        self.caught_up.clear()

    def _drain(self) -> None:
        self._drain_requested.clear()
        drain = getattr(self.fold, "drain", None)
        if drain is None:
            self.drain_done.set()
            return
        for out in drain():
            if isinstance(out, Rejected):
                # The held input was counted as processed when it arrived; now it is rejected.
                self.stats.processed -= 1
                self.stats.rejected += 1
                self.stats.reasons["policy_rejected"] += 1
                self._producer.send(held_dead_letter(self.fold.name, out.reason))
            else:
                try:
                    self._producer.send(out)
                except RecordTooLargeError as exc:
                    self._producer.send(held_dead_letter(self.fold.name, f"drained: {exc}"))
                    continue
                self.stats.emitted += 1
        self._producer.flush()
        self.drain_done.set()

    def _reject(self, msg: Message, code: str, reason: str) -> None:
        self.stats.rejected += 1
        self.stats.reasons[code] += 1
        log.warning("%s rejected %s[%s]@%s: %s", self.fold.name, *msg_at(msg), reason)
        self._producer.send(dead_letter(msg, self.fold.name, code, reason))

    def _on_commit_result(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        # A failed background commit is covered by the next commit of the same partitions
        # (offsets only grow). If none follows, the group resumes from the last committed
        # offset after a restart and re-emits outputs with the same event ids, which every
        # sink deduplicates: delivery stays at least once, never lossy.
        if err is not None:
            log.warning(
                "%s: offset commit failed (%s); the next one covers it", self.fold.name, err
            )

    def _commit_delivered(self, *, force: bool = False) -> None:
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
            log.warning("%s: commit not sent (%s); will retry", self.fold.name, exc)
            for tp in offsets:
                key = (tp.topic, tp.partition)
                self._deliverable[key] = max(self._deliverable.get(key, 0), tp.offset)

    def _settle(self) -> None:
        """Wait for every output to be acknowledged, then commit every offset synchronously.

        Never after a failure: then the outputs of what was applied are not known to be
        delivered, and committing would skip the record the stage failed on.
        """
        if self._failed:
            return
        self._producer.flush()
        for _, offsets in self._inflight:
            self._deliverable.update(offsets)
        self._inflight.clear()
        self._deliverable.update(self._pending_commit)
        self._pending_commit = {}
        self._commit()

    def _commit(self) -> None:
        if not self._deliverable:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._deliverable.items()]
        deadline = time.monotonic() + COMMIT_PATIENCE_S
        while True:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
                break
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                retriable = isinstance(error, KafkaError) and error.retriable()
                unavailable = isinstance(error, KafkaError) and error.code() in _TRANSIENT
                if not (retriable or unavailable) or time.monotonic() > deadline:
                    raise
                log.warning("%s: commit failed (%s); retrying", self.fold.name, exc)
                time.sleep(0.5)
        self._deliverable.clear()
