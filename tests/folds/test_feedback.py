"""The feedback fold's rules, in memory: what opens an expert review and what does not.

The integration test (tests/cli/test_feedback.py) drives the same stage on the broker from
``labeltrail feedback ingest``; these pin the policy case by case.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import (
    AdjudicationRequested,
    CommentPosted,
    FeedbackReceived,
    LabelCommitted,
)
from labeltrail.folds.base import Output, Rejected
from labeltrail.folds.feedback import FeedbackFold, feedback_request_id

AT = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
CLASSES = ["ok", "toxic"]
POS = LogPosition(topic="t.x", partition=0, offset=0)


def comment(cid: str = "c1") -> CommentPosted:
    return CommentPosted.create(
        producer="test",
        id_parts=(cid,),
        comment_id=cid,
        video_id="v",
        author_hash="a",
        text="hello",
        posted_at=AT,
        source="product_log",
    )


def label(
    cid: str = "c1",
    value: str = "toxic",
    run_id: str | None = None,
    vote_ids: Sequence[str] = ("v1", "v2", "v3"),
    at: dt.datetime = AT,
) -> LabelCommitted:
    """A crowd label by a1, a2 and a3 (tests/cli/test_feedback.py puts it on the log)."""
    return LabelCommitted.create(
        producer="test",
        id_parts=(cid, value, run_id),
        occurred_at=at,
        label_id=f"l-{cid}-{value}",
        comment_id=cid,
        schema_version="v1",
        label=value,
        classes=CLASSES,
        distribution=[0.1, 0.9] if value == "toxic" else [0.9, 0.1],
        confidence=0.9,
        route="consensus",
        method="mv",
        vote_ids=list(vote_ids),
        annotator_ids=["a1", "a2", "a3"],
        run_id=run_id,
    )


def feedback(
    fid: str, kind: str = "appeal", value: str | None = "ok", cid: str = "c1"
) -> FeedbackReceived:
    return FeedbackReceived.create(
        producer="test",
        id_parts=(fid,),
        occurred_at=AT + dt.timedelta(hours=1),
        feedback_id=fid,
        comment_id=cid,
        kind=kind,
        label=value,
        actor_hash="h",
    )


def run(fold: FeedbackFold, *events: Event) -> list[Output]:
    return [out for event in events for out in fold.apply(event, POS)]


def test_an_appeal_against_the_label_opens_one_review_with_the_votes() -> None:
    fold = FeedbackFold()
    appeal = feedback("f1")
    out = run(fold, comment(), label(), appeal, appeal)
    assert len(out) == 1 and isinstance(out[0], AdjudicationRequested)
    request = out[0]
    assert request.request_id == feedback_request_id("f1") == "feedback:f1"
    assert request.reason == "production_feedback"
    assert request.vote_ids == ["v1", "v2", "v3"] and request.schema_version == "v1"
    assert request.envelope.causation_id == appeal.event_id
    again = run(FeedbackFold(), comment(), label(), appeal)[0]
    assert isinstance(again, AdjudicationRequested) and again.event_id == request.event_id


def test_agreement_flags_and_labeling_runs_open_nothing() -> None:
    fold = FeedbackFold()
    out = run(
        fold,
        comment(),
        label(run_id="run-1"),  # a labeling run's label is not live: nothing to contest
        label(value="toxic"),
        feedback("f1", value="toxic"),
        feedback("f2", kind="user_flag", value="ok"),
        feedback("f3", kind="user_flag", value=None),
    )
    assert out == []
    assert fold.flags["c1"] == {"ok": 1, "": 1}


def test_an_override_waits_for_the_comment_and_its_first_label() -> None:
    fold = FeedbackFold()
    assert run(fold, feedback("f1", kind="moderator_override"), comment()) == []
    assert fold.held_reason() is not None
    out = run(fold, label())
    assert [type(o).__name__ for o in out] == ["AdjudicationRequested"]
    assert fold.held_reason() is None


def test_an_appeal_without_a_label_contests_the_decision() -> None:
    out = run(FeedbackFold(), comment(), label(), feedback("f1", value=None))
    assert len(out) == 1 and isinstance(out[0], AdjudicationRequested)


def test_unknown_comments_and_classes_are_rejected_with_their_reason() -> None:
    fold = FeedbackFold()
    out = run(fold, comment(), label(), feedback("f1", value="spam"), feedback("f2", cid="nope"))
    assert out == [Rejected("feedback f1: label 'spam' is not a class of v1")]
    assert fold.drain() == [Rejected("feedback f2 for unknown comment nope")]
    assert fold.drain() == []
