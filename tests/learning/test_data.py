"""Training sets from committed labels, per-slice metrics and the relabel requests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from labeltrail.events.models import LabelCommitted
from labeltrail.learning.data import training_set_from_labels
from labeltrail.learning.loop import relabel_requests
from labeltrail.learning.metrics import evaluate_by_slice, flatten_metrics

CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]
DAY0 = dt.datetime(2024, 9, 2, tzinfo=dt.UTC)


def _label(cid: str, label: str, route: str, hours: int, **extra: object) -> LabelCommitted:
    dist = [0.9 if c == label else 0.025 for c in CLASSES]
    return LabelCommitted.create(
        producer="labels",
        occurred_at=DAY0 + dt.timedelta(hours=hours),
        id_parts=(cid, route, hours),
        label_id=f"{cid}-{route}-{hours}",
        comment_id=cid,
        schema_version="v3",
        label=label,
        classes=CLASSES,
        distribution=dist,
        confidence=0.9 if route == "adjudication" else 0.67,
        route=route,
        method="m",
        method_params={"agreement": "1.0000"},
        vote_ids=["v1", "v2", "v3"] if route == "consensus" else [],
        annotator_ids=[],
        **extra,
    )


LABELS = [
    _label("c-1", "non-toxic", "consensus", 1),
    _label("c-1", "harassment", "adjudication", 20),
    _label("c-2", "mild", "consensus", 2),
    _label("c-3", "non-toxic", "auto_accept", 1, machine_made=True),
    _label("c-4", "hate", "adjudication", 3),
]
TEXTS = {f"c-{i}": f"text {i}" for i in range(1, 5)}


def test_latest_label_adjudication_wins_and_as_of_cuts() -> None:
    ts = training_set_from_labels(LABELS, TEXTS, CLASSES, exclude={"c-4"})
    assert ts.comment_ids == ("c-1", "c-2")  # gold excluded, machine-made left out
    assert ts.routes == ("adjudication", "consensus")
    assert ts.targets[0].argmax() == 2 and ts.weights.tolist() == [0.9, 0.67]
    day0 = training_set_from_labels(LABELS, TEXTS, CLASSES, as_of=DAY0 + dt.timedelta(hours=5))
    assert dict(zip(day0.comment_ids, day0.routes, strict=True))["c-1"] == "consensus"
    assert day0.content_hash != ts.content_hash and day0.export_id != ts.export_id
    with_machine = training_set_from_labels(LABELS, TEXTS, CLASSES, include_machine_made=True)
    assert "c-3" in with_machine.comment_ids
    assert ts.export_event("file:///x").row_count == 2
    assert np.allclose(ts.targets.sum(axis=1), 1.0)


def test_relabel_requests_only_for_crowd_labels_in_flagged_slices() -> None:
    slices = {"c-1": "coded", "c-2": "coded", "c-3": "benign", "c-4": "coded"}
    requests = relabel_requests(LABELS, slices, {"coded"})
    assert [r.comment_id for r in requests] == ["c-2"]  # c-1 already adjudicated
    assert requests[0].vote_ids == ["v1", "v2", "v3"]
    again = relabel_requests(LABELS, slices, {"coded"})
    assert again[0].request_id == requests[0].request_id


def test_metrics_per_slice() -> None:
    probs = np.eye(5)[[0, 0, 2, 2, 4]]
    metrics = evaluate_by_slice(
        ["non-toxic", "harassment", "harassment", "harassment", "threats"],
        probs,
        ["benign", "coded", "coded", "explicit", "explicit"],
        CLASSES,
    )
    assert metrics["coded"].recall == {"harassment": 0.5} and metrics["coded"].accuracy == 0.5
    assert metrics["all"].toxic_recall == 0.75 and metrics["benign"].toxic_recall is None
    flat = flatten_metrics(metrics)
    assert flat["gold.coded.recall.harassment"] == 0.5 and flat["gold.all.n"] == 5.0
    with pytest.raises(ValueError):
        evaluate_by_slice(["non-toxic"], probs, ["benign"], CLASSES)


def test_weak_labels_fill_only_comments_without_a_human_label_at_their_weight() -> None:
    """The trainer's ``weak_labels = fill`` rule: a human label wins over a weak one whichever
    came first, a weak one fills an uncovered comment (not a gold one) at ``weak_weight`` times
    its confidence, and every row says its source."""
    weak = [
        _label("c-1", "hate", "weak", 30, machine_made=True, run_id="weak"),  # after the human
        _label("c-3", "mild", "weak", 2, machine_made=True, run_id="weak"),
        _label("c-3", "threats", "weak", 8, machine_made=True, run_id="weak"),  # latest wins
        _label("c-4", "mild", "weak", 4, machine_made=True, run_id="weak"),  # gold: left out
        _label("c-5", "mild", "weak", 4, machine_made=True, run_id="weak"),  # no text: out
        _label("c-2", "hate", "consensus", 9),  # not a weak label: never fills
    ]
    off = training_set_from_labels(LABELS, TEXTS, CLASSES, exclude={"c-4"})
    ts = training_set_from_labels(
        LABELS, TEXTS, CLASSES, exclude={"c-4"}, weak=weak, weak_weight=0.25
    )
    assert ts.comment_ids == ("c-1", "c-2", "c-3")
    assert ts.sources == ("human", "human", "weak")
    assert ts.routes == ("adjudication", "consensus", "weak")
    assert ts.label_ids[:2] == off.label_ids  # the human rows are unchanged
    assert ts.targets[2].argmax() == CLASSES.index("threats")
    assert ts.weights.tolist() == pytest.approx([0.9, 0.67, 0.25 * 0.67])
    assert ts.rows_by_source() == {"human": 2, "weak": 1, "machine": 0}
    assert ts.subset([2]).sources == ("weak",)
    # An auto-accepted label kept by include_machine_made also wins over a weak one.
    machine = training_set_from_labels(
        LABELS, TEXTS, CLASSES, exclude={"c-4"}, include_machine_made=True, weak=weak
    )
    assert machine.sources == ("human", "human", "machine")
    assert (
        off.sources == ("human", "human")
        and off.content_hash
        == training_set_from_labels(LABELS, TEXTS, CLASSES, exclude={"c-4"}, weak=()).content_hash
    )
