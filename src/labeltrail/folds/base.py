"""What a fold is, what it may return, and the helpers folds share to build their outputs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.construct import constructor
from labeltrail.events.ids import derive_id
from labeltrail.events.models import AdjudicationRequested

__all__ = ["Fold", "Output", "Pos", "Rejected", "build_event", "stable_id"]


@dataclass(frozen=True)
class Rejected:
    """An input refused by policy; the runner sends it to the dead-letter topic."""

    reason: str


Output = Event | Rejected


class Fold(Protocol):
    """A stateful, deterministic processor.

    ``inputs`` are topic suffixes (see :mod:`labeltrail.events.topics`). ``apply`` must give
    the same outputs, with the same event ids, whenever it sees the same inputs in the same
    per-key order: that is what makes replay and crash recovery exact.
    """

    name: str
    inputs: tuple[str, ...]

    def apply(self, event: Event, position: LogPosition) -> list[Output]: ...


class Pos(NamedTuple):
    """A log position as a plain tuple (a fold keeps many; a ``LogPosition`` costs more)."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, position: LogPosition) -> Pos:
        return cls(position.topic, position.partition, position.offset)

    def to_model(self) -> LogPosition:
        return LogPosition(topic=self.topic, partition=self.partition, offset=self.offset)


stable_id = derive_id
"""The former name of :func:`labeltrail.events.ids.derive_id` (the very same function, not a
copy); new code calls ``derive_id``."""


E = TypeVar("E", bound=Event)


def build_event(
    cls: type[E],
    *,
    event_id: str,
    producer: str,
    occurred_at: dt.datetime,
    causation_id: str | None,
    correlation_id: str | None,
    **fields: Any,
) -> E:
    """``cls.create(...)`` with an id computed beforehand, by the type's compiled constructor
    (:func:`labeltrail.events.construct.constructor`: no validation for an envelope and
    fields that already have their types, ``Envelope.build`` and pydantic's for any other)."""
    event: E = constructor(cls)(  # type: ignore[assignment]
        event_id, producer, occurred_at, causation_id, correlation_id, fields
    )
    return event


def adjudication_request(
    *,
    request_id: str,
    producer: str,
    cause: Event,
    comment_id: str,
    schema_version: str,
    reason: str,
    agreement: float,
    threshold: float,
    vote_ids: list[str],
) -> AdjudicationRequested:
    """An ``AdjudicationRequested`` a fold raises beside consensus (feedback, needs-context):
    its event id from ``request_id``, its time and causation those of ``cause``."""
    return build_event(
        AdjudicationRequested,
        event_id=derive_id("AdjudicationRequested", request_id),
        producer=producer,
        occurred_at=cause.envelope.occurred_at,
        causation_id=cause.event_id,
        correlation_id=comment_id,
        request_id=request_id,
        comment_id=comment_id,
        schema_version=schema_version,
        reason=reason,
        agreement=agreement,
        threshold=threshold,
        vote_ids=vote_ids,
    )
