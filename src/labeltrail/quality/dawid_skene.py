"""Dawid-Skene (full confusion matrices) and one-coin Dawid-Skene, optionally gold-fixed.

Both run the shared sparse EM of :mod:`labeltrail.quality._em` and stop when the observed-data
log-likelihood per vote gains less than ``tol`` or after ``max_iter`` E/M rounds. One-coin DS
starts like Crowd-Kit (majority-vote shares, then an M-step); DawidSkene starts by default from
Wawa shares (majority vote weighted by each annotator's agreement with it, see ``init``).

Gold: ``fit(votes, gold=...)`` holds gold items' posteriors at their one-hot gold label during
every E-step, so annotators' confusion matrices and the class priors are learned with the gold
items known (semi-supervised Dawid-Skene).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.exceptions import QualityError
from labeltrail.quality._base import Aggregator
from labeltrail.quality._em import EMResult, LogParams, VoteDesign, majority_proba, run_em
from labeltrail.quality._encoding import Votes, argmax_lowest
from labeltrail.quality.consensus import weighted_proba

__all__ = ["DawidSkene", "OneCoinDawidSkene", "initial_posteriors"]

Precision = Literal["float32", "float64"]
Init = Literal["wmv", "mv"]


def initial_posteriors(votes: Votes, init: str) -> NDArray[np.float64]:
    """EM start (n_items, n_classes): "mv" majority-vote shares (Crowd-Kit's start) or "wmv"
    Wawa shares (votes weighted by each annotator's agreement with the majority vote)."""
    if init == "mv":
        return majority_proba(votes)
    if init == "wmv":  # WeightedMajorityVote() (one Wawa round), inlined to share the counts
        n, k = votes.n_items, votes.n_classes
        cell = votes.item * k + votes.label
        counts = np.bincount(cell, minlength=n * k).reshape(n, k)
        hits = votes.label == argmax_lowest(counts)[votes.item]
        n_a = np.bincount(votes.annotator, minlength=votes.n_annotators)
        agree = np.bincount(votes.annotator, weights=hits, minlength=votes.n_annotators)
        weights = np.divide(agree, n_a, out=np.zeros_like(agree), where=n_a > 0)
        return weighted_proba(votes, weights)
    raise QualityError(f"init must be 'wmv' or 'mv', got {init!r}")


def _dtype(precision: str) -> type[np.floating]:
    if precision == "float32":
        return np.float32
    if precision == "float64":
        return np.float64
    raise QualityError(f"precision must be 'float32' or 'float64', got {precision!r}")


class _ConfusionEM(Aggregator):
    """Shared fitting of the EM models. Learned state:

    confusion_: (n_annotators, n_classes_true, n_classes_given), rows sum to 1.
    priors_: (n_classes,); n_iter_; converged_; log_likelihood_ (observed data, nats).
    """

    def __init__(
        self,
        max_iter: int = 100,
        tol: float = 1e-5,
        eps: float = 1e-10,
        smoothing: float = 0.0,
        precision: Precision = "float32",
    ) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.eps = eps
        self.smoothing = smoothing
        self.precision = precision

    def _m_step(
        self, counts: NDArray[np.float64], posteriors: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        raise NotImplementedError

    def _log_priors(self, posteriors: NDArray[np.floating]) -> NDArray[np.float64]:
        pri = np.asarray(posteriors.mean(axis=0, dtype=np.float64), dtype=np.float64)
        out: NDArray[np.float64] = np.log(np.clip(pri, self.eps, None))
        return out

    def _fit(self, votes: Votes, gold: NDArray[np.int64] | None) -> NDArray[np.floating]:
        if self.max_iter < 1 or self.tol < 0:
            raise QualityError("max_iter must be >= 1 and tol >= 0")
        dtype = _dtype(self.precision)
        design = VoteDesign.from_votes(votes, dtype)
        self._start(votes)
        res = run_em(
            design,
            self._initial(votes),
            lambda counts, posteriors: LogParams(*self._m_step(counts, posteriors)),
            max_iter=self.max_iter,
            tol=self.tol,
            gold=gold,
            dtype=dtype,
        )
        self._store(res)
        return res.posteriors

    def _initial(self, votes: Votes) -> NDArray[np.float64]:
        return majority_proba(votes)

    def _start(self, votes: Votes) -> None:
        """Hook for models with extra state (MACE)."""

    def _store(self, res: EMResult[LogParams]) -> None:
        self.confusion_ = np.exp(res.params.log_confusion).transpose(0, 2, 1)
        self.priors_ = np.exp(res.params.log_priors)
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        self.log_likelihood_ = res.log_likelihood


class DawidSkene(_ConfusionEM):
    """Dawid & Skene (1979): one full confusion matrix per annotator, fitted by EM.

    max_iter: EM rounds at most; tol: stop when the log-likelihood per vote gains less;
    eps: floor of probabilities (as Crowd-Kit, 1e-10); smoothing: pseudo-count added to every
    confusion cell, i.e. the MAP estimate under a symmetric Dirichlet(1 + smoothing) prior on
    each confusion row (0 = maximum likelihood); precision: dtype of the per-item arrays;
    init: EM start, "wmv" (default; Wawa shares) or "mv" (majority-vote shares, as Crowd-Kit).
    docs/quality.md lists what each option measured on the reference datasets.

    >>> v = Votes.from_long([0, 0, 0, 1, 1, 1], list("xyzxyz"), [1, 1, 0, 0, 0, 0])
    >>> DawidSkene().fit_predict(v).tolist()
    [1, 0]
    """

    def __init__(
        self,
        max_iter: int = 100,
        tol: float = 1e-5,
        eps: float = 1e-10,
        smoothing: float = 0.0,
        precision: Precision = "float32",
        init: Init = "wmv",
    ) -> None:
        super().__init__(max_iter, tol, eps, smoothing, precision)
        self.init = init

    def _initial(self, votes: Votes) -> NDArray[np.float64]:
        return initial_posteriors(votes, self.init)

    def _m_step(
        self, counts: NDArray[np.float64], posteriors: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        c = np.clip(counts + self.smoothing, self.eps, None)
        c /= c.sum(axis=1, keepdims=True)
        return np.log(c), self._log_priors(posteriors)


class OneCoinDawidSkene(_ConfusionEM):
    """One-coin Dawid-Skene: one skill per annotator; errors spread evenly over other classes.

    ``skills_``: (n_annotators,) probability of giving the true label.
    """

    def _m_step(
        self, counts: NDArray[np.float64], posteriors: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        k = counts.shape[1]
        hits = np.trace(counts, axis1=1, axis2=2) + self.smoothing
        total = counts.sum(axis=(1, 2)) + 2 * self.smoothing
        skill = np.divide(hits, total, out=np.full_like(hits, 1.0 / k), where=total > 0)
        skill = np.clip(skill, self.eps, 1 - self.eps)
        self.skills_ = skill
        off = np.log((1 - skill) / max(k - 1, 1))
        log_conf = np.repeat(off[:, None, None], k, axis=1).repeat(k, axis=2)
        idx = np.arange(k)
        log_conf[:, idx, idx] = np.log(skill)[:, None]
        return log_conf, self._log_priors(posteriors)
