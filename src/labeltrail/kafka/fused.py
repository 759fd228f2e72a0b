"""Several stages in one process: what one fused stage writes for another is handed over in memory.

A small deployment runs every stage but the scorer and the trainer (tasking, consensus, labels,
reliability, IAA...; ``labeltrail.stages.FUSED``) as one process (the *fused* runner) instead of
one process per stage. Every output is still written to its topic,
so the log, the projections and every audit answer are those of the separate services; what
changes is who reads it back. An output on a topic that only fused stages write (tasks,
consensus, labels, quality, annotators.status) is not consumed from Kafka again: once the broker
has acknowledged it, its delivery report (the very record, with its partition and offset) is
handed to every fused stage that reads the topic. Only inputs from outside the fused set
(comments, votes, adjudications, schemas, annotators, gold, scores...) are consumed.

Each fused stage keeps its own fold and its own
:class:`~labeltrail.kafka.records.RecordHandler`, and a handed-over record goes through that
handler exactly as a consumed one would (decode, skip, dead letter, count), at its real log
position: a fold sees what it would see as a separate service, each topic in its log order.

Commits: a batch's offsets are released to the commit queue only once every output it
caused, in every fused stage, down the whole chain, is acknowledged and handed over (each
record is sent under the batch, the *generation*, that caused it); then they wait for the
producer ticket as in the :class:`~labeltrail.kafka.runner.StageRunner`. Meanwhile the
runner reads and applies the next batches.

A restart restores each fused stage from the log as its own service would: the topics only
fused stages write are read from the start to their end as of the start (their owned
partitions), then the external inputs up to the fused group's committed offsets, each record
through each reader's restore path; after that, external input is processed live.

Scale-out: :class:`GroupFusedRunner` is the fused runner over a consumer group; it runs only
scalable stages (co-partitioned keyed inputs), since reliability and IAA need every vote. The
separate services remain the way to scale a stage on its own (docs/streaming.md).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from confluent_kafka import KafkaError, Message, TopicPartition

from labeltrail.config import Settings, settings
from labeltrail.events.base import Event, LogPosition
from labeltrail.events.serde import decode, event_type_of
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import SerializationError
from labeltrail.folds.base import Fold, Output
from labeltrail.kafka.consumer import make_consumer
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.records import RecordHandler, StageStats, msg_at
from labeltrail.kafka.runner import StageRunner
from labeltrail.kafka.scaleout import BROADCAST_INPUTS, GroupStageRunner, read_to_end
from labeltrail.kafka.serve import run_until_signalled, topics_ready

__all__ = [
    "FusedFold",
    "FusedRunner",
    "GroupFusedRunner",
    "HandoverProducer",
    "Member",
    "serve_fused",
]

log = logging.getLogger(__name__)

HANDOVER_WAIT_S = 0.05
"""How long one wait for the delivery reports of outputs still to be handed over lasts."""


@dataclass(frozen=True)
class Member:
    """One fused stage: its fold and the topic suffixes it writes (the stage registry's)."""

    fold: Fold
    writes: tuple[str, ...]


@dataclass
class FusedFold:
    """The fused stages as the runner's one fold: ``inputs`` are the topics consumed from
    Kafka (every member's inputs but the topics handed over in memory).

    ``outside_writes``: topics that something outside the fused set also writes (a stage that
    runs on its own); those are consumed like any external input and never handed over.
    """

    members: tuple[Member, ...]
    outside_writes: frozenset[str] = frozenset()
    name: str = "fused"
    inputs: tuple[str, ...] = field(init=False)
    internal: frozenset[str] = field(init=False)
    """Topic suffixes handed over in memory: written only by members, read by a member."""

    def __post_init__(self) -> None:
        written = {s for m in self.members for s in m.writes} - self.outside_writes
        read = [s for m in self.members for s in m.fold.inputs]
        self.internal = frozenset(s for s in read if s in written)
        self.inputs = tuple(dict.fromkeys(s for s in read if s not in self.internal))

    @property
    def folds(self) -> tuple[Fold, ...]:
        return tuple(m.fold for m in self.members)

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        """Not used: the runner hands every record to each member's own handler."""
        raise TypeError("a FusedFold is run by the FusedRunner, member by member")


class HandoverProducer(EventProducer):
    """The producer of the fused stages: it also keeps the delivery report of every record on a
    topic handed over in memory (``handover_topics``, full names), in acknowledgement order,
    with the *cause* it was sent for: the external batch (a generation number) whose
    consequences, down the chain, it is part of."""

    def __init__(self, settings: Settings, handover_topics: frozenset[str]) -> None:
        super().__init__(settings)
        self.handover_topics = handover_topics
        self.delivered_records: deque[tuple[int, Message, Event | None]] = deque()
        """(cause, record, its event when sent as one) of acknowledged records to hand over,
        oldest first."""
        self.cause = 0
        """The generation whose consequences are being sent now."""
        self.unhanded: Counter[int] = Counter()
        """Records on a handed-over topic sent and not handed over yet, by cause."""
        self._ticket_cause: dict[int, int] = {0: 0}

    def caused_by(self, cause: int) -> None:
        """What is sent from now on is a consequence of generation ``cause``."""
        if cause != self.cause:
            self.cause = cause
            self.checkpoint()

    def checkpoint(self) -> int:
        closed = super().checkpoint()
        if closed not in self._unacked:  # nothing of it awaits a delivery report
            self._ticket_cause.pop(closed, None)
        self._ticket_cause[self._ticket] = self.cause
        return closed

    def send_all(self, events: list[Event]) -> None:
        """As :meth:`EventProducer.send_all`; an event on a handed-over topic also travels with
        its delivery report, so the stages that read it get the very event, not a decode of the
        bytes it was just encoded to."""
        handover = self.handover_topics
        for event, (topic, key, value) in zip(events, self.records(events), strict=True):
            callback = (
                partial(self._on_handover, self._ticket, event)
                if topic in handover
                else self._callback
            )
            self._produce(topic, key, value, callback)

    def _produce(
        self, topic: str, key: bytes | None, value: bytes, on_delivery: Callable[..., None]
    ) -> None:
        super()._produce(topic, key, value, on_delivery)
        if topic in self.handover_topics:
            self.unhanded[self.cause] += 1

    def _on_delivery(self, ticket: int, err: KafkaError | None, msg: Message) -> None:
        self._on_handover(ticket, None, err, msg)

    def _on_handover(
        self, ticket: int, event: Event | None, err: KafkaError | None, msg: Message
    ) -> None:
        super()._on_delivery(ticket, err, msg)
        cause = self._ticket_cause[ticket]
        if ticket not in self._unacked and ticket != self._ticket:
            del self._ticket_cause[ticket]
        if err is None and msg.topic() in self.handover_topics:
            self.delivered_records.append((cause, msg, event))
        # A failed delivery stays unhanded: raise_failed() stops the runner before any commit.

    def handed(self, cause: int) -> None:
        """One record of ``cause`` was handed over."""
        self.unhanded[cause] -= 1
        if not self.unhanded[cause]:
            del self.unhanded[cause]

    def raise_failed(self) -> None:
        """Raise :class:`~labeltrail.kafka.producer.ProduceError` if any delivery failed."""
        self._raise_errors()


def _kind_of(msg: Message) -> str | None:
    """The event type a consumed record claims; None when it cannot be read (each reader then
    dead-letters it with its reason, as it would on its own)."""
    value = msg.value()
    try:
        return event_type_of(value) if isinstance(value, bytes) else None
    except SerializationError:
        return None


def _decoded(msg: Message) -> Event | None:
    """A consumed record's event, decoded once for the members that take it; None when it
    cannot be (each then dead-letters it with its reason)."""
    value = msg.value()
    try:
        return decode(value) if isinstance(value, bytes) else None
    except SerializationError:
        return None


class _Fused(StageRunner):
    """What both fused runners add to the stage runner they extend."""

    fold: FusedFold  # type: ignore[assignment]
    _producer: HandoverProducer

    def _new_producer(self, settings: Settings) -> EventProducer:
        return HandoverProducer(settings, frozenset())

    def _use_fold(self, fold: Fold) -> None:
        assert isinstance(fold, FusedFold)
        super()._use_fold(fold)
        prefix = self.settings.topic_prefix
        self._producer.handover_topics = frozenset(topic_name(prefix, s) for s in fold.internal)
        if not hasattr(self, "member_stats"):
            self.member_stats: dict[str, StageStats] = {f.name: StageStats() for f in fold.folds}
            """What each fused stage did, as its own service would count it."""
            self._generation = 0
            """The current external batch's number: what it causes is sent under it."""
            self._batch_offsets: dict[tuple[str, int], int] = {}
            self._waiting_offsets: dict[int, dict[tuple[str, int], int]] = {}
            """Next offsets of closed batches, by generation, until all they caused is
            handed over."""
        self._readers: dict[str, list[RecordHandler]] = {}
        self._routes: dict[tuple[str, str], tuple[list[RecordHandler], list[RecordHandler]]] = {}
        """:meth:`_route`'s answers, by (topic, event type name)."""
        self._handlers: list[RecordHandler] = []
        for member in fold.folds:
            handler = RecordHandler(member, prefix, self.member_stats[member.name], self._producer)
            self._handlers.append(handler)
            for suffix in member.inputs:
                self._readers.setdefault(topic_name(prefix, suffix), []).append(handler)

    # restore ------------------------------------------------------------------------------

    def _internal_whole(self, suffix: str) -> bool:
        """Whether every partition of a handed-over topic is this worker's to restore."""
        return True

    def _start_restore(self, partitions: list[TopicPartition]) -> None:
        self._batch_offsets = {}  # a new assignment starts from the committed offsets
        self._waiting_offsets.clear()
        self._restore_internal({tp.partition for tp in partitions})
        super()._start_restore(partitions)

    def _restore_internal(self, owned: set[int]) -> None:
        """Restore every member from the handed-over topics, to their end as of now."""
        prefix = self.settings.topic_prefix
        reader = make_consumer(self.settings, f"{self.group}.restore.{uuid.uuid4().hex[:8]}")
        try:
            meta = reader.list_topics(timeout=30).topics
            parts = [
                TopicPartition(topic, p)
                for suffix in sorted(self.fold.internal)
                if (topic := topic_name(prefix, suffix)) in meta
                for p in sorted(meta[topic].partitions)
                if self._internal_whole(suffix) or p in owned
            ]

            read_to_end(reader, parts, partial(self._to_readers, live=False), self.batch_size)
        finally:
            reader.close()

    # processing ---------------------------------------------------------------------------

    def _to_readers(self, msg: Message, *, live: bool, event: Event | None = None) -> None:
        """Apply ``msg`` to every member that reads its topic: live (``event``: the record's
        event, handed over in memory), or only to restore.

        Live, a record several members read (and every handed-over event) is routed by its
        type: the members that do not take it count it passed over at once (a handed-over
        TaskAssigned reaches consensus, a ConsensusUpdated tasking: one of each per vote), and
        a record read from Kafka that several take is decoded once for all of them.
        """
        topic, partition, offset = msg_at(msg)
        handlers = self._readers.get(topic, ())
        if not live:
            for handler in handlers:
                handler.restore(msg, topic, partition, offset)
            return
        if event is not None:
            kind: str | None = type(event).__name__
        else:
            kind = _kind_of(msg) if len(handlers) > 1 else None
        if kind is None:  # one reader, or a type that cannot be read: each as on its own
            for handler in handlers:
                handler.live(msg, topic, partition, offset)
            return
        takers, passers = self._routes.get((topic, kind)) or self._route(topic, kind)
        for handler in passers:
            handler.passed_over()
        if event is None and len(takers) > 1:
            event = _decoded(msg)
        for handler in takers:
            handler.live(msg, topic, partition, offset, event)

    def _route(self, topic: str, kind: str) -> tuple[list[RecordHandler], list[RecordHandler]]:
        """The readers of ``topic`` that apply a ``kind`` event (or refuse it as foreign to
        the topic, which :meth:`RecordHandler.live` does), and those that pass it over."""
        handlers = self._readers.get(topic, [])
        takes = [h.takes(topic, kind) for h in handlers]
        route = (
            [h for h, t in zip(handlers, takes, strict=True) if t is not False],
            [h for h, t in zip(handlers, takes, strict=True) if t is False],
        )
        self._routes[(topic, kind)] = route
        return route

    def _one(self, msg: Message) -> None:
        topic, partition, offset = msg_at(msg)
        key = (topic, partition)
        self._read_to[key] = offset + 1
        self.stats.consumed += 1
        live = offset >= self._resume_at.get(key, 0)
        self._producer.caused_by(self._generation)
        self._to_readers(msg, live=live)
        if live:
            self.stats.processed += 1
            self.metrics.observe_age(msg.timestamp()[1])
        else:
            self.stats.restored += 1
        self._batch_offsets[key] = offset + 1

    def _apply_broadcast(self, msg: Message) -> None:
        for handler in self._readers.get(msg.topic() or "", ()):
            handler.broadcast(msg)

    def _between_batches(self) -> None:
        super()._between_batches()  # broadcast input (scale-out) may release outputs too
        self._hand_over()

    def _end_batch(self) -> None:
        """Close the batch; its offsets wait until all it caused is handed over, then for
        the producer ticket (:meth:`_release`). Meanwhile the next batch is read."""
        if self._batch_offsets:
            self._waiting_offsets[self._generation] = self._batch_offsets
            self._batch_offsets = {}
        self._generation += 1
        self._hand_over()
        self.stats.emitted = self._producer.sent

    def _awaiting(self) -> bool:
        return bool(self._producer.unhanded or self._waiting_offsets) or super()._awaiting()

    def _settle(self) -> None:
        if not self._commits.failed:
            self._hand_over(block=True)
        super()._settle()

    def _hand_over(self, *, block: bool = False) -> None:
        """Hand every acknowledged output on a handed-over topic to the members that read it
        (``block``: until nothing sent is left unacknowledged, down the whole chain), then
        release the offsets of the batches whose consequences are all handed over."""
        producer = self._producer
        records = producer.delivered_records
        while True:
            producer.poll(0)
            producer.raise_failed()
            while records:
                cause, msg, event = records.popleft()
                producer.caused_by(cause)
                self._to_readers(msg, live=True, event=event)
                producer.handed(cause)
            if not block or not producer.unhanded:
                break
            producer.poll(HANDOVER_WAIT_S)
        self._release()

    def _release(self) -> None:
        """Give the commit queue the offsets of every batch, oldest first, of which nothing
        it caused is left to hand over; they commit once the producer ticket closed now (all
        sent so far) is acknowledged."""
        unhanded = self._producer.unhanded
        oldest = min(unhanded) if unhanded else None
        released = False
        while self._waiting_offsets:
            generation = next(iter(self._waiting_offsets))
            if oldest is not None and oldest <= generation:
                break
            for key, at in self._waiting_offsets.pop(generation).items():
                self._commits.done(key, at)
            released = True
        if released:
            self._commits.end_batch()
        else:
            self._commits.commit_delivered()

    def _drain(self) -> None:
        """Drain each member in turn, handing what each settles to the members after it."""
        self._drain_requested.clear()
        for handler in self._handlers:
            handler.drain()
            self._hand_over(block=True)
        self._producer.flush()
        self.drain_done.set()


class FusedRunner(_Fused):
    """The fused stages (a :class:`FusedFold`) over every partition of their inputs, in one
    process; constructed as a :class:`~labeltrail.kafka.runner.StageRunner` is."""


class GroupFusedRunner(_Fused, GroupStageRunner):
    """One worker of the fused (scalable) stages, sharing the keyed partitions with others;
    constructed as a :class:`~labeltrail.kafka.scaleout.GroupStageRunner` is, from a factory
    of :class:`FusedFold`.

    Topics handed over in memory are keyed like the inputs they come from, so a worker
    restores only the partitions it owns; the broadcast ones it restores whole.
    """

    def _internal_whole(self, suffix: str) -> bool:
        return suffix in BROADCAST_INPUTS


def serve_fused(make_fold: Callable[[Settings], FusedFold], *, scalable: bool = False) -> int:
    """Run the fused stages ``make_fold(settings)`` until SIGTERM or SIGINT; returns the exit
    code. ``scalable``: as one worker of several (:class:`GroupFusedRunner`)."""
    config = settings()
    if not topics_ready(config):
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runner = (
        GroupFusedRunner(lambda: make_fold(config), config)
        if scalable
        else FusedRunner(make_fold(config), config)
    )
    return run_until_signalled(runner)
