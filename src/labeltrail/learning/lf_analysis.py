"""LF analysis, pure: coverage, overlap, conflict and empirical accuracy against gold.

The article's dashboard: what fraction each LF fires on, how often it meets and fights the
others, and how often it is right on the gold set. :func:`lf_summary` reads a label matrix;
:func:`votes_summary` reads the live LF votes (``WeakVoteCast``, from the log or ClickHouse),
each LF and version on the comments it voted on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from labeltrail.learning.lf import ABSTAIN

__all__ = ["LFSummary", "VotesSummary", "label_coverage", "lf_summary", "votes_summary"]


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
    return [_one(arr, j, names[j], g) for j in range(m)]


def _one(arr: NDArray[np.int64], j: int, name: str, g: NDArray[np.int64] | None) -> LFSummary:
    """LF ``j`` of the checked matrix ``arr`` against the other columns (and ``g``)."""
    n = arr.shape[0]
    fired = arr != ABSTAIN
    mine = fired[:, j]
    others = fired.sum(axis=1) - mine
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
    return LFSummary(
        name=name,
        polarity=tuple(int(v) for v in np.unique(arr[mine, j])),
        coverage=float(mine.mean()) if n else 0.0,
        overlap=float(overlap.mean()) if n else 0.0,
        conflict=float(conflict.mean()) if n else 0.0,
        n_gold_labelled=n_gold,
        n_correct=n_ok,
        empirical_accuracy=n_ok / n_gold if n_gold else None,
    )


@dataclass(frozen=True)
class VotesSummary:
    """The live votes' analysis: ``classes`` (the labels seen, sorted: what ``polarity``
    codes index), the comments voted on, the share of them some LF labelled, one summary per
    LF and version (``name@version``)."""

    classes: tuple[str, ...]
    n_items: int
    n_gold: int
    coverage: float
    lfs: tuple[LFSummary, ...]


def votes_summary(
    votes: Iterable[tuple[str, str, str | None]], gold: Mapping[str, str] | None = None
) -> VotesSummary:
    """``votes``: (comment id, LF, label or None = abstained), a later vote of one LF on one
    comment replacing the earlier; ``gold``: comment id -> gold label.

    Each LF is judged on the comments it voted on (a new version has not seen the old ones):
    its coverage, overlap and conflict are shares of those, against the other LFs' votes there.
    """
    latest: dict[tuple[str, str], str | None] = {}
    for comment_id, lf, label in votes:
        latest[(comment_id, lf)] = label
    gold = dict(gold or {})
    items = sorted({c for c, _ in latest})
    names = sorted({lf for _, lf in latest})
    classes = tuple(sorted({v for v in latest.values() if v is not None} | set(gold.values())))
    code = {c: i for i, c in enumerate(classes)}
    row = {c: i for i, c in enumerate(items)}
    col = {n: j for j, n in enumerate(names)}
    L = np.full((len(items), len(names)), ABSTAIN, dtype=np.int64)
    seen = np.zeros(L.shape, dtype=bool)
    for (comment_id, lf), label in latest.items():
        i, j = row[comment_id], col[lf]
        seen[i, j] = True
        if label is not None:
            L[i, j] = code[label]
    g = np.array([code[gold[c]] if c in gold else ABSTAIN for c in items], dtype=np.int64)
    # Each LF on its own rows only (not every LF's summary there, kept for one).
    per_lf = tuple(_one(L[seen[:, j]], j, name, g[seen[:, j]]) for j, name in enumerate(names))
    return VotesSummary(
        classes=classes,
        n_items=len(items),
        n_gold=int((g != ABSTAIN).sum()),
        coverage=label_coverage(L),
        lfs=per_lf,
    )
