"""LF analysis, pure: coverage, overlap, conflict and empirical accuracy against gold.

The article's dashboard: what fraction each LF fires on, how often it meets and fights the
others, and how often it is right on the gold set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from labeltrail.learning.lf import ABSTAIN

__all__ = ["LFSummary", "label_coverage", "lf_summary"]


@dataclass(frozen=True)
class LFSummary:
    """One LF: ``coverage`` = share of items it labels; ``overlap`` = share it labels together
    with another LF; ``conflict`` = share where another LF gives a different label; accuracy
    on the gold items it labels (None without gold)."""

    name: str
    polarity: tuple[int, ...]
    coverage: float
    overlap: float
    conflict: float
    n_gold_labelled: int
    n_correct: int
    empirical_accuracy: float | None


def _check(L: NDArray[np.int64]) -> NDArray[np.int64]:
    arr = np.asarray(L, dtype=np.int64)
    if arr.ndim != 2:
        raise ValueError("L must be (n_items, n_lfs)")
    if arr.size and arr.min() < ABSTAIN:
        raise ValueError("L entries must be class indices or ABSTAIN (-1)")
    return arr


def label_coverage(L: NDArray[np.int64]) -> float:
    """Share of items at least one LF labels."""
    arr = _check(L)
    return float(np.mean((arr != ABSTAIN).any(axis=1))) if arr.shape[0] else 0.0


def lf_summary(
    L: NDArray[np.int64],
    *,
    names: Sequence[str] | None = None,
    gold: NDArray[np.int64] | None = None,
) -> list[LFSummary]:
    """``L: (n_items, n_lfs)``; ``gold: (n_items,)`` class codes, -1 where unknown."""
    arr = _check(L)
    n, m = arr.shape
    names = list(names) if names is not None else [f"lf_{j}" for j in range(m)]
    if len(names) != m:
        raise ValueError("one name per LF")
    g = None if gold is None else np.asarray(gold, dtype=np.int64)
    if g is not None and g.shape != (n,):
        raise ValueError("gold must be (n_items,)")
    fired = arr != ABSTAIN
    n_fired = fired.sum(axis=1)
    out: list[LFSummary] = []
    for j in range(m):
        mine = fired[:, j]
        others = n_fired - mine
        overlap = mine & (others > 0)
        other_votes = np.where(fired, arr, -2)
        other_votes[:, j] = -2
        differs = ((other_votes >= 0) & (other_votes != arr[:, [j]])).any(axis=1)
        conflict = mine & differs
        n_gold = n_ok = 0
        if g is not None:
            judged = mine & (g != ABSTAIN)
            n_gold = int(judged.sum())
            n_ok = int((arr[judged, j] == g[judged]).sum())
        out.append(
            LFSummary(
                name=names[j],
                polarity=tuple(int(v) for v in np.unique(arr[mine, j])),
                coverage=float(mine.mean()) if n else 0.0,
                overlap=float(overlap.mean()) if n else 0.0,
                conflict=float(conflict.mean()) if n else 0.0,
                n_gold_labelled=n_gold,
                n_correct=n_ok,
                empirical_accuracy=n_ok / n_gold if n_gold else None,
            )
        )
    return out
