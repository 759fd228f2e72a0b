from __future__ import annotations

import numpy as np
import pytest

from labeltrail.quality import NO_GOLD, Votes
from labeltrail.quality.calibration import TemperatureCalibrator, expected_calibration_error
from labeltrail.quality.reliability import (
    BetaReliability,
    gold_accuracy,
    gold_confusion,
    reliability_trajectory,
    update_reliability,
)


def test_beta_fold() -> None:
    state = BetaReliability(2.0, 2.0)
    for ok in [True, True, True, False]:
        state = update_reliability(state, ok)
    assert (state.alpha, state.beta) == (5.0, 3.0)
    lo, hi = state.interval(0.9)
    assert lo < state.mean < hi


@pytest.fixture
def votes() -> tuple[Votes, np.ndarray]:
    # annotator a always right, b right half the time; items 0..3 gold, 4 not
    v = Votes.from_long([0, 0, 1, 1, 2, 2, 3, 3, 4], list("ababababa"), [1, 1, 0, 1, 1, 1, 0, 0, 1])
    return v, np.array([1, 0, 1, 0, NO_GOLD])


def test_gold_accuracy(votes: tuple[Votes, np.ndarray]) -> None:
    v, gold = votes
    acc = gold_accuracy(v, gold)
    assert acc.n.tolist() == [4, 4] and acc.correct.tolist() == [4, 3]
    assert acc.mean[0] == pytest.approx(5 / 6)
    assert acc.low[0] < acc.mean[0] < acc.high[0]


def test_gold_confusion_rows(votes: tuple[Votes, np.ndarray]) -> None:
    v, gold = votes
    conf = gold_confusion(v, gold, smoothing=0.0 + 1e-9)
    np.testing.assert_allclose(conf[0], np.eye(2), atol=1e-6)
    np.testing.assert_allclose(conf[1], [[0.5, 0.5], [0.0, 1.0]], atol=1e-6)


def test_trajectory_cumulative(votes: tuple[Votes, np.ndarray]) -> None:
    v, gold = votes
    window = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    t = reliability_trajectory(v, gold, window, cumulative=True)
    assert t.windows.tolist() == [0, 1]
    assert t.n[1].tolist() == [2, 4] and t.correct[1].tolist() == [1, 3]


def test_temperature_softens_overconfidence() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 500)
    right = rng.random(500) < 0.7
    pred = np.where(right, gold, 1 - gold)
    post = np.full((500, 2), 0.01)
    post[np.arange(500), pred] = 0.99
    cal = TemperatureCalibrator().fit(post, gold)
    assert cal.temperature_ > 1
    new = cal.transform(post)
    np.testing.assert_array_equal(new.argmax(1), post.argmax(1))
    before = expected_calibration_error(post.max(1), right)
    after = expected_calibration_error(new.max(1), right)
    assert after < before and after < 0.05
