"""Server-side validation of a submission, and the event it becomes.

Nothing from the browser is trusted: the label must be a class of the task's schema version,
every answer must be to a question the task asks and one of that question's answers, numbers
must parse and lie in range, and any other field is refused. ``prelabel_shown`` comes from the
task itself (the page always shows a draft the task carries), and the time spent is the
server's own measure (from serving the task to this annotator to the submit); a client's
``time_ms`` is accepted for older clients and ignored, since ``VoteCast`` has no field for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from labeltrail.events.models import (
    AdjudicationRecorded,
    LabelSchemaPublished,
    TaskAssigned,
    VoteCast,
)
from labeltrail.exceptions import LabeltrailError

__all__ = ["PRODUCER", "SubmissionRejected", "build_outcome"]

PRODUCER = "annotate"
_ANSWER = "answer."
_CROWD_FIELDS = {"label", "time_ms", "confidence"}
_EXPERT_FIELDS = _CROWD_FIELDS | {"note"}
_MAX_NOTE = 2_000


class SubmissionRejected(LabeltrailError):
    """A submission that fails validation; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _number(form: Mapping[str, str], name: str) -> float | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise SubmissionRejected(name, f"{raw[:40]!r} is not a number") from exc
    if not math.isfinite(value):
        raise SubmissionRejected(name, "must be finite")
    return value


def _answers(
    task: TaskAssigned, schema: LabelSchemaPublished, form: Mapping[str, str]
) -> dict[str, str]:
    allowed = {
        q.question_id: q.answers for q in schema.questions if q.question_id in task.questions
    }
    answers: dict[str, str] = {}
    for name, value in form.items():
        if not name.startswith(_ANSWER):
            continue
        qid = name[len(_ANSWER) :]
        if qid not in allowed:
            raise SubmissionRejected(name, f"question {qid[:40]!r} is not asked by this task")
        if value == "":
            continue  # left unanswered
        if value not in allowed[qid]:
            raise SubmissionRejected(name, f"{value[:40]!r} is not an answer to {qid}")
        answers[qid] = value
    return answers


def build_outcome(
    task: TaskAssigned,
    schema: LabelSchemaPublished,
    form: Mapping[str, str],
    *,
    vote_or_adjudication_id: str,
    server_elapsed_ms: int,
) -> VoteCast | AdjudicationRecorded:
    """The event a valid submission produces; raises :class:`SubmissionRejected` otherwise.

    ``form`` maps field names to single values: ``label``, ``answer.<question_id>``,
    ``confidence`` and, for expert tasks, ``note`` (``time_ms`` is ignored).
    """
    expert = task.pool == "expert"
    known = _EXPERT_FIELDS if expert else _CROWD_FIELDS
    for name in form:
        if name not in known and not name.startswith(_ANSWER):
            raise SubmissionRejected(name[:40], "unknown field")
    if schema.version != task.schema_version:
        raise SubmissionRejected("schema_version", "schema does not match the task")
    label = form.get("label", "")
    if not label:
        raise SubmissionRejected("label", "choose a class")
    if label not in schema.classes:
        raise SubmissionRejected("label", f"{label[:40]!r} is not a class of {schema.version}")
    answers = _answers(task, schema, form)
    confidence = _number(form, "confidence")
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise SubmissionRejected("confidence", "must be between 0 and 1")
    if expert:
        if not task.request_id:
            raise SubmissionRejected("task", "expert task carries no adjudication request id")
        if confidence is None:
            raise SubmissionRejected("confidence", "an adjudication needs a confidence")
        note = form.get("note", "").strip()
        if len(note) > _MAX_NOTE:
            raise SubmissionRejected("note", f"longer than {_MAX_NOTE} characters")
        return AdjudicationRecorded.create(
            producer=PRODUCER,
            id_parts=(vote_or_adjudication_id,),
            causation_id=task.event_id,
            correlation_id=task.comment_id,
            adjudication_id=vote_or_adjudication_id,
            request_id=task.request_id,
            task_id=task.task_id,
            comment_id=task.comment_id,
            schema_version=task.schema_version,
            reviewer_id=task.annotator_id,
            label=label,
            confidence=confidence,
            note=note,
            context_seen=list(task.context),
        )
    return VoteCast.create(
        producer=PRODUCER,
        id_parts=(vote_or_adjudication_id,),
        causation_id=task.event_id,
        correlation_id=task.comment_id,
        vote_id=vote_or_adjudication_id,
        task_id=task.task_id,
        comment_id=task.comment_id,
        annotator_id=task.annotator_id,
        schema_version=task.schema_version,
        label=label,
        answers=answers,
        confidence=confidence,
        time_spent_ms=max(0, server_elapsed_ms),
        prelabel_shown=task.prelabel is not None,
    )
