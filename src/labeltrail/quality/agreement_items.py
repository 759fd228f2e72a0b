"""Agreement per item, per annotator pair, and bootstrap intervals for any agreement statistic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeltrail.exceptions import QualityError, VoteFormatError
from labeltrail.quality._encoding import Votes
from labeltrail.quality.agreement import cohen_kappa_table
from labeltrail.quality.item import pairwise_agreement

__all__ = [
    "ConfidenceInterval",
    "ItemAgreement",
    "bootstrap_ci",
    "item_agreement",
    "pairwise_matrix",
    "per_item_agreement",
]


@dataclass(frozen=True)
class ItemAgreement:
    """Agreement of one item's votes.

    observed: share of agreeing vote pairs (:func:`~labeltrail.quality.item.pairwise_agreement`,
    the rule the streaming consensus applies); expected: chance agreement from class priors;
    kappa: (observed - expected) / (1 - expected), the item's term of Fleiss' kappa;
    below: kappa < threshold (route to adjudication).
    """

    observed: float
    expected: float
    kappa: float
    below: bool


def item_agreement(
    labels: Sequence[int] | NDArray[np.int64],
    priors: ArrayLike,
    threshold: float = 0.5,
) -> ItemAgreement:
    """Agreement of a small set of votes, e.g. the article's triple (class codes, length >= 2).

    priors: (n_classes,) class shares used for chance agreement (e.g. the running label mix).
    """
    lab = np.asarray(labels, dtype=np.int64)
    p = np.asarray(priors, dtype=np.float64)
    if lab.ndim != 1 or lab.size < 2:
        raise VoteFormatError("item agreement needs at least two votes")
    if p.ndim != 1 or lab.min() < 0 or lab.max() >= p.size or not np.isclose(p.sum(), 1.0):
        raise VoteFormatError("priors must be a distribution over the label codes")
    observed = pairwise_agreement(lab.tolist())
    expected = float((p**2).sum())
    kappa = 1.0 if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    return ItemAgreement(observed, expected, kappa, kappa < threshold)


def per_item_agreement(votes: Votes) -> NDArray[np.float64]:
    """Share of agreeing vote pairs per item: (n_items,); NaN for items with fewer than 2 votes."""
    n, k = votes.n_items, votes.n_classes
    c = np.bincount(votes.item * k + votes.label, minlength=n * k).reshape(n, k).astype(float)
    m = c.sum(axis=1)
    out = np.full(n, np.nan)
    ok = m >= 2
    out[ok] = (c[ok] * (c[ok] - 1)).sum(axis=1) / (m[ok] * (m[ok] - 1))
    return out


def pairwise_matrix(
    votes: Votes, metric: str = "cohen", min_overlap: int = 2
) -> NDArray[np.float64]:
    """Annotator x annotator agreement: (n_annotators, n_annotators), NaN below ``min_overlap``
    shared items. metric: "cohen" (Cohen's kappa) or "percent" (share of equal labels).

    Uses each annotator's first vote per item.
    """
    if metric not in ("cohen", "percent"):
        raise QualityError(f"metric must be 'cohen' or 'percent', got {metric!r}")
    a_n, k = votes.n_annotators, votes.n_classes
    first = np.full((votes.n_items, a_n), -1, dtype=np.int64)
    order = np.arange(votes.n_votes)[::-1]  # so the first vote wins the assignment
    first[votes.item[order], votes.annotator[order]] = votes.label[order]
    out = np.full((a_n, a_n), np.nan)
    for i in range(a_n):
        has_i = first[:, i] >= 0
        for j in range(i, a_n):
            both = has_i & (first[:, j] >= 0)
            if both.sum() < min_overlap:
                continue
            x, y = first[both, i], first[both, j]
            if metric == "percent":
                val = float(np.mean(x == y))
            else:
                table = np.bincount(x * k + y, minlength=k * k).reshape(k, k)
                val = cohen_kappa_table(table)
            out[i, j] = out[j, i] = val
    return out


@dataclass(frozen=True)
class ConfidenceInterval:
    """Point estimate and percentile bootstrap interval at ``level``."""

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int


def bootstrap_ci(
    statistic: Callable[[NDArray[Any]], float],
    units: NDArray[Any],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int,
) -> ConfidenceInterval:
    """Percentile bootstrap over units (rows of ``units``: items, pairs or count rows).

    statistic: maps a (n_units, ...) array to a float, e.g. ``lambda c:
    krippendorff_alpha_counts(c, values)`` on (n_units, n_values) counts. NaN replicates (e.g.
    resamples without variation) are dropped.
    """
    if not 0 < level < 1 or n_boot < 1:
        raise QualityError("need 0 < level < 1 and n_boot >= 1")
    arr = np.asarray(units)
    if arr.shape[0] < 2:
        raise QualityError("bootstrap needs at least two units")
    rng = np.random.default_rng(seed)
    est = statistic(arr)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, arr.shape[0], size=arr.shape[0])
        try:
            reps[b] = statistic(arr[idx])
        except VoteFormatError:
            reps[b] = np.nan
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return ConfidenceInterval(est, float("nan"), float("nan"), level, 0)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(reps, [tail, 100 - tail])
    return ConfidenceInterval(est, float(low), float(high), level, int(reps.size))
