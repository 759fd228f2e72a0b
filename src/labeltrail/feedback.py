"""Validate production feedback before it enters the log, all or nothing.

``labeltrail feedback ingest`` reads JSON lines of user flags, appeals and moderator
overrides, each with who gave it (an actor hash and kind) and when; every problem is a
:class:`~labeltrail.exceptions.LineError` and the whole input is refused, as ``labeltrail
ingest`` does for comments (the same line machinery, :mod:`labeltrail.ingest`). A feedback's
event id derives from its content, so ingesting a file again adds nothing. Whether its comment
exists is the feedback stage's check (``folds.feedback``: a dead letter with its reason), since
the comments are on the log, not here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from labeltrail.events.ids import derive_id
from labeltrail.events.models import FeedbackReceived
from labeltrail.exceptions import InvalidLinesError, LineError
from labeltrail.ingest import (
    RecordFits,
    describe,
    json_objects,
    record_problem,
    shorten,
    unknown_fields,
    unlimited,
)

__all__ = ["FEEDBACK_FIELDS", "InvalidFeedbackError", "feedback_event", "parse_feedback"]

FEEDBACK_FIELDS = frozenset(
    {"feedback_id", "comment_id", "kind", "label", "actor_hash", "actor_kind", "note", "at"}
)
"""The fields a feedback line may have (``at``: when it was given, ISO 8601 with a zone)."""

DEFAULT_ACTOR = {"user_flag": "user", "appeal": "author", "moderator_override": "moderator"}
"""Who gives each kind when the line does not say."""


class InvalidFeedbackError(InvalidLinesError):
    """One or more input lines are not valid feedback; nothing was produced."""

    what = "feedback line"


def feedback_event(fields: dict[str, Any], *, producer: str) -> FeedbackReceived:
    """A feedback line as a FeedbackReceived whose id derives from its content.

    Raises ValidationError (a missing or malformed field) or ValueError (an override without
    a label, a missing time)."""
    fields = dict(fields)
    at = fields.pop("at", None)
    if at is None:
        raise ValueError("at: required (when the feedback was given, ISO 8601 with a zone)")
    kind = fields.get("kind")
    if kind == "moderator_override" and not fields.get("label"):
        raise ValueError("label: a moderator override names the label it sets")
    if isinstance(kind, str) and "actor_kind" not in fields:
        fields["actor_kind"] = DEFAULT_ACTOR.get(kind, "unknown")
    event = FeedbackReceived.create(producer=producer, occurred_at=at, **fields)
    content = event.model_dump(mode="json", exclude={"envelope"})
    content["at"] = event.envelope.occurred_at.isoformat()
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    event_id = derive_id(FeedbackReceived.__name__, "feedback", event.feedback_id, canonical)
    envelope = event.envelope.model_copy(update={"event_id": event_id})
    return event.model_copy(update={"envelope": envelope})


def parse_feedback(
    lines: Iterable[bytes | str], *, producer: str = "feedback-cli", fits: RecordFits = unlimited
) -> list[FeedbackReceived]:
    """Parse JSON lines into FeedbackReceived events; all or nothing
    (:class:`InvalidFeedbackError` lists every bad line).

    Each line has feedback_id (the source system's), comment_id, kind (user_flag, appeal,
    moderator_override), actor_hash (never a raw id), at, and optional label (required for an
    override), actor_kind (user, author, moderator, trusted_flagger; by default the kind's
    usual actor) and note. The same feedback again is produced once; a feedback id repeated
    with another content is an error.
    """
    events: list[FeedbackReceived] = []
    errors: list[LineError] = []
    first: dict[str, tuple[int, str]] = {}
    for number, fields in json_objects(lines, errors):
        problem = unknown_fields(fields, FEEDBACK_FIELDS, "feedback")
        if problem is not None:
            errors.append(LineError(number, problem))
            continue
        try:
            event = feedback_event(fields, producer=producer)
        except ValidationError as exc:
            errors.append(LineError(number, describe(exc, "feedback")))
            continue
        except ValueError as exc:
            errors.append(LineError(number, str(exc)))
            continue
        earlier = first.get(event.feedback_id)
        if earlier is not None:
            if earlier[1] != event.event_id:
                errors.append(
                    LineError(
                        number,
                        f"feedback_id: {shorten(repr(event.feedback_id))} is on line "
                        f"{earlier[0]} with another content",
                    )
                )
            continue
        problem = record_problem(event, fits)
        if problem is not None:
            errors.append(LineError(number, problem))
            continue
        first[event.feedback_id] = (number, event.event_id)
        events.append(event)
    if errors:
        raise InvalidFeedbackError(errors)
    return events
