"""Seeded synthetic crowds: annotators with their own confusion matrices, as vote arrays.

Two simulators share one annotator model (:func:`spread_errors`) but do different jobs: this
one draws millions of votes at once as integer codes, for the quality estimators' benchmarks
and tests; :mod:`labeltrail.sim.platform` is the event-level world (comments, texts, a crowd
blind spot, gold, one deterministic answer per task assignment) that the folds replay.
Used by the benchmarks (the article's 800,000 comments, 240 annotators, 3 votes each) and by
tests. Pure numpy; every random draw comes from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from labeltrail.exceptions import QualityError

__all__ = ["ARTICLE_PRIORS", "SimulatedCrowd", "simulate_crowd", "spread_errors"]

ARTICLE_PRIORS: tuple[float, ...] = (0.70, 0.15, 0.08, 0.05, 0.02)
"""Class priors of the article-scale set (non-toxic, then four harm classes)."""


@dataclass(frozen=True, eq=False)
class SimulatedCrowd:
    """item, annotator, label: (n_votes,) int64 codes, sorted by item; truth: (n_items,);
    confusion: (n_annotators, n_classes, n_classes), row = true class, column = given label."""

    item: NDArray[np.int64]
    annotator: NDArray[np.int64]
    label: NDArray[np.int64]
    truth: NDArray[np.int64]
    confusion: NDArray[np.float64]


def spread_errors(
    accuracy: NDArray[np.float64], shares: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Confusion matrices from per-class accuracies (..., k) and how each class's errors are
    shared among the other classes (..., k, k - 1), e.g. flat Dirichlet draws: (..., k, k),
    row = true class. The one annotator model of both simulators."""
    k = accuracy.shape[-1]
    conf = np.empty((*accuracy.shape, k))
    for c in range(k):
        others = [j for j in range(k) if j != c]
        conf[..., c, c] = accuracy[..., c]
        conf[..., c, others] = shares[..., c, :] * (1.0 - accuracy[..., c])[..., None]
    return conf


def _confusions(
    rng: np.random.Generator, n_annotators: int, n_classes: int, accuracy: tuple[float, float]
) -> NDArray[np.float64]:
    acc = rng.uniform(accuracy[0], accuracy[1], size=(n_annotators, n_classes))
    off = rng.dirichlet(np.ones(n_classes - 1), size=(n_annotators, n_classes))
    return spread_errors(acc, off)


def simulate_crowd(
    n_items: int,
    n_annotators: int,
    votes_per_item: int,
    *,
    priors: tuple[float, ...] = ARTICLE_PRIORS,
    accuracy: tuple[float, float] = (0.55, 0.95),
    seed: int,
) -> SimulatedCrowd:
    """Draw true classes from ``priors`` and ``votes_per_item`` distinct annotators per item.

    Each annotator's per-class accuracy is uniform on ``accuracy``; its errors are spread by a
    flat Dirichlet over the other classes.
    """
    if votes_per_item > n_annotators or votes_per_item < 1 or n_items < 1:
        raise QualityError("need 1 <= votes_per_item <= n_annotators and n_items >= 1")
    p = np.asarray(priors, dtype=np.float64)
    if p.ndim != 1 or p.size < 2 or np.any(p < 0):
        raise QualityError("priors must be at least two non-negative numbers")
    p = p / p.sum()
    n_classes = p.size
    rng = np.random.default_rng(seed)
    truth = rng.choice(n_classes, size=n_items, p=p).astype(np.int64)
    conf = _confusions(rng, n_annotators, n_classes, accuracy)
    who = rng.integers(0, n_annotators, size=(n_items, votes_per_item))
    for _ in range(1000):
        srt = np.sort(who, axis=1)
        dup = np.any(srt[:, 1:] == srt[:, :-1], axis=1)
        if not dup.any():
            break
        who[dup] = rng.integers(0, n_annotators, size=(int(dup.sum()), votes_per_item))
    item = np.repeat(np.arange(n_items, dtype=np.int64), votes_per_item)
    annotator = who.reshape(-1).astype(np.int64)
    cum = np.cumsum(conf, axis=2)
    u = rng.random(item.shape[0])
    rows = cum[annotator, truth[item]]
    label = np.minimum((rows < u[:, None]).sum(axis=1), n_classes - 1).astype(np.int64)
    return SimulatedCrowd(item, annotator, label, truth, conf)
