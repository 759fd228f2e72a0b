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
from functools import partial
from typing import Any

from labeltrail.events.ids import derive_id
from labeltrail.events.models import FeedbackReceived
from labeltrail.exceptions import InvalidLinesError
from labeltrail.ingest import RecordFits, aware_time, parse_lines, unlimited

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
    at = aware_time(fields.pop("at", None), "at")
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
    return parse_lines(
        lines,
        allowed=FEEDBACK_FIELDS,
        what="feedback",
        build=partial(feedback_event, producer=producer),
        key="feedback_id",
        error=InvalidFeedbackError,
        fits=fits,
    )
