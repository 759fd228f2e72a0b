"""Chance-corrected agreement: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha.

Inputs are either label vectors, count tables or :class:`~labeltrail.quality.Votes`. Missing
ratings are NaN in float arrays (reliability data) and simply absent in Votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeltrail.exceptions import VoteFormatError
from labeltrail.quality._encoding import Votes

__all__ = [
    "Level",
    "Weights",
    "cohen_kappa",
    "cohen_kappa_table",
    "fleiss_kappa",
    "fleiss_kappa_votes",
    "krippendorff_alpha",
    "krippendorff_alpha_counts",
    "krippendorff_alpha_votes",
    "value_counts",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Weights = Literal["linear", "quadratic"] | None


def cohen_kappa_table(table: ArrayLike, weights: Weights = None) -> float:
    """Cohen's kappa from a (n_classes, n_classes) contingency table (rows rater 1).

    weights: None (unweighted), "linear" or "quadratic" disagreement weights on class order.
    """
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0 or np.any(t < 0):
        raise VoteFormatError(f"contingency table must be square and non-negative, got {t.shape}")
    n = t.sum()
    if n == 0:
        raise VoteFormatError("contingency table is empty")
    k = t.shape[0]
    idx = np.arange(k)
    diff = np.abs(idx[:, None] - idx[None, :]).astype(np.float64)
    if weights is None:
        w = (diff > 0).astype(np.float64)
    elif weights == "linear":
        w = diff
    elif weights == "quadratic":
        w = diff**2
    else:
        raise VoteFormatError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    p = t / n
    expected = np.outer(p.sum(axis=1), p.sum(axis=0))
    denom = float((w * expected).sum())
    if denom == 0:
        return 1.0 if float((w * p).sum()) == 0 else float("nan")
    return 1.0 - float((w * p).sum()) / denom


def cohen_kappa(
    rater1: ArrayLike,
    rater2: ArrayLike,
    weights: Weights = None,
    labels: Sequence[Any] | None = None,
) -> float:
    """Cohen's kappa of two aligned label vectors (n,); pairs with a NaN/None are dropped.

    labels: the ordered class set (defaults to the sorted union); order matters for weights.
    """
    a, b = np.asarray(rater1, dtype=object), np.asarray(rater2, dtype=object)
    if a.shape != b.shape or a.ndim != 1:
        raise VoteFormatError("rater1 and rater2 must be 1-D and of equal length")
    keep = np.array([not _missing(x) and not _missing(y) for x, y in zip(a, b, strict=True)])
    if keep.size == 0 or not keep.any():
        raise VoteFormatError("no pair rated by both raters")
    a, b = a[keep], b[keep]
    classes = list(labels) if labels is not None else sorted(set(a.tolist()) | set(b.tolist()))
    pos = {c: i for i, c in enumerate(classes)}
    try:
        ia = np.array([pos[x] for x in a.tolist()])
        ib = np.array([pos[x] for x in b.tolist()])
    except KeyError as exc:
        raise VoteFormatError(f"label {exc.args[0]!r} not in labels") from exc
    k = len(classes)
    table = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k)
    return cohen_kappa_table(table, weights)


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x))


def fleiss_kappa(counts: ArrayLike) -> float:
    """Fleiss' kappa from counts (n_items, n_classes): raters choosing each class per item.

    Items may have different numbers of raters (each needs at least 2); the classic formula is
    recovered when all have the same number.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or np.any(c < 0):
        raise VoteFormatError("counts must be a non-negative (n_items, n_classes) table")
    m = c.sum(axis=1)
    c = c[m >= 2]
    m = m[m >= 2]
    if c.shape[0] == 0:
        raise VoteFormatError("Fleiss' kappa needs items with at least two ratings")
    p_i = ((c * c).sum(axis=1) - m) / (m * (m - 1))
    p_j = c.sum(axis=0) / m.sum()
    p_bar, p_e = float(p_i.mean()), float((p_j**2).sum())
    if p_e == 1.0:
        return 1.0 if p_bar == 1.0 else float("nan")
    return (p_bar - p_e) / (1.0 - p_e)


def fleiss_kappa_votes(votes: Votes) -> float:
    """Fleiss' kappa over the items of ``votes`` with at least two votes."""
    return fleiss_kappa(_item_counts(votes))


def _item_counts(votes: Votes) -> NDArray[np.float64]:
    n, k = votes.n_items, votes.n_classes
    flat = np.bincount(votes.item * k + votes.label, minlength=n * k)
    return flat.reshape(n, k).astype(np.float64)


def value_counts(reliability_data: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(n_coders, n_units) ratings with NaN for missing -> (counts (n_units, n_values), values).

    values: (n_values,) sorted distinct ratings.
    """
    data = np.asarray(reliability_data, dtype=np.float64)
    if data.ndim != 2:
        raise VoteFormatError(f"reliability data must be (n_coders, n_units), got {data.shape}")
    units = np.broadcast_to(np.arange(data.shape[1]), data.shape)
    ok = ~np.isnan(data)
    values, codes = np.unique(data[ok], return_inverse=True)
    v = values.shape[0]
    flat = np.bincount(units[ok] * v + codes, minlength=data.shape[1] * v)
    return flat.reshape(data.shape[1], v).astype(np.float64), values


def _delta2(
    values: NDArray[np.float64], marg: NDArray[np.float64], level: Level
) -> NDArray[np.float64]:
    c, k = values[:, None], values[None, :]
    if level == "nominal":
        nominal: NDArray[np.float64] = (c != k).astype(np.float64)
        return nominal
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        s = c + k
        return np.divide((c - k) ** 2, s**2, out=np.zeros((values.size, values.size)), where=s != 0)
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(marg)])
        i = np.arange(values.size)
        lo, hi = np.minimum(i[:, None], i[None, :]), np.maximum(i[:, None], i[None, :])
        between = cum[hi + 1] - cum[lo] - (marg[lo] + marg[hi]) / 2.0
        out: NDArray[np.float64] = between**2
        return out
    raise VoteFormatError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")


def krippendorff_alpha_counts(
    counts: ArrayLike, values: ArrayLike, level: Level = "nominal"
) -> float:
    """Krippendorff's alpha from value counts (n_units, n_values) and the values (n_values,).

    Units with fewer than two values are not pairable and are ignored.
    """
    c = np.asarray(counts, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != vals.shape[0]:
        raise VoteFormatError("counts must be (n_units, n_values) matching values")
    m = c.sum(axis=1)
    c, m = c[m >= 2], m[m >= 2]
    if c.shape[0] == 0:
        raise VoteFormatError("Krippendorff's alpha needs a unit with at least two values")
    coincidence = (c / (m - 1)[:, None]).T @ c
    coincidence[np.diag_indices_from(coincidence)] -= (c / (m - 1)[:, None]).sum(axis=0)
    marg = coincidence.sum(axis=0)
    n = marg.sum()
    d2 = _delta2(vals, marg, level)
    expected = float(marg @ d2 @ marg)
    if expected == 0:
        return 1.0 if float((coincidence * d2).sum()) == 0 else float("nan")
    return float(1.0 - (n - 1) * float((coincidence * d2).sum()) / expected)


def krippendorff_alpha(reliability_data: ArrayLike, level: Level = "nominal") -> float:
    """Krippendorff's alpha of (n_coders, n_units) numeric ratings, NaN = missing."""
    counts, values = value_counts(reliability_data)
    return krippendorff_alpha_counts(counts, values, level)


def krippendorff_alpha_votes(votes: Votes, level: Level = "nominal") -> float:
    """Alpha over Votes; for ordinal/interval/ratio the classes must be numbers (their values)."""
    values = np.arange(votes.n_classes, dtype=np.float64)
    if level != "nominal":
        try:
            values = votes.classes.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise VoteFormatError(f"{level} alpha needs numeric labels") from exc
    return krippendorff_alpha_counts(_item_counts(votes), values, level)
