"""Pooled-prior Bayesian Dawid-Skene: the default consensus method (``pds``).

Dawid-Skene whose confusion rows have a Dirichlet prior centred on the *pooled* confusion matrix
(all annotators' expected counts summed), fitted by variational Bayes (IBCC-style) on the shared
EM kernel of :mod:`labeltrail.quality._em`:

* prior of annotator a's row k: ``Dirichlet(strength * K * pooled[k, :])`` — ``strength * K``
  pseudo-votes per row (K = number of classes), spread like the crowd's pooled row;
* the E-step uses ``E[log pi] = digamma(counts + prior) - digamma(row total)``, so an annotator
  with few answers is both pulled toward the pooled row and discounted for its uncertainty;
* class priors: ``Dirichlet(1)``, used the same way.

The prior's strength is fixed; each annotator's evidence sets how far it moves: a row with n
answers keeps weight ``n / (n + strength * K)`` on its own counts, so a sparse annotator acts
like the average annotator (a class-aware majority vote) and one with hundreds of answers gets
full Dawid-Skene freedom. The choice and the evidence for it: docs/quality.md ("Default method").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma

from labeltrail.exceptions import QualityError
from labeltrail.quality._em import EMResult, LogParams
from labeltrail.quality._encoding import Votes
from labeltrail.quality.dawid_skene import DawidSkene, Init, Precision

__all__ = ["PooledDawidSkene"]


class PooledDawidSkene(DawidSkene):
    """Dawid-Skene with a pooled Dirichlet prior per confusion row, by variational Bayes.

    strength: pseudo-votes per class in each confusion row's prior (default 0.5, i.e. K/2 per
    row); max_iter, tol, precision, init as :class:`DawidSkene`. ``confusion_`` is the posterior
    mean (n_annotators, n_true, n_given), ``pooled_`` the pooled matrix (n_true, n_given).

    >>> v = Votes.from_long([0, 0, 0, 1, 1, 1], list("xyzxyz"), [1, 1, 0, 0, 0, 0])
    >>> PooledDawidSkene().fit_predict(v).tolist()
    [1, 0]
    """

    def __init__(
        self,
        strength: float = 0.5,
        max_iter: int = 100,
        tol: float = 1e-5,
        precision: Precision = "float32",
        init: Init = "wmv",
    ) -> None:
        super().__init__(max_iter=max_iter, tol=tol, precision=precision, init=init)
        self.strength = strength

    def _start(self, votes: Votes) -> None:
        if not self.strength > 0:
            raise QualityError(f"strength must be > 0, got {self.strength!r}")

    def _m_step(
        self, counts: NDArray[np.float64], posteriors: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        k = counts.shape[1]
        rows = counts.transpose(0, 2, 1)  # (annotator, true, given)
        pooled = rows.sum(axis=0) + 1.0
        pooled /= pooled.sum(axis=1, keepdims=True)
        self.pooled_ = pooled
        post = rows + (self.strength * k) * self._prior_mean(rows, pooled)
        totals = post.sum(axis=2, keepdims=True)
        self._mean = post / totals
        pri = np.asarray(posteriors.sum(axis=0, dtype=np.float64), dtype=np.float64) + 1.0
        log_conf, log_pri = self._expected_log(post, totals), self._expected_log(pri, pri.sum())
        return np.ascontiguousarray(log_conf.transpose(0, 2, 1)), log_pri

    def _prior_mean(self, rows: NDArray[np.float64], pooled: NDArray[np.float64]) -> NDArray[Any]:
        """Mean of each confusion row's prior, broadcastable to rows (annotator, true, given).
        A hook: ops/quality/method_table.py's other prior families override it."""
        return pooled[None]

    def _expected_log(self, post: NDArray[np.float64], total: Any) -> NDArray[np.float64]:
        """Variational Bayes: E[log p] under Dirichlet(post) (the MAP variant overrides it)."""
        out: NDArray[np.float64] = digamma(post) - digamma(total)
        return out

    def _store(self, res: EMResult[LogParams]) -> None:
        super()._store(res)
        self.confusion_ = self._mean
        self.priors_ = self.priors_ / self.priors_.sum()
