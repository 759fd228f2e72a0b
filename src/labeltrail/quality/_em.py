"""The shared EM kernel of the confusion-matrix models (Dawid-Skene, one-coin, MACE).

Votes become a sparse item-by-group matrix ``S`` of shape (n_items, n_groups + 1), one group per
(annotator, given label) pair plus one "prior" column that every item has once. Then

* E-step: ``S @ W`` with ``W[g, k] = log P(label of g | truth k) - max_k(...)`` (the prior column
  holds the log prior), so logits are already shifted to <= 0 and ``exp`` cannot overflow;
  rows that underflow are recomputed exactly in float64.
* M-step: ``S.T @ P`` gives the expected counts ``C[a, l, k]`` in one sparse product.

Both products run in scipy's compiled sparse kernels over the votes once; no per-vote Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from labeltrail.quality._encoding import NO_GOLD, Votes

__all__ = ["EMResult", "VoteDesign", "majority_proba", "run_em"]

F32 = np.float32
_TINY = 1e-30


@dataclass(frozen=True, eq=False)
class VoteDesign:
    """Sparse design of a vote set. S: (n_items, n_annotators*n_classes + 1) CSR of vote counts."""

    S: sp.csr_matrix
    n_items: int
    n_annotators: int
    n_classes: int
    group_counts: NDArray[np.float64]  # (n_groups,) votes per (annotator, label)

    @classmethod
    def from_votes(cls, votes: Votes, dtype: type[np.floating] = F32) -> VoteDesign:
        n, a, k = votes.n_items, votes.n_annotators, votes.n_classes
        n_groups = a * k
        group = votes.annotator * k + votes.label
        rows = np.concatenate([votes.item, np.arange(n, dtype=np.int64)])
        cols = np.concatenate([group, np.full(n, n_groups, dtype=np.int64)])
        idx_dtype = np.int32 if max(n, n_groups + 1, rows.size) < 2**31 - 1 else np.int64
        S = sp.csr_matrix(
            (np.ones(rows.size, dtype=dtype), (rows.astype(idx_dtype), cols.astype(idx_dtype))),
            shape=(n, n_groups + 1),
        )
        S.sum_duplicates()
        counts = np.bincount(group, minlength=n_groups).astype(np.float64)
        return cls(S, n, a, k, counts)


def majority_proba(votes: Votes) -> NDArray[np.float64]:
    """Vote shares per item: (n_items, n_classes); items without votes get a uniform row."""
    n, k = votes.n_items, votes.n_classes
    counts = np.bincount(votes.item * k + votes.label, minlength=n * k).astype(np.float64)
    counts = counts.reshape(n, k)
    totals = counts.sum(axis=1, keepdims=True)
    empty = totals[:, 0] == 0
    counts[empty] = 1.0
    totals[empty] = k
    out: NDArray[np.float64] = counts / totals
    return out


@dataclass
class EMResult:
    posteriors: NDArray[np.floating]  # (n_items, n_classes)
    log_confusion: NDArray[np.float64]  # (n_annotators, n_classes_given, n_classes_true)
    log_priors: NDArray[np.float64]  # (n_classes,)
    n_iter: int
    log_likelihood: float
    converged: bool


# An M-step maps expected counts C (n_annotators, n_given, n_true) and the posteriors to
# (log confusion of the same shape, log priors (n_true,)).
MStep = Callable[
    [NDArray[np.float64], NDArray[np.floating]], tuple[NDArray[np.float64], NDArray[np.float64]]
]


def e_step(
    design: VoteDesign,
    log_confusion: NDArray[np.float64],
    log_priors: NDArray[np.float64],
    gold: NDArray[np.int64] | None,
    dtype: type[np.floating] = F32,
) -> tuple[NDArray[np.floating], float]:
    """Posteriors (n_items, n_classes) and the observed-data log-likelihood."""
    k = design.n_classes
    table = np.empty((design.n_annotators * k + 1, k), dtype=np.float64)
    table[:-1] = log_confusion.reshape(-1, k)
    table[-1] = log_priors
    shift = table.max(axis=1)
    table -= shift[:, None]
    L = design.S @ table.astype(dtype)
    np.exp(L, out=L)
    sums = L @ np.ones(k, dtype=dtype)
    bad = sums < _TINY
    extra = 0.0
    if bad.any():  # underflow: redo these rows exactly in float64, shifted by their own max
        rows = np.flatnonzero(bad)
        raw = np.asarray(design.S[rows] @ table, dtype=np.float64)
        row_max = raw.max(axis=1)
        exact = np.exp(raw - row_max[:, None])
        exact_sums = exact.sum(axis=1)
        L[rows] = exact / exact_sums[:, None]
        sums[rows] = 1.0
        extra = float(np.sum(np.log(exact_sums)) + row_max.sum())
    L *= (1.0 / sums)[:, None]
    good_log = float(np.log(sums).astype(np.float64).sum()) + extra
    item_shift = float(shift[:-1] @ design.group_counts + shift[-1] * design.n_items)
    log_lik = good_log + item_shift
    if gold is not None:
        fix_gold(L, gold)
    return L, log_lik


def fix_gold(posteriors: NDArray[np.floating], gold: NDArray[np.int64]) -> None:
    """Overwrite the rows of gold items with one-hot gold (in place, on our own array)."""
    rows = np.flatnonzero(gold != NO_GOLD)
    if rows.size:
        posteriors[rows] = 0.0
        posteriors[rows, gold[rows]] = 1.0


def expected_counts(design: VoteDesign, posteriors: NDArray[np.floating]) -> NDArray[np.float64]:
    """C[a, l, k] = sum over a's votes with label l of P(truth of the item = k)."""
    k = design.n_classes
    full = np.asarray(design.S.T @ posteriors, dtype=np.float64)
    return full[:-1].reshape(design.n_annotators, k, k)


def run_em(
    design: VoteDesign,
    init_posteriors: NDArray[np.floating],
    m_step: MStep,
    *,
    max_iter: int,
    tol: float,
    gold: NDArray[np.int64] | None = None,
    dtype: type[np.floating] = F32,
) -> EMResult:
    """EM from initial posteriors: M, then (E, M) until the log-likelihood per vote gains < tol."""
    P = np.array(init_posteriors, dtype=dtype)
    if gold is not None:
        fix_gold(P, gold)
    log_conf, log_pri = m_step(expected_counts(design, P), P)
    n_votes = max(float(design.group_counts.sum()), 1.0)
    prev = -np.inf
    log_lik = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
        P, log_lik = e_step(design, log_conf, log_pri, gold, dtype)
        log_conf, log_pri = m_step(expected_counts(design, P), P)
        if (log_lik - prev) / n_votes < tol:
            converged = True
            break
        prev = log_lik
    return EMResult(P, log_conf, log_pri, it, log_lik, converged)
