"""Pre-labels: routing, auto-accept as machine-made provenance, acceptance per band."""

from __future__ import annotations

import pytest

from labeltrail.events.models import CommentScored, TaskCreated, VoteCast
from labeltrail.learning.prelabel import (
    DraftAcceptance,
    auto_accept_label,
    prelabel_decision,
    route_for,
)

CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]


def _scored(probs: list[float], temperature: float | None = None) -> CommentScored:
    top2 = sorted(probs)[-2:]
    return CommentScored.create(
        producer="scorer",
        id_parts=("s", str(probs)),
        comment_id="c-1f8a",
        model_version="m-2",
        classes=CLASSES,
        probabilities=probs,
        margin=top2[1] - top2[0],
        route="none",
        threshold=0.1,
        temperature=temperature,
    )


def test_article_margin_routes_to_annotation() -> None:
    assert route_for(0.09, 0.41, 0.1) == "annotate"
    assert route_for(0.5, 0.97, 0.1, 0.95) == "auto_accept"
    assert route_for(0.5, 0.7, 0.1, 0.95) == "none"
    assert route_for(0.05, 0.99, 0.1, 0.95) == "annotate"


def test_decision_and_machine_made_label() -> None:
    d = prelabel_decision(CLASSES, [0.32, 0.0, 0.41, 0.27, 0.0], 0.9)
    assert (d.label, d.confidence, d.auto_accept) == ("harassment", 0.41, False)
    assert auto_accept_label(_scored([0.32, 0.0, 0.41, 0.27, 0.0]), "v3", 0.9) is None
    label = auto_accept_label(_scored([0.96, 0.01, 0.01, 0.01, 0.01]), "v3", 0.9)
    assert label is not None
    assert label.machine_made and label.route == "auto_accept"
    assert label.vote_ids == [] and label.annotator_ids == []
    assert label.label == "non-toxic" and label.method == "model:m-2"
    again = auto_accept_label(_scored([0.96, 0.01, 0.01, 0.01, 0.01]), "v3", 0.9)
    assert again is not None and again.label_id == label.label_id
    with pytest.raises(ValueError):
        prelabel_decision(CLASSES, [1.0], 0.9)


def test_a_calibrated_score_gates_and_commits_the_calibrated_distribution() -> None:
    from labeltrail.quality.calibration import temper

    probs = [0.96, 0.01, 0.01, 0.01, 0.01]
    calibrated = temper(probs, 2.5)
    assert max(calibrated) < 0.9  # softened below the threshold the raw value passes
    assert auto_accept_label(_scored(probs, temperature=2.5), "v3", 0.9) is None
    label = auto_accept_label(_scored(probs, temperature=2.5), "v3", 0.6)
    assert label is not None and label.label == "non-toxic"
    assert label.distribution == calibrated and label.confidence == max(calibrated)
    assert label.method_params == {"auto_accept_threshold": "0.6000", "temperature": "2.5"}
    plain = auto_accept_label(_scored(probs), "v3", 0.6)  # no map: as before
    assert plain is not None and plain.distribution == probs
    assert plain.method_params == {"auto_accept_threshold": "0.6000"}


def test_acceptance_per_band_flags_anchoring() -> None:
    tracker = DraftAcceptance()
    for i in range(20):  # mid-confidence drafts: right half the time, humans accept all
        truth = "harassment" if i % 2 else "non-toxic"
        tracker.add("harassment", 0.75, "harassment", truth)
    for i in range(20):  # confident drafts: right 19/20, humans accept 19/20
        truth = "non-toxic" if i else "mild"
        tracker.add("non-toxic", 0.97, "non-toxic" if i else "mild", truth)
    rows = {(r["low"], r["high"]): r for r in tracker.result()}
    mid, top = rows[(0.7, 0.8)], rows[(0.95, 1.0)]
    assert mid["acceptance_rate"] == 1.0 and mid["draft_accuracy"] == 0.5 and mid["anchoring"]
    assert top["acceptance_rate"] == 0.95 and not top["anchoring"]
    assert rows[(0.0, 0.5)]["shown"] == 0


def test_add_vote_reads_task_and_vote() -> None:
    task = TaskCreated.create(
        producer="tasking",
        id_parts=("t",),
        task_id="t",
        comment_id="c",
        schema_version="v3",
        kind="crowd",
        reason="low_confidence",
        questions=[],
        redundancy=3,
        prelabel="harassment",
        prelabel_confidence=0.82,
    )
    vote = VoteCast.create(
        producer="frontend",
        id_parts=("v",),
        vote_id="v",
        task_id="t",
        comment_id="c",
        annotator_id="a47",
        schema_version="v3",
        label="non-toxic",
        time_spent_ms=1000,
        prelabel_shown=True,
    )
    tracker = DraftAcceptance().add_vote(task, vote)
    band = next(b for b in tracker.bands if b.shown)
    assert (band.low, band.shown, band.accepted) == (0.8, 1, 0)
