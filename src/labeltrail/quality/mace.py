"""MACE (Hovy et al., NAACL 2013): annotators either copy the truth or spam from their own
label distribution. Fitted by EM on the shared sparse kernel.

Model per annotator a: with probability ``1 - theta_a`` the vote is the true label, otherwise it is
drawn from ``xi_a`` (n_classes,). The true label has a uniform prior, as in MACE. Hence
``P(l | k) = (1 - theta_a) [l == k] + theta_a xi_a[l]``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma

from labeltrail.quality._encoding import Votes
from labeltrail.quality.dawid_skene import Precision, _ConfusionEM

__all__ = ["MACE"]


class MACE(_ConfusionEM):
    """MACE by EM. ``smoothing`` (default 0.01, MACE's EM default) is added to the expected
    spam counts. ``learn_priors=True`` learns class priors instead of MACE's uniform prior (helps
    on skewed classes: D_Product 0.819 -> 0.938). Learned: ``spam_``: (n_annotators,) theta;
    ``competence_`` = 1 - theta; ``spam_dist_``: (n_annotators, n_classes) xi.

    ``vb=True``: MACE's variational Bayes (Hovy et al. 2013, section 2.2; Crowd-Kit's default),
    Beta(``alpha``, ``beta``) prior on (spam, knowing) and Dirichlet(``strategy_prior``) on xi;
    the E-step uses the exp-digamma weights, so ``competence_`` is then not exactly 1 - theta.
    Crowd-Kit's defaults: alpha = beta = 0.5, strategy_prior = 10 (docs/quality.md, "MACE").
    """

    def __init__(
        self,
        max_iter: int = 100,
        tol: float = 1e-5,
        eps: float = 1e-10,
        smoothing: float = 0.01,
        precision: Precision = "float32",
        learn_priors: bool = False,
        vb: bool = False,
        alpha: float = 0.5,
        beta: float = 0.5,
        strategy_prior: float = 10.0,
    ) -> None:
        super().__init__(max_iter, tol, eps, smoothing, precision)
        self.learn_priors = learn_priors
        self.vb = vb
        self.alpha = alpha
        self.beta = beta
        self.strategy_prior = strategy_prior

    def _start(self, votes: Votes) -> None:
        self.spam_ = np.full(votes.n_annotators, 0.5)
        self.know_ = np.full(votes.n_annotators, 0.5)
        self.spam_dist_ = np.full((votes.n_annotators, votes.n_classes), 1.0 / votes.n_classes)

    def _conf(self) -> NDArray[np.float64]:
        """P(given l | true k): (n_annotators, n_given, n_true)."""
        k = self.spam_dist_.shape[1]
        conf = self.spam_[:, None, None] * self.spam_dist_[:, :, None] * np.ones((1, 1, k))
        idx = np.arange(k)
        conf[:, idx, idx] += self.know_[:, None]
        out: NDArray[np.float64] = conf
        return out

    def _m_step(
        self, counts: NDArray[np.float64], posteriors: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        k = counts.shape[1]
        conf = np.clip(self._conf(), self.eps, None)
        spam_part = self.spam_[:, None, None] * self.spam_dist_[:, :, None] / conf
        spam_counts = (counts * spam_part).sum(axis=2)  # (n_annotators, n_given)
        n_a = counts.sum(axis=(1, 2))
        s = self.smoothing
        spam_total = spam_counts.sum(axis=1)
        if self.vb:  # exp E[log p] under the Beta / Dirichlet posteriors
            den = digamma(n_a + self.alpha + self.beta)
            self.spam_ = np.exp(digamma(spam_total + self.alpha) - den)
            self.know_ = np.exp(digamma(n_a - spam_total + self.beta) - den)
            sp = spam_counts + self.strategy_prior
            self.spam_dist_ = np.exp(digamma(sp) - digamma(sp.sum(axis=1, keepdims=True)))
        else:
            self.spam_ = np.clip((spam_total + s) / (n_a + 2 * s), self.eps, 1 - self.eps)
            self.know_ = 1.0 - self.spam_
            self.spam_dist_ = (spam_counts + s) / (spam_total + k * s)[:, None]
        log_conf = np.log(np.clip(self._conf(), self.eps, None))
        if self.learn_priors:
            return log_conf, self._log_priors(posteriors)
        return log_conf, np.full(k, -np.log(k))

    @property
    def competence_(self) -> NDArray[np.float64]:
        out: NDArray[np.float64] = self.know_
        return out
