"""Annotator reliability: accuracy against gold/honeypots with Beta posteriors, per-annotator
confusion estimates and their trajectory over windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from labeltrail.exceptions import QualityError, VoteFormatError
from labeltrail.quality._encoding import NO_GOLD, Votes

__all__ = [
    "AccuracyTable",
    "BetaReliability",
    "Trajectory",
    "gold_accuracy",
    "gold_confusion",
    "reliability_trajectory",
    "update_reliability",
]


@dataclass(frozen=True)
class BetaReliability:
    """Beta(alpha, beta) posterior of an annotator's accuracy; a fold over honeypot results.

    >>> r = BetaReliability()
    >>> r = update_reliability(update_reliability(r, True), False)
    >>> (r.alpha, r.beta, round(r.mean, 3))
    (2.0, 2.0, 0.5)
    """

    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        if not (self.alpha > 0 and self.beta > 0):
            raise QualityError("Beta parameters must be positive")

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def n_observed(self) -> float:
        return self.alpha + self.beta

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Equal-tailed credible interval."""
        tail = (1.0 - level) / 2.0
        lo, hi = stats.beta.ppf([tail, 1.0 - tail], self.alpha, self.beta)
        return float(lo), float(hi)

    def prob_below(self, floor: float) -> float:
        """Posterior probability that the accuracy is below ``floor``: P(accuracy < floor).

        >>> round(BetaReliability(3.0, 12.0).prob_below(0.7), 4)
        1.0
        >>> round(BetaReliability(12.0, 3.0).prob_below(0.7), 3)
        0.161
        """
        return float(stats.beta.cdf(floor, self.alpha, self.beta))


def update_reliability(
    state: BetaReliability, correct: bool, weight: float = 1.0
) -> BetaReliability:
    """Apply one honeypot/gold result (``weight`` can discount old evidence or soft gold)."""
    if weight < 0:
        raise QualityError("weight must be non-negative")
    if correct:
        return BetaReliability(state.alpha + weight, state.beta)
    return BetaReliability(state.alpha, state.beta + weight)


@dataclass(frozen=True, eq=False)
class AccuracyTable:
    """Per annotator, all (n_annotators,): gold votes, correct votes, posterior mean and
    equal-tailed interval at ``level`` under a Beta(prior) prior."""

    n: NDArray[np.int64]
    correct: NDArray[np.int64]
    mean: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    level: float


def _gold_votes(votes: Votes, gold: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    g = np.asarray(gold, dtype=np.int64)
    if g.shape != (votes.n_items,):
        raise VoteFormatError(f"gold must be codes of shape ({votes.n_items},)")
    vote_gold = g[votes.item]
    return vote_gold != NO_GOLD, vote_gold


def _accuracy(
    hits: NDArray[np.int64], n: NDArray[np.int64], prior: tuple[float, float], level: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    a = hits + prior[0]
    b = n - hits + prior[1]
    tail = (1.0 - level) / 2.0
    lo = stats.beta.ppf(tail, a, b)
    hi = stats.beta.ppf(1.0 - tail, a, b)
    return a / (a + b), np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def gold_accuracy(
    votes: Votes, gold: ArrayLike, prior: tuple[float, float] = (1.0, 1.0), level: float = 0.95
) -> AccuracyTable:
    """Accuracy of each annotator on gold (or honeypot) items. gold: codes (n_items,), -1 = none."""
    has, vote_gold = _gold_votes(votes, gold)
    a_n = votes.n_annotators
    n = np.bincount(votes.annotator[has], minlength=a_n).astype(np.int64)
    hit_mask = votes.label[has] == vote_gold[has]
    hits = np.bincount(votes.annotator[has][hit_mask], minlength=a_n).astype(np.int64)
    mean, lo, hi = _accuracy(hits, n, prior, level)
    return AccuracyTable(n, hits, mean, lo, hi, level)


def gold_confusion(votes: Votes, gold: ArrayLike, smoothing: float = 1.0) -> NDArray[np.float64]:
    """Posterior-mean confusion per annotator from gold votes: (n_annotators, n_true, n_given),
    rows sum to 1, each row with a symmetric Dirichlet(smoothing) prior."""
    has, vote_gold = _gold_votes(votes, gold)
    a_n, k = votes.n_annotators, votes.n_classes
    flat = (votes.annotator[has] * k + vote_gold[has]) * k + votes.label[has]
    counts = np.bincount(flat, minlength=a_n * k * k).reshape(a_n, k, k) + smoothing
    out: NDArray[np.float64] = counts / counts.sum(axis=2, keepdims=True)
    return out


@dataclass(frozen=True, eq=False)
class Trajectory:
    """windows: (n_windows,) sorted window ids; n, correct, mean, low, high:
    (n_annotators, n_windows). ``cumulative`` tells whether windows accumulate."""

    windows: NDArray[np.int64]
    n: NDArray[np.int64]
    correct: NDArray[np.int64]
    mean: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    cumulative: bool


def reliability_trajectory(
    votes: Votes,
    gold: ArrayLike,
    window: ArrayLike,
    *,
    cumulative: bool = False,
    prior: tuple[float, float] = (1.0, 1.0),
    level: float = 0.95,
) -> Trajectory:
    """Gold accuracy per annotator and window. window: (n_votes,) integer window id per vote
    (e.g. event-time day). With ``cumulative`` each window includes all earlier ones."""
    w = np.asarray(window)
    if w.shape != (votes.n_votes,) or (w.size and w.dtype.kind not in "iu"):
        raise VoteFormatError("window must hold one integer window id per vote")
    has, vote_gold = _gold_votes(votes, gold)
    windows, w_code = np.unique(w, return_inverse=True)
    a_n, n_w = votes.n_annotators, windows.size
    cell = votes.annotator[has] * n_w + w_code[has]
    n = np.bincount(cell, minlength=a_n * n_w).reshape(a_n, n_w)
    hit = votes.label[has] == vote_gold[has]
    hits = np.bincount(cell[hit], minlength=a_n * n_w).reshape(a_n, n_w)
    if cumulative:
        n, hits = np.cumsum(n, axis=1), np.cumsum(hits, axis=1)
    mean, lo, hi = _accuracy(hits, n, prior, level)
    return Trajectory(windows.astype(np.int64), n, hits, mean, lo, hi, cumulative)
