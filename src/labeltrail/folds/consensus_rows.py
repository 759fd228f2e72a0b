"""The consensus fold's outputs as plain tuples: :class:`ConsensusRow` for a
``ConsensusUpdated``, :class:`RequestRow` for an ``AdjudicationRequested``.

:meth:`labeltrail.folds.consensus.ConsensusFold.apply_batch` returns these instead of events;
``to_event`` turns each into the very event ``apply`` returns. Their ids are functions of their
fields, derived when read: a replay that never writes an item's intermediate updates does not
pay for their ids.
"""

from __future__ import annotations

from typing import NamedTuple

from labeltrail.events.base import epoch_millis, from_epoch_millis
from labeltrail.events.ids import derive_id
from labeltrail.events.models import AdjudicationRequested, ConsensusUpdated
from labeltrail.folds.base import build_event

__all__ = ["PRODUCER", "ConsensusRow", "RequestRow"]

PRODUCER = "consensus"


class ConsensusRow(NamedTuple):
    """A ``ConsensusUpdated`` as a plain tuple.

    Its event id is a function of its fields (:attr:`event_id`), derived when read: a replay
    that never writes the intermediate updates of an item does not pay for their ids.
    ``stored_id`` holds the id of an update read from the log instead.
    """

    stored_id: str | None
    occurred_ms: int
    causation_id: str | None
    comment_id: str
    schema_version: str
    method: str
    method_params: dict[str, str]
    classes: list[str]
    posterior: list[float]
    label: str
    agreement: float
    vote_ids: list[str]
    annotator_ids: list[str]
    votes_expected: int
    status: str

    @classmethod
    def of(cls, event: ConsensusUpdated) -> ConsensusRow:
        return cls(
            event.envelope.event_id,
            epoch_millis(event.envelope.occurred_at),
            event.envelope.causation_id,
            event.comment_id,
            event.schema_version,
            event.method,
            dict(event.method_params),
            list(event.classes),
            list(event.posterior),
            event.label,
            event.agreement,
            list(event.vote_ids),
            list(event.annotator_ids),
            event.votes_expected,
            event.status,
        )

    @property
    def event_id(self) -> str:
        if self.stored_id is not None:
            return self.stored_id
        return derive_id(
            "ConsensusUpdated",
            "consensus",
            self.comment_id,
            self.schema_version,
            self.vote_ids,
            self.method,
        )

    def to_event(self) -> ConsensusUpdated:
        return build_event(
            ConsensusUpdated,
            event_id=self.event_id,
            producer=PRODUCER,
            occurred_at=from_epoch_millis(self.occurred_ms),
            causation_id=self.causation_id,
            correlation_id=self.comment_id,
            comment_id=self.comment_id,
            schema_version=self.schema_version,
            method=self.method,
            method_params=self.method_params,
            classes=self.classes,
            posterior=self.posterior,
            label=self.label,
            agreement=self.agreement,
            vote_ids=self.vote_ids,
            annotator_ids=self.annotator_ids,
            votes_expected=self.votes_expected,
            status=self.status,
        )


class RequestRow(NamedTuple):
    """An ``AdjudicationRequested`` as a plain tuple.

    Like a :class:`ConsensusRow`, its ids (:attr:`request_id`, :attr:`event_id`), its
    :attr:`causation_id` (the id of the update that raised it) and its :attr:`reason` are
    derived when read; ``stored_ids`` (event id, request id), ``cause`` as a string and
    ``stored_reason`` hold those of a request read from the log instead.
    """

    stored_ids: tuple[str, str] | None
    occurred_ms: int
    cause: ConsensusRow | str | None
    comment_id: str
    schema_version: str
    stored_reason: str | None
    agreement: float
    threshold: float
    vote_ids: list[str]

    @classmethod
    def of(cls, event: AdjudicationRequested) -> RequestRow:
        return cls(
            (event.envelope.event_id, event.request_id),
            epoch_millis(event.envelope.occurred_at),
            event.envelope.causation_id,
            event.comment_id,
            event.schema_version,
            event.reason,
            event.agreement,
            event.threshold,
            list(event.vote_ids),
        )

    @property
    def request_id(self) -> str:
        if self.stored_ids is not None:
            return self.stored_ids[1]
        return derive_id(
            "adjudication-request", self.comment_id, self.schema_version, self.vote_ids
        )

    @property
    def event_id(self) -> str:
        if self.stored_ids is not None:
            return self.stored_ids[0]
        return derive_id("AdjudicationRequested", self.request_id)

    @property
    def causation_id(self) -> str | None:
        cause = self.cause
        return cause.event_id if isinstance(cause, ConsensusRow) else cause

    @property
    def reason(self) -> str:
        if self.stored_reason is not None:
            return self.stored_reason
        return f"per-item agreement {self.agreement:.2f} below {self.threshold:.2f}"

    def to_event(self) -> AdjudicationRequested:
        return build_event(
            AdjudicationRequested,
            event_id=self.event_id,
            producer=PRODUCER,
            occurred_at=from_epoch_millis(self.occurred_ms),
            causation_id=self.causation_id,
            correlation_id=self.comment_id,
            request_id=self.request_id,
            comment_id=self.comment_id,
            schema_version=self.schema_version,
            reason=self.reason,
            agreement=self.agreement,
            threshold=self.threshold,
            vote_ids=self.vote_ids,
        )
