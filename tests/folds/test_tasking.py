"""Tasking: assignment, honeypots and schema migrations, without Kafka."""

from __future__ import annotations

import pytest

from labeltrail.events import (
    AnnotatorRegistered,
    CommentPosted,
    CommentScored,
    LabelCommitted,
    LabelSchemaPublished,
    LogPosition,
    TaskCreated,
)
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from labeltrail.ontology import MODERATION_CLASSES, moderation_schema_v3
from tests.events.samples import T0

POS = LogPosition(topic="x", partition=0, offset=0)


def _world(**config: object) -> TaskingFold:
    return populated(TaskingFold(TaskingConfig(**config)))  # type: ignore[arg-type]


def populated(fold: TaskingFold) -> TaskingFold:
    """``fold`` after the v3 schema, six crowd annotators and comments c1 and c2."""
    fold.apply(moderation_schema_v3(), POS)
    for i in range(6):
        fold.apply(
            AnnotatorRegistered.create(
                producer="t",
                annotator_id=f"a{i}",
                pool="crowd",
                locale="en",
                languages=["en"],
            ),
            POS,
        )
    for cid in ("c1", "c2"):
        fold.apply(
            CommentPosted.create(
                producer="t",
                comment_id=cid,
                video_id="v",
                author_hash="h",
                text="text",
                posted_at=T0,
                source="pool",
            ),
            POS,
        )
    return fold


def _scored(cid: str, route: str = "annotate") -> CommentScored:
    return CommentScored.create(
        producer="t",
        comment_id=cid,
        model_version="m",
        classes=list(MODERATION_CLASSES),
        probabilities=[0.32, 0.0, 0.41, 0.27, 0.0],
        margin=0.09,
        route=route,
        threshold=0.1,
    )


def _label(cid: str, label: str, version: str = "v3") -> LabelCommitted:
    return LabelCommitted.create(
        producer="t",
        label_id=f"l-{cid}",
        comment_id=cid,
        schema_version=version,
        label=label,
        classes=list(MODERATION_CLASSES),
        distribution=[0.2] * 5,
        confidence=0.9,
        route="consensus",
        method="mv",
        vote_ids=[],
        annotator_ids=[],
    )


def test_k_distinct_annotators_recorded_on_the_task() -> None:
    fold = _world()
    out = fold.apply(_scored("c1"), POS)
    task = out[0]
    assert isinstance(task, TaskCreated)
    assert len(set(task.annotators)) == 3
    assigned = [o.annotator_id for o in out[1:4]]  # type: ignore[union-attr]
    assert assigned == task.annotators
    assert task.cost_usd == pytest.approx(0.12)
    assert task.prelabel is None
    assert fold.apply(_scored("c1"), POS) == []  # the same score again: no second task


def test_drafts_are_copied_when_enabled() -> None:
    out = _world(prelabels=True).apply(_scored("c1"), POS)
    task = out[0]
    assert isinstance(task, TaskCreated)
    assert (task.prelabel, task.prelabel_confidence) == ("harassment", 0.41)
    assert all(getattr(o, "prelabel", None) == "harassment" for o in out[1:])


def test_scores_routed_elsewhere_make_no_task() -> None:
    assert _world().apply(_scored("c1", route="none"), POS) == []


def _v4(policy: str) -> LabelSchemaPublished:
    return LabelSchemaPublished.create(
        producer="t",
        version="v4",
        classes=list(MODERATION_CLASSES),
        questions=[],
        guideline_hash="h4",
        supersedes="v3",
        old_label_policy=policy,
        relabel_classes=["harassment"],
    )


def test_relabel_subset_requeues_affected_labels_under_the_new_version() -> None:
    fold = _world()
    fold.apply(_label("c1", "harassment"), POS)
    fold.apply(_label("c2", "non-toxic"), POS)
    out = fold.apply(_v4("relabel_subset"), POS)
    tasks = [o for o in out if isinstance(o, TaskCreated)]
    assert [(t.comment_id, t.schema_version, t.reason) for t in tasks] == [("c1", "v4", "relabel")]
    # A v3 label that arrives after the change is re-queued as well.
    fold.apply(
        CommentPosted.create(
            producer="t",
            comment_id="c3",
            video_id="v",
            author_hash="h",
            text="late",
            posted_at=T0,
            source="pool",
        ),
        POS,
    )
    late = fold.apply(_label("c3", "harassment"), POS)
    assert [(t.comment_id, t.schema_version) for t in late if isinstance(t, TaskCreated)] == [
        ("c3", "v4")
    ]


@pytest.mark.parametrize("policy", ["discard", "keep_as_feature", "none"])
def test_other_policies_requeue_nothing(policy: str) -> None:
    fold = _world()
    fold.apply(_label("c1", "harassment"), POS)
    assert fold.apply(_v4(policy), POS) == []
    # New work is decomposed under the new version.
    task = fold.apply(_scored("c2"), POS)[0]
    assert isinstance(task, TaskCreated) and task.schema_version == "v4"


@pytest.mark.parametrize(("top", "expected"), [(0.97, 1), (0.90, 0)])
def test_confident_model_labels_are_committed_as_machine_made(top: float, expected: int) -> None:
    from labeltrail.folds.labels import LabelsFold

    rest = (1 - top) / 4
    scored = CommentScored.create(
        producer="t",
        comment_id="c9",
        model_version="m2",
        classes=list(MODERATION_CLASSES),
        probabilities=[top, rest, rest, rest, rest],
        margin=top - rest,
        route="auto_accept",
        threshold=0.1,
    )
    fold = LabelsFold(auto_accept_threshold=0.95)
    assert fold.apply(scored, POS) == []  # no schema yet: held
    out = fold.apply(moderation_schema_v3(), POS)
    assert len(out) == expected
    if expected:
        label = out[0]
        assert isinstance(label, LabelCommitted)
        assert (label.route, label.machine_made, label.vote_ids, label.annotator_ids) == (
            "auto_accept",
            True,
            [],
            [],
        )
        assert label.method == "model:m2" and label.schema_version == "v3"
        assert label.source_positions == [POS]
        assert label.envelope.producer == "labels"
    assert LabelsFold().apply(scored, POS) == []  # off by default
