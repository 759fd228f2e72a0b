"""A generative label model over labeling functions, pure numpy: EM on class-conditional tables.

Each LF j has a table ``P(lambda_j = v | y = c)`` over its outputs *including abstain*: an LF
that fires mostly on one class says so by firing at all. LFs are conditionally independent
given the class, except groups found dependent (:func:`dependent_pairs`, merged by
:func:`dependency_cliques`): such a group becomes one factor whose table covers the joint
outputs, so two copies of one heuristic count once, not twice. Gold items (optional) are
clamped to their label. The result is a posterior per item, ``predict_proba(L): (n_items,
n_classes)``: the soft labels training consumes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from labeltrail.exceptions import NotFittedError
from labeltrail.learning.lf import ABSTAIN
from labeltrail.quality._em import EMResult, VoteDesign, run_em

__all__ = ["LabelModel", "Tables", "dependency_cliques", "dependent_pairs", "fit_em"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Tables:
    """The label model's parameters: ``tables: (n_factors, k, n_outcomes)``, ``prior: (k,)``,
    and their logs in the EM kernel's layout (what its E-step reads)."""

    tables: FloatArray
    prior: FloatArray
    log_confusion: FloatArray  # (n_factors, n_outcomes, k)
    log_priors: FloatArray


def fit_em(
    item: IntArray,
    factor: IntArray,
    outcome: IntArray,
    *,
    n_items: int,
    n_factors: int,
    n_outcomes: int,
    n_classes: int,
    init: FloatArray,
    prior_counts: FloatArray,
    gold: IntArray | None = None,
    learn_prior: bool = True,
    prior: FloatArray | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    group: IntArray | None = None,
    pooling: float = 0.0,
    fixed_tables: FloatArray | None = None,
) -> EMResult[Tables]:
    """EM for a naive-Bayes model over sparse long-format observations, on the shared kernel
    (:func:`labeltrail.quality._em.run_em`, float64); this function is its M-step.

    ``item, factor, outcome: (n_obs,)``: factor ``f`` showed ``outcome`` on ``item``.
    ``init: (n_items, k)`` starting posterior; ``prior_counts: (n_factors, k, n_outcomes)``
    Dirichlet pseudo-counts (0 marks an impossible outcome). ``gold: (n_items,)``, -1 = none.
    ``prior: (k,)`` the class prior to start from (kept fixed when ``learn_prior`` is False).
    ``group: (n_factors,)`` and ``pooling``: each factor's table is also pulled towards its
    group's pooled table with ``pooling`` pseudo-observations (sparse sources borrow strength).
    ``fixed_tables: (n_factors, k, n_outcomes)``, NaN rows = learn: factors with a given table
    keep it (a reference whose accuracy is known from gold, e.g. the experts).
    Stops when the log-likelihood changes by at most ``tol`` relative; the result's
    ``params`` are the tables the returned posteriors were computed from.
    """
    k = n_classes
    valid = prior_counts > 0
    start_prior = np.full(k, 1.0 / k) if prior is None else np.asarray(prior, np.float64)

    def m_step(expected: FloatArray, post: NDArray[np.floating]) -> Tables:
        class_prior = (post.sum(axis=0) + 1.0) / (n_items + k) if learn_prior else start_prior
        counts = expected.transpose(0, 2, 1) + prior_counts
        if group is not None and pooling > 0:
            pooled = np.zeros((int(group.max()) + 1, k, n_outcomes))
            np.add.at(pooled, group, counts)
            pooled /= np.maximum(pooled.sum(axis=2, keepdims=True), 1e-12)
            counts = counts + pooling * pooled[group] * valid
        counts = np.where(valid, counts, 0.0)
        tables = counts / np.maximum(counts.sum(axis=2, keepdims=True), 1e-12)
        if fixed_tables is not None:
            tables = np.where(np.isnan(fixed_tables), tables, fixed_tables)
        log_tables = np.log(np.where(valid, np.maximum(tables, 1e-300), 1.0))
        return Tables(tables, class_prior, log_tables.transpose(0, 2, 1), np.log(class_prior))

    design = VoteDesign.from_observations(
        item,
        factor,
        outcome,
        n_items=n_items,
        n_units=n_factors,
        n_outcomes=n_outcomes,
        n_classes=k,
        dtype=np.float64,
    )
    return run_em(
        design,
        init,
        m_step,
        max_iter=max_iter,
        tol=tol,
        gold=None if gold is None else np.asarray(gold, np.int64),
        dtype=np.float64,
        stop="relative",
        end_on_m_step=False,
    )


def _residual_dependence(
    L: IntArray, post: NDArray[np.floating], tables: FloatArray, a: int, b: int
) -> float:
    """Total-variation gap between the observed joint (lambda_a, lambda_b) and the one implied
    by conditional independence under the fitted model."""
    k1 = tables.shape[2]
    xa, xb = L[:, a] + 1, L[:, b] + 1
    observed = np.bincount(xa * k1 + xb, minlength=k1 * k1) / L.shape[0]
    prior = post.mean(axis=0)
    expected = np.einsum("c,cv,cw->vw", prior, tables[a], tables[b]).ravel()
    return float(0.5 * np.abs(observed - expected).sum())


def dependent_pairs(
    L: IntArray, post: NDArray[np.floating], tables: FloatArray, *, threshold: float
) -> list[tuple[int, int, float]]:
    """LF pairs whose joint outputs the independent model explains badly: (a, b, gap) with
    gap above ``threshold``, largest first."""
    m = L.shape[1]
    gaps = [
        (a, b, _residual_dependence(L, post, tables, a, b))
        for a in range(m)
        for b in range(a + 1, m)
    ]
    return sorted((g for g in gaps if g[2] >= threshold), key=lambda g: -g[2])


def dependency_cliques(
    pairs: Sequence[tuple[int, int, float]], n_lfs: int, *, max_size: int = 3
) -> list[tuple[int, ...]]:
    """Merge dependent pairs (strongest first) into disjoint groups of at most ``max_size``
    LFs; every LF not in a group stands alone. Groups come first, each sorted."""
    group = {j: {j} for j in range(n_lfs)}
    for a, b, _ in pairs:
        if group[a] is group[b] or len(group[a]) + len(group[b]) > max_size:
            continue
        merged = group[a] | group[b]
        for j in merged:
            group[j] = merged
    seen: list[frozenset[int]] = []
    for j in range(n_lfs):
        g = frozenset(group[j])
        if g not in seen:
            seen.append(g)
    return sorted((tuple(sorted(g)) for g in seen), key=lambda g: (-len(g), g))


class LabelModel:
    """Learns LF accuracies (class-conditional, abstain included) and pairwise dependencies.

    ``L: (n_items, n_lfs)`` with entries in ``[-1, n_classes)``. Learned: ``tables_``
    (per factor), ``factors_`` (tuples of LF indices), ``class_prior_``, ``accuracy_`` (per
    LF, P(vote = y | votes), from the fitted model), ``n_iter_``, ``fit_seconds_``.
    """

    def __init__(
        self,
        n_classes: int,
        *,
        max_iter: int = 200,
        tol: float = 1e-7,
        smoothing: float = 1.0,
        accuracy_prior: float = 2.0,
        dependency_threshold: float | None = 0.02,
        max_clique: int = 4,
        merge_trials: int = 3,
        class_prior: Sequence[float] | None = None,
    ) -> None:
        self.n_classes = n_classes
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing
        self.accuracy_prior = accuracy_prior
        self.dependency_threshold = dependency_threshold
        self.max_clique = max_clique
        self.merge_trials = merge_trials
        self.class_prior = class_prior

    def _encode(self, L: IntArray, factors: list[tuple[int, ...]]) -> tuple[IntArray, int]:
        k1 = self.n_classes + 1
        codes = np.zeros((L.shape[0], len(factors)), np.int64)
        for f, members in enumerate(factors):
            for j in members:
                codes[:, f] = codes[:, f] * k1 + (L[:, j] + 1)
        return codes, k1 ** max(len(m) for m in factors)

    def _prior_counts(self, factors: list[tuple[int, ...]], n_outcomes: int) -> FloatArray:
        k, k1 = self.n_classes, self.n_classes + 1
        counts = np.zeros((len(factors), k, n_outcomes))
        for f, members in enumerate(factors):
            size = k1 ** len(members)
            counts[f, :, :size] = self.smoothing / size
            for c in range(k):
                agree = 0
                for _ in members:
                    agree = agree * k1 + (c + 1)
                counts[f, c, agree] += self.accuracy_prior
        return counts

    def _run(
        self, arr: IntArray, factors: list[tuple[int, ...]], gold: IntArray | None
    ) -> EMResult[Tables]:
        n, k = arr.shape[0], self.n_classes
        codes, n_outcomes = self._encode(arr, factors)
        votes = np.stack([np.sum(arr == c, axis=1) for c in range(k)], axis=1).astype(np.float64)
        init = (votes + 1e-3) / (votes + 1e-3).sum(axis=1, keepdims=True)
        fixed = None if self.class_prior is None else np.asarray(self.class_prior, np.float64)
        return fit_em(
            np.repeat(np.arange(n), len(factors)),
            np.tile(np.arange(len(factors)), n),
            codes.ravel(),
            n_items=n,
            n_factors=len(factors),
            n_outcomes=n_outcomes,
            n_classes=k,
            init=init,
            prior_counts=self._prior_counts(factors, n_outcomes),
            gold=gold,
            learn_prior=fixed is None,
            prior=fixed,
            max_iter=self.max_iter,
            tol=self.tol,
        )

    def fit(self, L: NDArray[np.int64], gold: NDArray[np.int64] | None = None) -> LabelModel:
        """Fit on ``L: (n_items, n_lfs)``; ``gold: (n_items,)`` codes, -1 = unknown."""
        started = time.perf_counter()
        arr = np.asarray(L, dtype=np.int64)
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ValueError("L must be (n_items, n_lfs >= 1)")
        if arr.size and (arr.min() < ABSTAIN or arr.max() >= self.n_classes):
            raise ValueError("L entries must be in [-1, n_classes)")
        m = arr.shape[1]
        factors: list[tuple[int, ...]] = [(j,) for j in range(m)]
        result = self._run(arr, factors, gold)
        # Merge the worst-explained pair, refit, look again: a misfit caused by one group of
        # copies inflates every residual, so pairs are judged one at a time, and a merge is
        # kept only when the likelihood gain pays for the extra parameters (BIC).
        while self.dependency_threshold is not None and len(factors) > 1:
            marginals = self._marginals(result.params.tables, factors, m)
            where = {j: f for f, members in enumerate(factors) for j in members}
            candidates = [
                (a, b)
                for a, b, _ in dependent_pairs(
                    arr, result.posteriors, marginals, threshold=self.dependency_threshold
                )
                if where[a] != where[b]
                and len(factors[where[a]]) + len(factors[where[b]]) <= self.max_clique
            ]
            accepted = None
            for a, b in candidates[: self.merge_trials]:
                merged = tuple(sorted(factors[where[a]] + factors[where[b]]))
                rest = [f for i, f in enumerate(factors) if i not in (where[a], where[b])]
                trial_factors = sorted([merged, *rest], key=lambda g: (-len(g), g))
                trial = self._run(arr, trial_factors, gold)
                extra = self._n_params(arr, trial_factors) - self._n_params(arr, factors)
                if trial.log_likelihood - result.log_likelihood > 0.5 * extra * np.log(len(arr)):
                    accepted = (trial_factors, trial)
                    break
            if accepted is None:
                break
            factors, result = accepted
        self.factors_ = factors
        self.tables_ = result.params.tables
        self.class_prior_ = result.params.prior
        self.n_iter_ = result.n_iter
        self.posterior_ = result.posteriors
        self.accuracy_ = self._accuracy(arr, result.posteriors)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _n_params(self, arr: IntArray, factors: list[tuple[int, ...]]) -> int:
        """Free parameters, counting only the joint outputs that occur (copies of one LF
        make a clique whose table is nearly all impossible outcomes)."""
        codes, _ = self._encode(arr, factors)
        seen = sum(int(np.unique(codes[:, f]).size) - 1 for f in range(len(factors)))
        return self.n_classes * seen

    def _marginals(self, tables: FloatArray, factors: list[tuple[int, ...]], m: int) -> FloatArray:
        """Per-LF tables ``(m, k, k + 1)`` marginalised out of the factor tables."""
        k, k1 = self.n_classes, self.n_classes + 1
        out = np.zeros((m, k, k1))
        for f, members in enumerate(factors):
            size = len(members)
            joint = tables[f][:, : k1**size].reshape((k, *([k1] * size)))
            for pos, j in enumerate(members):
                axes = tuple(1 + q for q in range(size) if q != pos)
                out[j] = joint.sum(axis=axes) if axes else joint
        return out

    @staticmethod
    def _accuracy(L: IntArray, post: NDArray[np.floating]) -> FloatArray:
        acc = np.full(L.shape[1], np.nan)
        for j in range(L.shape[1]):
            fired = L[:, j] != ABSTAIN
            if fired.any():
                acc[j] = float(post[fired, L[fired, j]].mean())
        return acc

    def predict_proba(self, L: NDArray[np.int64]) -> FloatArray:
        """Posterior ``(n_items, n_classes)`` under the fitted tables."""
        factors = getattr(self, "factors_", None)
        if factors is None:
            raise NotFittedError("call fit first")
        arr = np.asarray(L, dtype=np.int64)
        codes, _ = self._encode(arr, factors)
        logp = np.tile(np.log(self.class_prior_), (arr.shape[0], 1))
        log_tables = np.log(np.maximum(self.tables_, 1e-300))
        for f in range(len(factors)):
            logp += log_tables[f][:, codes[:, f]].T
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def predict(self, L: NDArray[np.int64]) -> IntArray:
        """Most probable class (ties: the lowest index)."""
        return np.asarray(self.predict_proba(L).argmax(axis=1), dtype=np.int64)
