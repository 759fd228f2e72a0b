"""The envelope every event carries, and the base class of all events.

Events are frozen pydantic models that mirror the Avro contracts in ``schemas/avro``.
Timestamps are timezone-aware UTC datetimes truncated to milliseconds, because the Avro
contract stores them as ``timestamp-millis`` and a round trip must give back an equal event.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from labeltrail.events.ids import derive_id, new_id

__all__ = [
    "EPOCH",
    "Envelope",
    "Event",
    "LogPosition",
    "Millis",
    "Record",
    "epoch_millis",
    "from_epoch_millis",
    "to_utc_millis",
    "utc_now",
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


def epoch_millis(at: dt.datetime) -> int:
    """An aware datetime as integer milliseconds since the epoch (exact, floored, no float)."""
    return (at - EPOCH) // _MS


def from_epoch_millis(ms: int) -> dt.datetime:
    """Integer milliseconds since the epoch as an aware UTC datetime."""
    return EPOCH + dt.timedelta(milliseconds=ms)


def to_utc_millis(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is dt.UTC and not value.microsecond % 1000:
        # Already what the two steps below give (astimezone to its own tzinfo returns the
        # value itself): most calls, e.g. an output's event time copied from its cause.
        return value
    value = value.astimezone(dt.UTC)
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


Millis = Annotated[AwareDatetime, AfterValidator(to_utc_millis)]
"""A UTC datetime with millisecond precision (Avro ``timestamp-millis``)."""


_last_now: tuple[int, dt.datetime] = (-1, EPOCH)
"""The millisecond :func:`utc_now` last saw and its datetime (one tuple: a thread reads a
consistent pair)."""


def utc_now() -> dt.datetime:
    """The current time, in UTC, truncated to milliseconds.

    The system clock's milliseconds (what ``datetime.now`` reads, truncated as
    :func:`to_utc_millis` does), and the same datetime again while they have not changed:
    every output stamps its ``recorded_at`` with this, several per millisecond on the live
    path, and a hit costs a tenth of building the datetime.
    """
    global _last_now
    ms = time.time_ns() // 1_000_000
    last = _last_now
    if last[0] == ms:
        return last[1]
    at = from_epoch_millis(ms)
    _last_now = (ms, at)
    return at


class Record(BaseModel):
    """A frozen value object that maps to an Avro record."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64")


class LogPosition(Record):
    """A position in the log: where a derived fact was read from."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def at(cls, topic: str, partition: int, offset: int) -> LogPosition:
        """``LogPosition(...)`` without validation when the arguments are a str and two ints
        (a runner builds one per consumed record); anything else is validated as usual."""
        if type(topic) is str and type(partition) is int and type(offset) is int:
            position = object.__new__(cls)
            object.__setattr__(
                position, "__dict__", {"topic": topic, "partition": partition, "offset": offset}
            )
            object.__setattr__(
                position, "__pydantic_fields_set__", {"topic", "partition", "offset"}
            )
            object.__setattr__(position, "__pydantic_extra__", None)
            object.__setattr__(position, "__pydantic_private__", None)
            return position
        return cls(topic=topic, partition=partition, offset=offset)


class Envelope(Record):
    """Metadata common to every event."""

    event_id: str = Field(description="Unique id; deterministic for derived events.")
    event_type: str = Field(description="The event's record name, e.g. VoteCast.")
    occurred_at: Millis = Field(description="When the fact happened (event time).")
    recorded_at: Millis = Field(description="When the fact was written to the log.")
    producer: str = Field(description="The service or client that wrote the event.")
    causation_id: str | None = Field(None, description="The event that caused this one.")
    correlation_id: str | None = Field(None, description="The flow this event belongs to.")

    @classmethod
    def build(
        cls,
        *,
        event_id: str,
        event_type: str,
        occurred_at: dt.datetime,
        recorded_at: dt.datetime,
        producer: str,
        causation_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Envelope:
        """``Envelope(...)`` without pydantic's validation when every argument already has
        its field's type (strings, aware datetimes: those are normalised to UTC milliseconds
        here, as ``Millis`` does); anything else is validated, and rejected, as usual.

        Every event gets one, so this is on the hot path of every stage.
        """
        if (
            type(event_id) is str
            and type(event_type) is str
            and type(producer) is str
            and type(occurred_at) is dt.datetime
            and type(recorded_at) is dt.datetime
            and occurred_at.utcoffset() is not None
            and recorded_at.utcoffset() is not None
            and (causation_id is None or type(causation_id) is str)
            and (correlation_id is None or type(correlation_id) is str)
        ):
            values = {
                "event_id": event_id,
                "event_type": event_type,
                "occurred_at": to_utc_millis(occurred_at),
                "recorded_at": to_utc_millis(recorded_at),
                "producer": producer,
                "causation_id": causation_id,
                "correlation_id": correlation_id,
            }
            envelope = object.__new__(cls)
            # What model_construct sets; every field is given (tests/events checks equality).
            object.__setattr__(envelope, "__dict__", values)
            object.__setattr__(envelope, "__pydantic_fields_set__", set(values))
            object.__setattr__(envelope, "__pydantic_extra__", None)
            object.__setattr__(envelope, "__pydantic_private__", None)
            return envelope
        return cls(
            event_id=event_id,
            event_type=event_type,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
            producer=producer,
            causation_id=causation_id,
            correlation_id=correlation_id,
        )


class Event(Record):
    """Base class of all events: an envelope plus the event's own fields.

    Subclasses set ``key_field``, the field whose value is the Kafka message key.
    """

    key_field: ClassVar[str] = ""

    envelope: Envelope

    @classmethod
    def create(
        cls,
        *,
        producer: str,
        occurred_at: dt.datetime | None = None,
        id_parts: tuple[object, ...] | None = None,
        causation_id: str | None = None,
        correlation_id: str | None = None,
        recorded_at: dt.datetime | None = None,
        **fields: Any,
    ) -> Self:
        """Build an event with its envelope.

        ``id_parts`` makes the event id deterministic: the same inputs give the same id, so a
        reprocessed event deduplicates downstream. Without it the id is random (use that only
        for facts that enter the system from outside, such as a posted comment).
        """
        now = utc_now()
        event_id = derive_id(cls.__name__, *id_parts) if id_parts is not None else new_id()
        envelope = Envelope.build(
            event_id=event_id,
            event_type=cls.__name__,
            occurred_at=occurred_at or now,
            recorded_at=recorded_at or now,
            producer=producer,
            causation_id=causation_id,
            correlation_id=correlation_id,
        )
        return cls(envelope=envelope, **fields)

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    @property
    def key(self) -> str:
        """The Kafka message key of this event."""
        return str(getattr(self, self.key_field)) if self.key_field else self.envelope.event_id
