"""The publish gate's comparison, pure: per slice, against the live model, with a tolerance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labeltrail.learning.gate import (
    accuracy_by_slice,
    calibrate_on_gold,
    compare_on_gold,
    model_refused,
    predicted_labels,
)
from labeltrail.learning.metrics import GoldSet

# 10 gold items: 6 on the "plain" slice, 4 on the "coded" one (all harassment).
TRUTH = ("non-toxic",) * 4 + ("harassment",) * 2 + ("harassment",) * 4
SLICES = ("plain",) * 6 + ("coded",) * 4
GOLD = GoldSet(
    comment_ids=tuple(f"c{i}" for i in range(10)),
    texts=tuple(f"text {i}" for i in range(10)),
    truth=TRUTH,
    slices=SLICES,
)


def _with(wrong: set[int]) -> list[str]:
    """Predictions equal to the truth except at ``wrong`` (called non-toxic / mild)."""
    return [
        ("mild" if t == "non-toxic" else "non-toxic") if i in wrong else t
        for i, t in enumerate(TRUTH)
    ]


def test_accuracy_by_slice_counts_every_slice_and_all() -> None:
    got = accuracy_by_slice(TRUTH, _with({0, 6, 7}), SLICES)
    assert got == {"all": (10, 0.7), "coded": (4, 0.5), "plain": (6, pytest.approx(5 / 6))}


def test_a_candidate_worse_on_one_slice_is_refused_even_when_better_overall() -> None:
    live = _with({0, 1, 2})  # plain 3/6 wrong, coded all right: 0.7 overall
    candidate = _with({6})  # plain all right, coded 3/4: 0.9 overall
    decision = compare_on_gold(GOLD, candidate, live, tolerance=0.2, baseline_version="m1")
    assert not decision.passed
    assert decision.worse_slices == ("coded",)
    coded = next(s for s in decision.slices if s.slice == "coded")
    assert (coded.baseline, coded.candidate, coded.n) == (1.0, 0.75, 4)
    assert "coded 1.000 -> 0.750 (n=4)" in decision.reason() and "m1" in decision.reason()
    metrics = decision.metrics()
    assert metrics["baseline.coded.accuracy"] == 1.0 and metrics["gold.coded.accuracy"] == 0.75
    assert metrics["gate.tolerance"] == 0.2 and metrics["gold.all.accuracy"] == 0.9


@pytest.mark.parametrize(
    ("tolerance", "passed"),
    [(0.0, False), (0.24, False), (0.25, True), (0.3, True)],
)
def test_the_tolerance_is_the_largest_drop_allowed(tolerance: float, passed: bool) -> None:
    decision = compare_on_gold(
        GOLD, _with({6}), _with(set()), tolerance=tolerance, baseline_version="m1"
    )
    assert decision.passed is passed  # coded drops by exactly 0.25


def test_equal_or_better_everywhere_passes_at_zero_tolerance() -> None:
    decision = compare_on_gold(
        GOLD, _with(set()), _with({0, 9}), tolerance=0.0, baseline_version="m1"
    )
    assert decision.passed and decision.worse_slices == ()
    assert "no slice" in decision.reason()


def test_the_first_model_passes_with_its_own_figures() -> None:
    decision = compare_on_gold(GOLD, _with({6}), None, tolerance=0.0, baseline_version=None)
    assert decision.passed and decision.baseline_version is None
    assert "first model" in decision.reason()
    assert not any(k.startswith("baseline.") for k in decision.metrics())


def test_no_gold_item_means_no_comparison_and_a_refusal() -> None:
    empty = GoldSet((), (), (), ())
    decision = compare_on_gold(empty, [], [], tolerance=0.02, baseline_version="m1")
    assert not decision.passed and decision.problem and "gold publish" in decision.reason()
    first = compare_on_gold(empty, [], None, tolerance=0.02, baseline_version=None)
    assert first.passed


def test_models_with_other_class_lists_compare_by_name() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert predicted_labels(probs, ["non-toxic", "harassment"]) == ["non-toxic", "harassment"]
    assert predicted_labels(probs, ["harassment", "non-toxic"]) == ["harassment", "non-toxic"]
    with pytest.raises(ValueError):
        predicted_labels(probs, ["a", "b", "c"])
    assert math.isnan(accuracy_by_slice([], [], [])["all"][1])


def test_the_refusal_is_one_fact_however_often_it_is_tried() -> None:
    decision = compare_on_gold(GOLD, _with({6}), _with(set()), tolerance=0.0, baseline_version="m1")
    kwargs = {
        "producer": "cli",
        "model_version": "m2",
        "artifact_sha256": "ab",
        "classes": ["non-toxic", "harassment"],
        "schema_version": "v3",
        "export_id": None,
    }
    first, again = model_refused(decision, GOLD, **kwargs), model_refused(decision, GOLD, **kwargs)
    assert first.event_id == again.event_id
    assert first.worse_slices == ["all", "coded"] and first.baseline_version == "m1"
    assert first.metrics["baseline.coded.accuracy"] == 1.0
    other = compare_on_gold(GOLD, _with({6}), _with(set()), tolerance=0.1, baseline_version="m1")
    assert model_refused(other, GOLD, **kwargs).event_id != first.event_id


def _overconfident(n: int, seed: int = 0) -> tuple[GoldSet, np.ndarray]:
    """``n`` gold items of two classes; the model says 0.97 on its top class and is right 70%
    of the time."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    right = rng.random(n) < 0.7
    top = np.where(right, truth, 1 - truth)
    p = np.full((n, 2), 0.03)
    p[np.arange(n), top] = 0.97
    classes = ("non-toxic", "harassment")
    gold = GoldSet(
        comment_ids=tuple(f"g{i}" for i in range(n)),
        texts=tuple(f"text {i}" for i in range(n)),
        truth=tuple(classes[t] for t in truth),
        slices=("plain",) * n,
    )
    return gold, p


def test_calibration_on_gold_softens_an_overconfident_model() -> None:
    gold, p = _overconfident(200)
    cal = calibrate_on_gold(gold, p, ["non-toxic", "harassment"], min_gold=30, bins=10)
    assert cal.temperature is not None and cal.temperature > 1.5
    m = cal.metrics
    assert m["calibration.n_gold"] == 200.0
    assert m["calibration.ece_before"] > 0.2 and m["calibration.ece_after"] < 0.05
    assert sum(m[f"calibration.before.bin{k:02d}.n"] for k in range(10)) == 200.0
    assert m["calibration.before.bin09.confidence"] == pytest.approx(0.97)
    assert m["calibration.after.bin09.n"] == 0.0  # softened out of the top bin


def test_no_map_below_min_gold_or_when_off() -> None:
    gold, p = _overconfident(20)
    classes = ["non-toxic", "harassment"]
    assert calibrate_on_gold(gold, p, classes, min_gold=30).temperature is None
    assert calibrate_on_gold(gold, p, classes, min_gold=30).metrics == {}
    assert calibrate_on_gold(gold, p, classes, min_gold=None).temperature is None
    # Gold items of a class the model does not predict do not count towards min_gold.
    assert calibrate_on_gold(gold, p, ["non-toxic", "hate"], min_gold=15).temperature is None
