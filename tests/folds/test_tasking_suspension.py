"""Tasking honours suspensions: no new work for a suspended annotator, their open tasks
reassigned, and work again after a reinstatement; without Kafka."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from labeltrail.events import (
    AdjudicationRecorded,
    AdjudicationRequested,
    AnnotatorRegistered,
    CommentPosted,
    LogPosition,
    TaskAssigned,
    TaskCreated,
    VoteCast,
)
from labeltrail.events.base import Event
from labeltrail.events.models import AnnotatorReinstated, AnnotatorSuspended
from labeltrail.folds.base import Output
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from tests.events.samples import T0
from tests.folds.test_tasking import _scored, populated

POS = LogPosition(topic="x", partition=0, offset=0)


def _fold(**config: object) -> TaskingFold:
    return populated(TaskingFold(TaskingConfig(honeypot_rate=0.0, **config)))  # type: ignore[arg-type]


def _suspended(annotator: str, actor: str = "qc") -> AnnotatorSuspended:
    return AnnotatorSuspended.create(
        producer="t",
        id_parts=("s", annotator),
        annotator_id=annotator,
        reason="honeypot accuracy below the floor",
        actor=actor,
        evidence={"n": "12", "correct": "3"},
    )


def _reinstated(annotator: str) -> AnnotatorReinstated:
    return AnnotatorReinstated.create(
        producer="t",
        id_parts=("r", annotator),
        annotator_id=annotator,
        reason="retrained",
        actor="expert-1",
    )


def _vote(task: TaskCreated, annotator: str) -> VoteCast:
    return VoteCast.create(
        producer="t",
        vote_id=f"v-{task.task_id}-{annotator}",
        task_id=task.task_id,
        comment_id=task.comment_id,
        annotator_id=annotator,
        schema_version=task.schema_version,
        label="non-toxic",
        time_spent_ms=1000,
    )


def comment(
    cid: str, at: dt.datetime = T0, source: Literal["pool", "product_log"] = "pool"
) -> CommentPosted:
    """A posted comment whose id derives from ``cid`` (the same event each time)."""
    return CommentPosted.create(
        producer="t",
        id_parts=("c", cid),
        occurred_at=at,
        comment_id=cid,
        video_id="v",
        author_hash="h",
        text=f"text of {cid}",
        posted_at=at,
        source=source,
    )


def _tasks(out: list[Output]) -> list[TaskCreated]:
    return [o for o in out if isinstance(o, TaskCreated)]


def _assigned(out: list[Output]) -> list[TaskAssigned]:
    return [o for o in out if isinstance(o, TaskAssigned)]


def _apply(fold: TaskingFold, *events: Event) -> list[Output]:
    out: list[Output] = []
    for event in events:
        out += fold.apply(event, POS)
    return out


def test_open_tasks_go_to_the_next_annotator_of_the_same_draw() -> None:
    fold = _fold()
    (task,) = _tasks(fold.apply(_scored("c1"), POS))
    first, second, third = task.annotators
    fold.apply(_vote(task, first), POS)  # answered: not reassigned
    suspension = _suspended(second)
    out = fold.apply(suspension, POS)
    (again,) = _tasks(out)
    (assigned,) = _assigned(out)
    assert again.reason == "reassigned" and again.kind == "crowd"
    assert again.comment_id == "c1" and again.redundancy == task.redundancy
    assert again.envelope.causation_id == suspension.event_id
    assert assigned.task_id == again.task_id and assigned.annotator_id == again.annotators[0]
    successor = assigned.annotator_id
    assert successor not in task.annotators
    # The one the task would have had without the suspended annotator: a fold that knew of the
    # suspension before the score chooses the same three.
    other = _fold()
    other.apply(_suspended(second), POS)
    (fresh,) = _tasks(other.apply(_scored("c1"), POS))
    assert sorted(fresh.annotators) == sorted([first, third, successor])
    # The same suspension again changes nothing.
    assert fold.apply(suspension, POS) == []


def test_a_suspended_annotator_gets_no_new_task_until_reinstated() -> None:
    fold = _fold()
    fold.apply(_suspended("a1"), POS)
    for i in range(40):
        fold.apply(comment(f"k{i}"), POS)
    out = _apply(fold, *(_scored(f"k{i}") for i in range(20)))
    assert len(_tasks(out)) == 20
    assert all("a1" not in t.annotators for t in _tasks(out))
    assert all(a.annotator_id != "a1" for a in _assigned(out))
    fold.apply(_reinstated("a1"), POS)
    out = _apply(fold, *(_scored(f"k{i}") for i in range(20, 40)))
    assert any(a.annotator_id == "a1" for a in _assigned(out))


def test_work_is_held_while_too_few_are_eligible_and_released_on_reinstatement() -> None:
    fold = _fold()
    for annotator in ("a0", "a1", "a2", "a3"):
        fold.apply(_suspended(annotator), POS)
    assert fold.apply(_scored("c1"), POS) == []
    reason = fold.held_reason()
    assert reason is not None and "2 of 3 crowd annotators not suspended (4 are)" in reason
    out = fold.apply(_reinstated("a3"), POS)
    (task,) = _tasks(out)
    assert sorted(task.annotators) == ["a3", "a4", "a5"]


def test_an_open_share_nobody_can_take_waits_for_a_new_annotator() -> None:
    fold = _fold()
    (task,) = _tasks(fold.apply(_scored("c1"), POS))
    others = sorted({"a0", "a1", "a2", "a3", "a4", "a5"} - set(task.annotators))
    for annotator in others:
        fold.apply(_suspended(annotator), POS)
    assert fold.apply(_suspended(task.annotators[0]), POS) == []
    joined = AnnotatorRegistered.create(
        producer="t", annotator_id="a9", pool="crowd", locale="en", languages=["en"]
    )
    (assigned,) = _assigned(fold.apply(joined, POS))
    assert assigned.annotator_id == "a9" and assigned.comment_id == "c1"


def test_a_labeled_item_needs_no_reassignment() -> None:
    from tests.folds.test_tasking import _label

    fold = _fold()
    (task,) = _tasks(fold.apply(_scored("c1"), POS))
    fold.apply(_label("c1", "non-toxic"), POS)
    assert fold.apply(_suspended(task.annotators[0]), POS) == []


def _expert(i: int) -> AnnotatorRegistered:
    return AnnotatorRegistered.create(
        producer="t", annotator_id=f"e{i}", pool="expert", locale="en", languages=["en"]
    )


def test_an_open_expert_task_goes_to_another_expert_with_what_the_first_was_shown() -> None:
    fold = _fold()
    for i in range(3):
        fold.apply(_expert(i), POS)
    (task,) = _tasks(fold.apply(_scored("c1"), POS))
    votes = [_vote(task, a) for a in task.annotators]
    _apply(fold, *votes)
    request = AdjudicationRequested.create(
        producer="t",
        request_id="r1",
        comment_id="c1",
        schema_version="v3",
        reason="agreement below threshold",
        agreement=0.33,
        threshold=0.85,
        vote_ids=[v.vote_id for v in votes],
    )
    (expert_task,) = _tasks(fold.apply(request, POS))
    (expert,) = expert_task.annotators
    out = fold.apply(_suspended(expert, actor="lead-1"), POS)
    (again,) = _tasks(out)
    (assigned,) = _assigned(out)
    assert (again.kind, again.reason, again.request_id) == ("expert", "reassigned", "r1")
    assert assigned.pool == "expert" and assigned.annotator_id not in (expert, *task.annotators)
    assert [p.annotator_id for p in assigned.prior_votes] == task.annotators
    # Once the new expert answers, a suspension of theirs has nothing to pass on.
    verdict = AdjudicationRecorded.create(
        producer="t",
        adjudication_id="adj-1",
        request_id="r1",
        task_id=again.task_id,
        comment_id="c1",
        schema_version="v3",
        reviewer_id=assigned.annotator_id,
        label="harassment",
        confidence=0.9,
    )
    fold.apply(verdict, POS)
    assert fold.apply(_suspended(assigned.annotator_id, actor="lead-1"), POS) == []


def test_answered_work_leaves_nothing_behind() -> None:
    """What reassignment keeps grows with the open work, not with every task ever made."""
    fold = _fold()
    (task,) = _tasks(fold.apply(_scored("c1"), POS))
    (again,) = _tasks(fold.apply(_suspended(task.annotators[0]), POS))
    assert fold.live == {task.task_id: 3}
    _apply(fold, *(_vote(task, a) for a in task.annotators[1:]), _vote(again, again.annotators[0]))
    assert (fold.open, fold.crew, fold.live) == ({}, {}, {})


def test_a_vote_read_before_its_task_closes_it() -> None:
    """A rebuild reads votes beside scores: a share answered before its task is read is not
    open, and a suspension does not pass it on."""
    (task,) = _tasks(_fold().apply(_scored("c1"), POS))
    fold = _fold()
    fold.apply(_vote(task, task.annotators[0]), POS)
    fold.apply(_scored("c1"), POS)
    assert task.annotators[0] not in fold.open
    assert fold.apply(_suspended(task.annotators[0]), POS) == []
    # The others' shares are open, and a reassignment of one avoids the one who answered.
    (again,) = _tasks(fold.apply(_suspended(task.annotators[1]), POS))
    assert again.annotators[0] not in task.annotators


def test_the_trace_says_why_a_task_was_reassigned() -> None:
    from labeltrail.audit import render_trace

    fold = _fold()
    (task,) = _tasks(fold.apply(_scored("c1"), POS))
    suspension = _suspended(task.annotators[0])
    rows = [
        {
            "occurred_at": e.envelope.occurred_at,
            "event_type": type(e).__name__,
            "payload": e.model_dump_json(exclude={"envelope"}),
            "annotator_id": getattr(e, "annotator_id", ""),
        }
        for e in fold.apply(suspension, POS)
        if isinstance(e, TaskCreated | TaskAssigned)
    ]
    text = "\n".join(render_trace(rows))
    assert "reason=reassigned" in text and "a suspended annotator's open share" in text
