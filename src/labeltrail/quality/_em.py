"""The one EM kernel: Dawid-Skene, one-coin DS and MACE (quality) and the label models (learning).

Observations ("unit u showed outcome o on item i": an annotator's label, a labeling function's
output) become a sparse item-by-group matrix ``S`` of shape (n_items, n_units * n_outcomes + 1),
one group per (unit, outcome) pair plus one "prior" column that every item has once. Then

* E-step: ``S @ W`` with ``W[g, k] = log P(outcome of g | truth k) - max_k(...)`` (the prior
  column holds the log prior), so logits are already shifted to <= 0 and ``exp`` cannot
  overflow; rows that underflow are recomputed exactly in float64.
* M-step: ``S.T @ P`` gives the expected counts ``C[u, o, k]`` in one sparse product; a model's
  own callback turns them into parameters (smoothing, priors, pooling, fixed tables, ...).

Both products run in scipy's compiled sparse kernels over the observations once; no
per-observation Python. The crowd models run in float32 and stop on the log-likelihood gain per
vote, ending on an M-step; the label models run in float64 and stop on the relative
log-likelihood change, ending on the E-step whose tables they report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from labeltrail.quality._encoding import NO_GOLD, Votes

__all__ = ["EMResult", "LogParams", "VoteDesign", "majority_proba", "run_em"]

F32 = np.float32
_TINY = 1e-30

IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class VoteDesign:
    """Sparse design of an observation set.

    ``S``: (n_items, n_annotators * n_outcomes + 1) CSR of counts, group ``u * n_outcomes + o``;
    ``n_annotators`` counts the units (annotators, or a label model's factors); ``n_outcomes``
    is what a unit can show (the classes for crowd votes), ``n_classes`` the truth's classes.
    """

    S: sp.csr_matrix
    n_items: int
    n_annotators: int
    n_classes: int
    group_counts: NDArray[np.float64]  # (n_groups,) observations per (unit, outcome)
    n_outcomes: int

    @classmethod
    def from_votes(cls, votes: Votes, dtype: type[np.floating] = F32) -> VoteDesign:
        k = votes.n_classes
        return cls.from_observations(
            votes.item,
            votes.annotator,
            votes.label,
            n_items=votes.n_items,
            n_units=votes.n_annotators,
            n_outcomes=k,
            n_classes=k,
            dtype=dtype,
        )

    @classmethod
    def from_observations(
        cls,
        item: IntArray,
        unit: IntArray,
        outcome: IntArray,
        *,
        n_items: int,
        n_units: int,
        n_outcomes: int,
        n_classes: int,
        dtype: type[np.floating] = F32,
    ) -> VoteDesign:
        """``item, unit, outcome: (n_obs,)``: unit showed outcome on item."""
        n, n_groups = n_items, n_units * n_outcomes
        group = np.asarray(unit, np.int64) * n_outcomes + np.asarray(outcome, np.int64)
        rows = np.concatenate([np.asarray(item, np.int64), np.arange(n, dtype=np.int64)])
        cols = np.concatenate([group, np.full(n, n_groups, dtype=np.int64)])
        idx_dtype = np.int32 if max(n, n_groups + 1, rows.size) < 2**31 - 1 else np.int64
        S = sp.csr_matrix(
            (np.ones(rows.size, dtype=dtype), (rows.astype(idx_dtype), cols.astype(idx_dtype))),
            shape=(n, n_groups + 1),
        )
        S.sum_duplicates()
        counts = np.bincount(group, minlength=n_groups).astype(np.float64)
        return cls(S, n, n_units, n_classes, counts, n_outcomes)


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


class Params(Protocol):
    """What an M-step hands the E-step (a model may carry more, e.g. its linear tables)."""

    @property
    def log_confusion(self) -> NDArray[np.float64]:
        """(n_units, n_outcomes, n_classes): log P(outcome | truth)."""
        ...

    @property
    def log_priors(self) -> NDArray[np.float64]:
        """(n_classes,): log P(truth)."""
        ...


@dataclass(frozen=True)
class LogParams:
    """The crowd models' parameters: just the logs the E-step needs."""

    log_confusion: NDArray[np.float64]  # (n_annotators, n_classes_given, n_classes_true)
    log_priors: NDArray[np.float64]  # (n_classes,)


ParamsT = TypeVar("ParamsT", bound=Params)


@dataclass
class EMResult(Generic[ParamsT]):
    """``posteriors: (n_items, n_classes)``; ``params``: what the last M-step returned."""

    posteriors: NDArray[np.floating]
    params: ParamsT
    n_iter: int
    log_likelihood: float
    converged: bool


# An M-step maps expected counts C (n_units, n_outcomes, n_classes) and the posteriors to the
# model's parameters.
MStep = Callable[[NDArray[np.float64], NDArray[np.floating]], ParamsT]

# "gain": the log-likelihood per observation gains less than tol (the crowd models);
# "relative": |change| <= tol * max(1, |log-likelihood|) (the label models).
StopRule = Literal["gain", "relative"]


def e_step(
    design: VoteDesign,
    log_confusion: NDArray[np.float64],
    log_priors: NDArray[np.float64],
    gold: NDArray[np.int64] | None,
    dtype: type[np.floating] = F32,
) -> tuple[NDArray[np.floating], float]:
    """Posteriors (n_items, n_classes) and the observed-data log-likelihood."""
    k = design.n_classes
    table = np.empty((design.n_annotators * design.n_outcomes + 1, k), dtype=np.float64)
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
    """C[u, o, k] = sum over u's observations with outcome o of P(truth of the item = k)."""
    full = np.asarray(design.S.T @ posteriors, dtype=np.float64)
    return full[:-1].reshape(design.n_annotators, design.n_outcomes, design.n_classes)


def run_em(
    design: VoteDesign,
    init_posteriors: NDArray[np.floating],
    m_step: MStep[ParamsT],
    *,
    max_iter: int,
    tol: float,
    gold: NDArray[np.int64] | None = None,
    dtype: type[np.floating] = F32,
    stop: StopRule = "gain",
    end_on_m_step: bool = True,
) -> EMResult[ParamsT]:
    """EM from initial posteriors: M, then (E, M) rounds until ``stop`` holds or ``max_iter``.

    ``end_on_m_step=False`` leaves out the last round's M-step, so the parameters returned are
    the ones the returned posteriors were computed from.
    """
    P = np.array(init_posteriors, dtype=dtype)
    if gold is not None:
        fix_gold(P, gold)
    params = m_step(expected_counts(design, P), P)
    n_votes = max(float(design.group_counts.sum()), 1.0)
    prev = -np.inf
    log_lik = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        P, log_lik = e_step(design, params.log_confusion, params.log_priors, gold, dtype)
        if stop == "gain":
            converged = (log_lik - prev) / n_votes < tol
        else:
            converged = abs(log_lik - prev) <= tol * max(1.0, abs(log_lik))
        last = converged or it == max_iter
        if last and not end_on_m_step:
            break
        params = m_step(expected_counts(design, P), P)
        if converged:
            break
        prev = log_lik
    return EMResult(P, params, it, log_lik, converged)
