"""The tasks tasking emits, built from what decided them: crowd, honeypot and expert tasks and
their assignments.

Pure builders: the fold decides who gets what (and whether at all); these only turn that
decision into ``TaskCreated`` / ``TaskAssigned`` with ids derived from the decision, so a
replay emits the same events.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from labeltrail.events.base import Event
from labeltrail.events.models import (
    AdjudicationRequested,
    CommentPosted,
    CommentScored,
    LabelSchemaPublished,
    PriorVote,
    TaskAssigned,
    TaskCreated,
    TaskKind,
    TaskReason,
)
from labeltrail.folds.base import build_event, stable_id
from labeltrail.learning.prelabel import prelabel_decision

__all__ = [
    "PRODUCER",
    "assignment",
    "crowd_task",
    "draft",
    "expert_task",
    "honeypot_task",
    "reassigned_task",
]

PRODUCER = "tasking"


def draft(
    scored: CommentScored | None, schema: LabelSchemaPublished
) -> tuple[str | None, float | None]:
    """The model's top class and its probability, as a task's draft label
    (:func:`~labeltrail.learning.prelabel.prelabel_decision`); (None, None) when there is no
    score or the model's classes are not the schema's."""
    if scored is None or set(scored.classes) != set(schema.classes):
        return None, None
    proposed = prelabel_decision(scored.classes, scored.probabilities, math.inf)
    return proposed.label, proposed.confidence


E = TypeVar("E", TaskCreated, TaskAssigned)


def _caused(cls: type[E], key: str, cause: Event, correlation_id: str, **fields: Any) -> E:
    """Tasking's ``cls`` event caused by ``cause``, at its event time, its id derived from
    ``key``."""
    return build_event(
        cls,
        event_id=stable_id(cls.__name__, key),
        producer=PRODUCER,
        occurred_at=cause.envelope.occurred_at,
        causation_id=cause.event_id,
        correlation_id=correlation_id,
        **fields,
    )


def _task(
    task_id: str,
    cause: Event,
    comment_id: str,
    schema_version: str,
    kind: TaskKind,
    reason: TaskReason,
    questions: list[str],
    annotators: list[str],
    *,
    redundancy: int,
    cost_usd: float,
    **fields: Any,
) -> TaskCreated:
    """A ``TaskCreated`` whose event id derives from the task id, caused by ``cause``."""
    return _caused(
        TaskCreated,
        task_id,
        cause,
        comment_id,
        task_id=task_id,
        comment_id=comment_id,
        schema_version=schema_version,
        kind=kind,
        reason=reason,
        questions=questions,
        redundancy=redundancy,
        annotators=annotators,
        cost_usd=cost_usd,
        **fields,
    )


def crowd_task(
    task_id: str,
    comment: CommentPosted,
    schema: LabelSchemaPublished,
    reason: TaskReason,
    cause: Event,
    annotators: list[str],
    *,
    redundancy: int,
    cost_per_vote_usd: float,
    prelabel: tuple[str | None, float | None] = (None, None),
    request_id: str | None = None,
) -> TaskCreated:
    """A crowd task: the comment decomposed into the schema's questions, for ``annotators``
    (``request_id``: the task request it answers, e.g. active learning's)."""
    questions = [q.question_id for q in schema.questions]
    return _task(
        task_id,
        cause,
        comment.comment_id,
        schema.version,
        "crowd",
        reason,
        questions,
        annotators,
        redundancy=redundancy,
        cost_usd=round(cost_per_vote_usd * len(annotators), 6),
        prelabel=prelabel[0],
        prelabel_confidence=prelabel[1],
        request_id=request_id,
    )


def honeypot_task(
    task: TaskCreated, item: str, task_id: str, annotator: str, expected_label: str, cost_usd: float
) -> TaskCreated:
    """The honeypot of (chosen crowd ``task``, gold ``item``): the gold item asked as the task
    was asked, of one of its annotators, with the gold answer to score the vote against."""
    return _task(
        task_id,
        task,
        item,
        task.schema_version,
        "honeypot",
        "honeypot",
        task.questions,
        [annotator],
        redundancy=1,
        cost_usd=cost_usd,
        prelabel=task.prelabel,
        prelabel_confidence=task.prelabel_confidence,
        expected_label=expected_label,
    )


def expert_task(
    request: AdjudicationRequested,
    schema: LabelSchemaPublished | None,
    task_id: str,
    expert: str,
    cost_usd: float,
    reason: TaskReason = "adjudication",
) -> TaskCreated:
    """An adjudication task for one expert, under the request's schema version (``reason``
    ``production_feedback`` for the review of a label production feedback contradicts)."""
    questions = [q.question_id for q in schema.questions] if schema else []
    return _task(
        task_id,
        request,
        request.comment_id,
        request.schema_version,
        "expert",
        reason,
        questions,
        [expert],
        redundancy=1,
        cost_usd=cost_usd,
        request_id=request.request_id,
    )


def reassigned_task(
    task: TaskCreated, task_id: str, annotator: str, cause: Event, cost_usd: float
) -> TaskCreated:
    """The share of ``task`` a suspended annotator left open, as a task of its own for
    ``annotator``, caused by the suspension (``cause``). It asks what ``task`` asked and keeps
    its redundancy, so consensus still completes the item at that many votes."""
    return _task(
        task_id,
        cause,
        task.comment_id,
        task.schema_version,
        task.kind,
        "reassigned",
        task.questions,
        [annotator],
        redundancy=task.redundancy,
        cost_usd=cost_usd,
        prelabel=task.prelabel,
        prelabel_confidence=task.prelabel_confidence,
        request_id=task.request_id,
    )


def assignment(
    task: TaskCreated,
    comment: CommentPosted,
    annotator: str,
    pool: str,
    cost_usd: float,
    *,
    context: list[str] | None = None,
    prior_votes: list[PriorVote] | None = None,
) -> TaskAssigned:
    """``task`` assigned to ``annotator``: what the annotator's queue shows (the comment's text,
    the draft, and for experts the thread and the crowd's votes)."""
    assignment_id = stable_id("assignment", task.task_id, annotator)
    return _caused(
        TaskAssigned,
        assignment_id,
        task,
        task.comment_id,
        task_id=task.task_id,
        assignment_id=assignment_id,
        comment_id=task.comment_id,
        annotator_id=annotator,
        pool="expert" if pool == "expert" else "crowd",
        schema_version=task.schema_version,
        questions=task.questions,
        text=comment.text,
        context=context or [],
        prelabel=task.prelabel,
        prelabel_confidence=task.prelabel_confidence,
        prior_votes=prior_votes or [],
        request_id=task.request_id,
        cost_usd=cost_usd,
    )
