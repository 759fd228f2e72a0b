"""The pure folds, run in memory over the simulated platform."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeltrail.events import (
    AnnotatorRegistered,
    AnnotatorReliabilityUpdated,
    LabelSchemaPublished,
    LogPosition,
    TaskCreated,
    VoteCast,
)
from labeltrail.folds.base import Rejected
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold, pairwise_agreement
from labeltrail.ontology import MODERATION_CLASSES, moderation_schema_v3
from labeltrail.quality import Votes
from labeltrail.quality._em import VoteDesign, e_step
from labeltrail.quality.agreement_items import item_agreement
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import final_labels, run_in_memory

POS = LogPosition(topic="x", partition=0, offset=0)


@pytest.fixture(scope="module")
def world() -> tuple[Platform, dict[str, tuple[str, str]], Counter[str]]:
    platform = Platform(PlatformConfig(n_comments=400, n_gold=40, seed=11))
    replay = run_in_memory(platform)
    return platform, final_labels(replay.log["labels"]), replay.counts


def test_every_annotated_comment_gets_one_final_label(world) -> None:  # type: ignore[no-untyped-def]
    platform, labels, counts = world
    annotated = {c.comment_id for c in platform.comments if c.slice != "thread_context"}
    assert set(labels) <= annotated
    # Every comment the stand-in model routed to annotation, and every gold item, is labeled.
    assert len(labels) >= 0.75 * len(annotated)
    assert counts["consensus.rejected"] == 0


def test_blind_spot_shows_and_experts_fix_it(world) -> None:  # type: ignore[no-untyped-def]
    platform, labels, _ = world
    coded = [cid for cid in labels if platform.slices[cid] == "coded_harassment"]
    assert coded, "the simulation must produce coded harassment"
    by_route = Counter(labels[c][1] for c in coded)
    crowd_right = sum(
        labels[c][0] == platform.truth[c] for c in coded if labels[c][1] == "consensus"
    )
    expert_right = sum(
        labels[c][0] == platform.truth[c] for c in coded if labels[c][1] == "adjudication"
    )
    # The crowd agrees on the wrong answer; adjudicated ones are right.
    assert by_route["consensus"] > 0 and crowd_right / by_route["consensus"] < 0.3
    assert expert_right / by_route["adjudication"] > 0.8


def _task() -> TaskCreated:
    return TaskCreated.create(
        producer="t",
        id_parts=("t1",),
        task_id="t1",
        comment_id="c1",
        schema_version="v3",
        kind="crowd",
        reason="random_audit",
        questions=[],
        redundancy=3,
        annotators=["a1", "a2", "a3"],
    )


def _setup(method: str = "mv") -> ConsensusFold:
    fold = ConsensusFold(ConsensusConfig(agreement_threshold=0.85, method=method))
    fold.apply(moderation_schema_v3(), POS)
    fold.apply(_task(), POS)
    return fold


def _vote(annotator: str, label: str, *, vote_id: str | None = None, **kw: str) -> VoteCast:
    fields = {
        "vote_id": vote_id or f"v-{annotator}",
        "task_id": "t1",
        "comment_id": "c1",
        "annotator_id": annotator,
        "schema_version": "v3",
        "label": label,
        "time_spent_ms": 1000,
    }
    fields.update(kw)
    return VoteCast.create(producer="t", id_parts=(fields["vote_id"],), **fields)


def test_article_triple_goes_to_adjudication() -> None:
    fold = _setup()
    fold.apply(_vote("a1", "non-toxic"), POS)
    fold.apply(_vote("a2", "harassment"), POS)
    out = fold.apply(_vote("a3", "non-toxic"), POS)
    names = [type(o).__name__ for o in out]
    assert names == ["ConsensusUpdated", "AdjudicationRequested"]
    update = out[0]
    assert update.label == "non-toxic"  # type: ignore[union-attr]
    assert update.status == "adjudication"  # type: ignore[union-attr]
    assert update.agreement == pytest.approx(1 / 3)  # type: ignore[union-attr]


def test_unanimous_triple_passes() -> None:
    fold = _setup()
    for a in ("a1", "a2", "a3"):
        out = fold.apply(_vote(a, "hate"), POS)
    assert out[0].status == "passed"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("vote", "reason"),
    [
        (_vote("a9", "hate"), "not assigned"),
        (_vote("a1", "hate", task_id="nope"), "unknown task"),
        (_vote("a1", "hate", schema_version="v2"), "schema v2"),
        (_vote("a1", "spam"), "not a class"),
    ],
)
def test_bad_votes_are_rejected(vote: VoteCast, reason: str) -> None:
    fold = _setup()
    out = fold.apply(vote, POS) + fold.drain()
    assert len(out) == 1 and isinstance(out[0], Rejected)
    assert reason in out[0].reason


def test_duplicate_vote_id_is_ignored_and_second_vote_rejected() -> None:
    fold = _setup()
    first = _vote("a1", "hate")
    assert fold.apply(first, POS)
    assert fold.apply(first, POS) == []
    assert fold.duplicates == 1
    again = fold.apply(_vote("a1", "mild", vote_id="other"), POS)
    assert isinstance(again[0], Rejected) and "already voted" in again[0].reason


def test_vote_before_its_task_is_held_not_rejected() -> None:
    fold = ConsensusFold()
    fold.apply(moderation_schema_v3(), POS)
    assert fold.apply(_vote("a1", "hate"), POS) == []
    out = fold.apply(_task(), POS)
    assert [type(o).__name__ for o in out] == ["ConsensusUpdated"]


def test_registered_annotators_feed_tasking() -> None:
    event = AnnotatorRegistered.create(
        producer="t", annotator_id="a", pool="crowd", locale="en", languages=["en"]
    )
    assert event.key == "a"


def test_reliability_weights_can_outvote_a_majority() -> None:
    """Two unreliable annotators against one reliable one: the reliable one wins."""
    fold = _setup("reliability-weighted")
    for annotator, accuracy in (("a1", 0.3), ("a2", 0.3), ("a3", 0.97)):
        fold.apply(
            AnnotatorReliabilityUpdated.create(
                producer="t",
                annotator_id=annotator,
                schema_version="v3",
                method="beta_gold",
                accuracy=accuracy,
                accuracy_lower=accuracy - 0.05,
                accuracy_upper=accuracy + 0.02,
                n_observations=40,
            ),
            POS,
        )
    fold.apply(_vote("a1", "non-toxic"), POS)
    fold.apply(_vote("a2", "non-toxic"), POS)
    out = fold.apply(_vote("a3", "harassment"), POS)
    update = out[0]
    assert update.label == "harassment"  # type: ignore[union-attr]
    assert "a3=0.970" in update.method_params["weights"]  # type: ignore[union-attr]
    assert update.status == "adjudication"  # type: ignore[union-attr]


def test_votes_under_a_discarded_version_are_rejected() -> None:
    fold = _setup()
    v4 = LabelSchemaPublished.create(
        producer="t",
        version="v4",
        classes=["ok", "not-ok"],
        questions=[],
        guideline_hash="h",
        supersedes="v3",
        old_label_policy="discard",
    )
    fold.apply(v4, POS)
    out = fold.apply(_vote("a1", "hate"), POS)
    assert isinstance(out[0], Rejected) and "retired" in out[0].reason


@settings(max_examples=60, deadline=None)
@given(
    accuracies=st.lists(st.floats(0.05, 0.99), min_size=1, max_size=5),
    answers=st.lists(st.integers(0, 4), min_size=5, max_size=5),
)
def test_streaming_posterior_equals_the_quality_core(
    accuracies: list[float], answers: list[int]
) -> None:
    classes = list(MODERATION_CLASSES)
    fold = ConsensusFold(ConsensusConfig(method="reliability-weighted"))
    votes = []
    for i, acc in enumerate(accuracies):
        annotator = f"a{i}"
        fold.apply(
            AnnotatorReliabilityUpdated.create(
                producer="t",
                annotator_id=annotator,
                schema_version="v3",
                method="beta_gold",
                accuracy=acc,
                accuracy_lower=0.0,
                accuracy_upper=1.0,
                n_observations=10,
            ),
            POS,
        )
        votes.append(_vote(annotator, classes[answers[i]]))
    ours = fold._posterior(votes, classes)
    k = len(classes)
    confusion = np.stack(
        [
            np.where(np.eye(k, dtype=bool), a, (1 - a) / (k - 1))
            for a in [min(max(x, 1e-3), 1 - 1e-3) for x in accuracies]
        ]
    )
    codes = [classes.index(v.label) for v in votes]
    # the batch models' E-step (DawidSkene's), each vote its own annotator, uniform prior
    design = VoteDesign.from_votes(
        Votes.from_codes([0] * len(votes), range(len(votes)), codes, n_classes=k), np.float64
    )
    log_confusion = np.log(confusion).transpose(0, 2, 1)
    reference, _ = e_step(design, log_confusion, np.full(k, -np.log(k)), None, np.float64)
    assert ours == pytest.approx(reference[0].tolist(), abs=2e-6)
    labels = [v.label for v in votes]
    if len(labels) > 1:
        expected = item_agreement(codes, np.full(k, 1 / k)).observed
        assert pairwise_agreement(labels) == pytest.approx(expected)


def test_votes_wait_for_their_schema() -> None:
    fold = ConsensusFold(ConsensusConfig(method="mv"))
    fold.apply(_task(), POS)
    assert fold.apply(_vote("a1", "hate"), POS) == []
    out = fold.apply(moderation_schema_v3(), POS)
    assert [type(o).__name__ for o in out] == ["ConsensusUpdated"]
    assert out[0].classes == list(MODERATION_CLASSES)  # type: ignore[union-attr]
    orphan = ConsensusFold()
    orphan.apply(_task(), POS)
    orphan.apply(_vote("a1", "hate"), POS)
    rejected = orphan.drain()
    assert isinstance(rejected[0], Rejected) and "unpublished schema v3" in rejected[0].reason
