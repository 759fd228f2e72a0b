"""Tasking says why it holds input (``held_reason``, read by the stage runner's progress log)."""

from __future__ import annotations

from labeltrail.events import AdjudicationRequested, AnnotatorRegistered, CommentPosted
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from labeltrail.ontology import moderation_schema_v3
from tests.events.samples import sample_event
from tests.folds.test_tasking import POS, _scored


def _annotator(i: int) -> AnnotatorRegistered:
    return AnnotatorRegistered.create(
        producer="t", annotator_id=f"a{i}", pool="crowd", locale="en", languages=["en"]
    )


def _comment(cid: str) -> CommentPosted:
    comment = sample_event("CommentPosted")
    assert isinstance(comment, CommentPosted)
    return comment.model_copy(update={"comment_id": cid})


def _fold(*, schema: bool, annotators: int, comments: int, **config: object) -> TaskingFold:
    fold = TaskingFold(TaskingConfig(**config))  # type: ignore[arg-type]
    if schema:
        fold.apply(moderation_schema_v3(), POS)
    for i in range(annotators):
        fold.apply(_annotator(i), POS)
    for i in range(comments):
        fold.apply(_comment(f"c{i}"), POS)
        fold.apply(_scored(f"c{i}"), POS)
    return fold


def test_nothing_held_is_none() -> None:
    assert TaskingFold().held_reason() is None
    fold = _fold(schema=True, annotators=3, comments=5)
    assert fold.held == {}
    assert fold.held_reason() is None


def test_no_schema_says_so_and_clears_once_published() -> None:
    fold = _fold(schema=False, annotators=3, comments=40)
    assert fold.held_reason() == "holding 40 comments: no label schema published yet"
    out = fold.apply(moderation_schema_v3(), POS)
    assert out, "the schema releases the held comments"
    assert fold.held_reason() is None


def test_too_few_annotators_counts_them() -> None:
    fold = _fold(schema=True, annotators=2, comments=40)
    assert fold.held_reason() == "holding 40 comments: 2 of 3 crowd annotators registered"
    fold.apply(_annotator(2), POS)
    assert fold.held_reason() is None


def test_min_crowd_pool_and_missing_schema_together() -> None:
    fold = _fold(schema=False, annotators=4, comments=1, min_crowd_pool=10)
    assert fold.held_reason() == (
        "holding 1 comment: no label schema published yet, 4 of 10 crowd annotators registered"
    )


def test_scores_ahead_of_their_comments() -> None:
    fold = _fold(schema=True, annotators=3, comments=0)
    fold.apply(_scored("c9"), POS)
    assert fold.held_reason() == "holding 1 comment: 1 of them scored but not yet posted"
    fold.apply(_comment("c9"), POS)
    assert fold.held_reason() is None


def test_pending_adjudication_requests() -> None:
    fold = _fold(schema=True, annotators=3, comments=0)
    request = sample_event("AdjudicationRequested")
    assert isinstance(request, AdjudicationRequested) and request.vote_ids
    fold.apply(request, POS)
    assert fold.held_reason() == (
        "holding 1 adjudication request: 1 wait for their votes or comment, "
        "0 of 1 experts registered"
    )


def _expert(i: int) -> AnnotatorRegistered:
    return AnnotatorRegistered.create(
        producer="t", annotator_id=f"e{i}", pool="expert", locale="en", languages=["en"]
    )


def test_a_request_read_before_any_expert_is_held_then_served() -> None:
    """Kafka gives no order across topics: an adjudication request whose votes and comment
    are in, read before the expert registry, waits for the experts instead of being
    rejected (it was dead-lettered as "no expert registered", and the item never got its
    expert verdict)."""
    fold = _fold(schema=True, annotators=3, comments=0, min_expert_pool=2)
    request = sample_event("AdjudicationRequested")
    assert isinstance(request, AdjudicationRequested)
    fold.apply(_comment(request.comment_id), POS)
    for vote_id in request.vote_ids:
        vote = sample_event("VoteCast").model_copy(
            update={"vote_id": vote_id, "comment_id": request.comment_id}
        )
        fold.apply(vote, POS)
    assert fold.apply(request, POS) == []
    assert fold.held_reason() == "holding 1 adjudication request: 0 of 2 experts registered"
    assert fold.apply(_expert(1), POS) == []  # one of the two it waits for
    out = fold.apply(_expert(2), POS)
    kinds = sorted(type(o).__name__ for o in out)
    assert kinds == ["TaskAssigned", "TaskCreated"], out
    assert fold.held_reason() is None


def test_a_request_still_without_experts_at_the_end_is_rejected_with_why() -> None:
    fold = _fold(schema=True, annotators=3, comments=0)
    request = sample_event("AdjudicationRequested")
    assert isinstance(request, AdjudicationRequested)
    fold.apply(_comment(request.comment_id), POS)
    for vote_id in request.vote_ids:
        fold.apply(sample_event("VoteCast").model_copy(update={"vote_id": vote_id}), POS)
    fold.apply(request, POS)
    (rejected,) = fold.drain()
    assert "0 of 1 experts registered" in getattr(rejected, "reason", "")


def test_a_comment_posted_again_with_other_content_is_refused_and_the_first_stands() -> None:
    """The declared policy for a known comment id: the same event again changes nothing; other
    content is refused (dead-lettered by the runner), so tasks keep the first posting's text.
    Before, the later text silently replaced it."""
    fold = _fold(schema=True, annotators=3, comments=0)
    first = _comment("c1")
    assert fold.apply(first, POS) == []
    assert fold.apply(first, POS) == []  # a redelivery or the gold topic's copy
    edited = CommentPosted.create(
        producer="t",
        comment_id="c1",
        video_id=first.video_id,
        author_hash=first.author_hash,
        text="a different text under the same id",
        posted_at=first.posted_at,
        source=first.source,
    )
    (refused,) = fold.apply(edited, POS)
    assert "posted again with other content" in getattr(refused, "reason", "")
    assert fold.comments["c1"].text == first.text
    out = fold.apply(_scored("c1"), POS)
    texts = {getattr(o, "text", None) for o in out} - {None}
    assert texts <= {first.text}, texts
