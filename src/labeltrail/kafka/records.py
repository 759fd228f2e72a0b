"""What every runner does with one input record: restore from it, or process it live.

Both runners (the confluent :class:`~labeltrail.kafka.runner.StageRunner` and the faust
worker of :mod:`labeltrail.kafka.faust_stage`) hand each record to a :class:`RecordHandler`,
so they decode, skip, dead-letter and count exactly alike (docs/pipeline.md, "Poison
input"). The runners keep what differs: how records are read and when offsets are committed.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import DeadLettered
from labeltrail.events.serde import decode, event_type_of
from labeltrail.events.topics import events_on, foreign
from labeltrail.exceptions import SerializationError
from labeltrail.folds.base import Fold, Rejected
from labeltrail.kafka.producer import RecordTooLargeError

__all__ = [
    "Outbox",
    "Record",
    "RecordHandler",
    "StageStats",
    "dead_letter",
    "held_dead_letter",
    "msg_at",
]

log = logging.getLogger("labeltrail.kafka.runner")


class Record(Protocol):
    """The parts of a consumed record a stage reads (confluent-kafka's ``Message`` shape)."""

    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def key(self) -> str | bytes | None: ...

    def value(self) -> str | bytes | None: ...


class Outbox(Protocol):
    """Where a handler's outputs go (an :class:`~labeltrail.kafka.producer.EventProducer`)."""

    def topic_of(self, event: Event) -> str: ...

    def send(self, event: Event) -> None: ...

    def send_all(self, events: list[Event]) -> None:
        """Every event or none: :class:`RecordTooLargeError` if any is over the limit."""


_SKIPPED = "skipped"
"""Not a refusal: a record of a type the fold declares it does not take."""

_UNREADABLE = frozenset({"undecodable", "unknown_event_type", "schema_invalid"})


def msg_at(msg: Record) -> tuple[str, int, int]:
    """A message's (topic, partition, offset)."""
    return msg.topic() or "", msg.partition() or 0, msg.offset() or 0


def dead_letter(msg: Record, stage: str, reason_code: str, reason: str) -> DeadLettered:
    """The dead-letter record of a rejected message (id fixed by its source position).

    An oversized value travels by reference (size, hash, a prefix): the dead letter of any
    record the broker could deliver always fits under the producer's limit.
    """
    key, value = msg.key(), msg.value()
    return DeadLettered.rejecting(
        stage=stage,
        source=msg_at(msg),
        key=key if isinstance(key, bytes) else None,
        value=value if isinstance(value, bytes) else b"",
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
    ``emitted_by`` splits ``emitted`` by (topic, event type); ``blind_spots`` counts emitted
    agreement windows flagged as a blind spot, by slice (both exported as metrics,
    :mod:`labeltrail.kafka.metrics`).
    """

    consumed: int = 0
    restored: int = 0
    processed: int = 0
    rejected: int = 0
    emitted: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    emitted_by: Counter[tuple[str, str]] = field(default_factory=Counter)
    blind_spots: Counter[str] = field(default_factory=Counter)


class RecordHandler:
    """Applies records to one fold, sends its outputs and dead letters, counts in ``stats``."""

    def __init__(self, fold: Fold, prefix: str, stats: StageStats, outbox: Outbox) -> None:
        self.fold = fold
        self.stats = stats
        self.outbox = outbox
        self._on_topic = events_on(prefix)
        """The event types that belong on each topic; any other is dead-lettered."""
        self.accepts: frozenset[str] | None = getattr(fold, "accepts", None)
        """The event types the fold handles (None: all); others are skipped undecoded."""

    def foreign(self, topic: str, kind: str) -> str | None:
        """Why a ``kind`` record does not belong on ``topic``, or None when it does."""
        return foreign(self._on_topic, topic, kind)

    def restore(self, msg: Record, topic: str, partition: int, offset: int) -> None:
        """Rebuild state from a record processed before; emit nothing.

        A record rejected when it was live (foreign, undecodable, a fold error) is passed over
        the same way now, so the state rebuilt equals the state the stage had.
        """
        self.stats.consumed += 1
        self.stats.restored += 1
        value = msg.value()
        data = value if isinstance(value, bytes) else b""
        try:
            kind = event_type_of(data)
            if self.foreign(topic, kind) or (self.accepts is not None and kind not in self.accepts):
                return
            event = decode(data)
            self.fold.apply(event, LogPosition.at(topic, partition, offset))
        except SerializationError:
            return
        except Exception:  # it raised when live too, and was dead-lettered then
            return

    def live(
        self, msg: Record, topic: str, partition: int, offset: int, event: Event | None = None
    ) -> None:
        """Process a new record: its outputs, or its dead letter with the reason.

        ``event``: the record's event itself, when the caller holds the very object it was
        encoded from (the fused runner hands its own outputs over): then it is not decoded
        again; its type is checked against the topic and ``accepts`` as a decoded one's is.
        """
        self.stats.consumed += 1
        refused = self._apply(msg, topic, partition, offset, event)
        if refused is None:
            self.stats.processed += 1
        elif refused[0] == _SKIPPED:
            # The fold declares it would return nothing for this type: the body was not read.
            self.stats.skipped += 1
            self.stats.processed += 1
        else:
            self.reject(msg, *refused)

    def takes(self, topic: str, kind: str) -> bool | None:
        """Whether a ``kind`` event read on ``topic`` is applied (True), passed over as a type
        the fold does not take (False), or refused as foreign to the topic (None)."""
        if self.foreign(topic, kind):
            return None
        return self.accepts is None or kind in self.accepts

    def passed_over(self) -> None:
        """Count a live record of a type the fold does not take (see :meth:`takes`) as
        :meth:`live` would count it, without looking at it again."""
        self.stats.consumed += 1
        self.stats.skipped += 1
        self.stats.processed += 1

    def broadcast(self, msg: Record) -> None:
        """Apply a registry record read whole, outside the group (not this stage's counted
        input). Refused ones are dead-lettered (every worker writes the same dead letter id),
        except undecodable ones, which the projector, reading every topic, dead-letters."""
        topic = msg.topic() or ""
        refused = self._apply(msg, topic, msg.partition() or 0, msg.offset() or 0)
        if refused is None or refused[0] == _SKIPPED:
            return
        code, reason = refused
        if code in _UNREADABLE:
            return
        if code == "policy_rejected":
            log.warning("%s: broadcast input refused: %s", self.fold.name, reason)
            return
        self.outbox.send(dead_letter(msg, self.fold.name, code, reason))

    def _apply(
        self, msg: Record, topic: str, partition: int, offset: int, event: Event | None = None
    ) -> tuple[str, str] | None:
        """Apply one record and send its outputs; None when done, else (reason code, reason)
        why it was refused (``_SKIPPED`` for a type the fold does not take). ``event``: the
        record's event when the caller has it (see :meth:`live`)."""
        try:
            if event is None:
                value = msg.value()
                data = value if isinstance(value, bytes) else b""
                kind = event_type_of(data)
            else:
                data, kind = b"", type(event).__name__
            wrong = self.foreign(topic, kind)
            if wrong:
                return "wrong_topic", wrong
            if self.accepts is not None and kind not in self.accepts:
                return _SKIPPED, kind
            if event is None:
                event = decode(data)
        except SerializationError as exc:
            return exc.reason_code, str(exc)
        try:
            outputs = self.fold.apply(event, LogPosition.at(topic, partition, offset))
        except Exception as exc:
            # A poison record: dead-lettered with the error, never skipped in silence. The
            # fold may have changed its state before it raised; a restore repeats exactly that.
            log.exception("%s: the fold raised on %s[%s]@%s", self.fold.name, *msg_at(msg))
            return "fold_error", f"{type(exc).__name__}: {exc}"
        if not outputs:  # most records: no output, nothing to send or count
            return None
        events = [o for o in outputs if isinstance(o, Event)]
        try:
            self.outbox.send_all(events)
        except RecordTooLargeError as exc:
            return "output_too_large", f"nothing emitted: {exc}"
        self._emitted(events)
        rejected = [o.reason for o in outputs if isinstance(o, Rejected)]
        return ("policy_rejected", "; ".join(rejected)) if rejected else None

    def drain(self) -> None:
        """Settle what the fold still holds (its optional ``drain()``): outputs and rejections."""
        drain = getattr(self.fold, "drain", None)
        if drain is None:
            return
        for out in drain():
            if isinstance(out, Rejected):
                # The held input was counted as processed when it arrived; now it is rejected.
                self.stats.processed -= 1
                self.stats.rejected += 1
                self.stats.reasons["policy_rejected"] += 1
                self.outbox.send(held_dead_letter(self.fold.name, out.reason))
                continue
            try:
                self.outbox.send_all([out])
            except RecordTooLargeError as exc:
                self.outbox.send(held_dead_letter(self.fold.name, f"drained: {exc}"))
                continue
            self._emitted([out])

    def _emitted(self, events: list[Event]) -> None:
        """Count events sent: in all, by (topic, type), and the blind-spot flags among them."""
        self.stats.emitted += len(events)
        for event in events:
            self.stats.emitted_by[(self.outbox.topic_of(event), type(event).__name__)] += 1
            if event.__dict__.get("blind_spot"):  # IaaWindowClosed's flag
                self.stats.blind_spots[str(event.__dict__.get("slice", ""))] += 1

    def reject(self, msg: Record, code: str, reason: str) -> None:
        """Dead-letter ``msg`` with its reason, and count it."""
        self.stats.rejected += 1
        self.stats.reasons[code] += 1
        log.warning("%s rejected %s[%s]@%s: %s", self.fold.name, *msg_at(msg), reason)
        self.outbox.send(dead_letter(msg, self.fold.name, code, reason))
