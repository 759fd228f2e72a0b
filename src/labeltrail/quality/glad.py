"""GLAD (Whitehill et al., NIPS 2009): annotator ability and item difficulty, fitted by EM.

Multi-class form as in Crowd-Kit: with ``s = alpha_a * exp(b_i)`` (ability times inverse
difficulty, ``beta_i = exp(b_i) > 0``),

    P(vote = truth) = sigmoid(s),   P(vote = l != truth) = (1 - sigmoid(s)) / (K - 1).

Gaussian priors N(``alpha_prior_mean``, 1) on ``alpha_a`` and N(``beta_prior_mean``, 1) on
``b_i`` (Crowd-Kit's defaults: both means 1). E-step: posteriors from two ``bincount`` sums over
the votes. M-step: a few conjugate-gradient steps on the expected complete-data log-likelihood
Q(alpha, b) with its analytic gradient, both one pass over the vote arrays; no Python loop over
votes anywhere.

The fit runs with BLAS held to one thread (``threadpoolctl``): the conjugate gradient's dot
products over the (n_annotators + n_items) parameters are BLAS calls, whose threaded sums
round differently from the single-threaded ones, and on a flat optimum (S_Rel) that moved the
EM path and the accuracy with the machine's thread count (0.5105-0.5161); on one thread the
result is one figure, and on this 2-core machine 6x less CPU (S_Rel: 4.8 against 30.8 CPU-s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit
from threadpoolctl import threadpool_limits

from labeltrail.exceptions import QualityError
from labeltrail.quality._base import Aggregator
from labeltrail.quality._em import fix_gold, majority_proba
from labeltrail.quality._encoding import NO_GOLD, Votes

__all__ = ["GLAD"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class _Design:
    item: NDArray[np.int64]
    annotator: NDArray[np.int64]
    cell: NDArray[np.int64]  # item * K + label, (n_votes,)
    n_items: int
    n_annotators: int
    n_classes: int


class GLAD(Aggregator):
    """GLAD by EM with a conjugate-gradient M-step.

    max_iter: EM rounds at most; tol: stop when the log posterior (observed-data
    log-likelihood plus the log priors of alpha and b) gains less than ``tol`` per vote;
    m_step_max_iter, m_step_tol: conjugate-gradient budget per M-step (Crowd-Kit: 25, 1e-2);
    alpha_prior_mean, beta_prior_mean: means of the unit-variance Gaussian priors on alpha and
    on b = log beta; learn_priors: learn class priors (False = uniform, as GLAD and Crowd-Kit).
    ``fit(votes, gold=...)`` holds gold items at their one-hot gold label in every E-step.

    Learned: ``alphas_`` (n_annotators,) ability (negative = adversarial); ``betas_``
    (n_items,) inverse difficulty exp(b) > 0; ``priors_`` (n_classes,); ``n_iter_``;
    ``converged_``; ``objective_`` (final log posterior up to a constant, nats).

    >>> v = Votes.from_long([0, 0, 0, 1, 1, 1], list("xyzxyz"), [1, 1, 0, 0, 0, 0])
    >>> GLAD().fit_predict(v).tolist()
    [1, 0]
    """

    def __init__(
        self,
        max_iter: int = 100,
        tol: float = 1e-5,
        m_step_max_iter: int = 25,
        m_step_tol: float = 1e-2,
        alpha_prior_mean: float = 1.0,
        beta_prior_mean: float = 1.0,
        learn_priors: bool = False,
    ) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.m_step_max_iter = m_step_max_iter
        self.m_step_tol = m_step_tol
        self.alpha_prior_mean = alpha_prior_mean
        self.beta_prior_mean = beta_prior_mean
        self.learn_priors = learn_priors

    # -- model pieces, each one pass over the votes ---------------------------------------------

    @staticmethod
    def _vote_terms(d: _Design, alpha: F64, b: F64) -> tuple[F64, F64, F64]:
        """Per vote: beta = exp(b) of its item, s = alpha * beta, and log P(vote | a given
        other truth) = log sigmoid(-s) - log(K - 1). Since log sigmoid(s) - log sigmoid(-s) = s,
        log P(vote | truth = vote) = s + log(K - 1) + that."""
        beta = np.exp(b)[d.item]
        s = alpha[d.annotator] * beta
        log_miss = -(np.maximum(s, 0.0) + np.log1p(np.exp(-np.abs(s))))  # stable softplus
        log_miss -= np.log(d.n_classes - 1)
        return beta, s, log_miss

    def _e_step(
        self, d: _Design, alpha: F64, b: F64, log_priors: F64, gold: NDArray[np.int64] | None
    ) -> tuple[F64, float]:
        """Posteriors (n_items, n_classes) and the log-likelihood of the votes (and gold)."""
        n, k = d.n_items, d.n_classes
        _, s, log_miss = self._vote_terms(d, alpha, b)
        base = np.bincount(d.item, weights=log_miss, minlength=n)
        hit_gain = s + np.log(k - 1)  # log P(vote | truth = vote) - log P(vote | other)
        extra = np.bincount(d.cell, weights=hit_gain, minlength=n * k).reshape(n, k)
        logits = extra + base[:, None] + log_priors[None, :]
        top = logits.max(axis=1, keepdims=True)
        post = np.exp(logits - top)
        sums = post.sum(axis=1)
        post /= sums[:, None]
        per_item = np.log(sums) + top[:, 0]
        if gold is not None:
            rows = np.flatnonzero(gold != NO_GOLD)
            per_item[rows] = logits[rows, gold[rows]]
            fix_gold(post, gold)
        return post, float(per_item.sum())

    def _log_prior(self, x: F64, n_annotators: int) -> float:
        da, db = x[:n_annotators] - self.alpha_prior_mean, x[n_annotators:] - self.beta_prior_mean
        return -0.5 * float(np.square(da).sum() + np.square(db).sum())

    def _q_and_grad(self, x: F64, d: _Design, p_vote: F64) -> tuple[float, F64]:
        """Minus Q and its gradient at x = [alpha (n_annotators,), b (n_items,)].

        p_vote: (n_votes,) posterior that the item's truth equals the vote's label.
        """
        alpha, b = x[: d.n_annotators], x[d.n_annotators :]
        beta, s, log_miss = self._vote_terms(d, alpha, b)
        da, db = alpha - self.alpha_prior_mean, b - self.beta_prior_mean
        # elementwise sums, not BLAS dot products: BLAS threads stall on a shared machine
        q = float((p_vote * s).sum()) + np.log(d.n_classes - 1) * float(p_vote.sum())
        q += float(log_miss.sum()) - 0.5 * float(np.square(da).sum() + np.square(db).sum())
        g = p_vote - expit(s)  # dQ/ds per vote
        grad = np.concatenate(
            [
                np.bincount(d.annotator, weights=g * beta, minlength=d.n_annotators) - da,
                np.bincount(d.item, weights=g * s, minlength=d.n_items) - db,
            ]
        )
        return -q, -grad

    def _fit(self, votes: Votes, gold: NDArray[np.int64] | None) -> NDArray[np.floating]:
        with threadpool_limits(limits=1, user_api="blas"):  # one figure whatever the machine
            return self._fit_em(votes, gold)

    def _fit_em(self, votes: Votes, gold: NDArray[np.int64] | None) -> NDArray[np.floating]:
        if self.max_iter < 1 or self.tol < 0 or self.m_step_max_iter < 1:
            raise QualityError("max_iter and m_step_max_iter must be >= 1 and tol >= 0")
        n, a, k = votes.n_items, votes.n_annotators, votes.n_classes
        self.alphas_ = np.full(a, 1.0)
        self.betas_ = np.full(n, np.e)
        if k < 2:  # one class: nothing to infer
            self.priors_ = np.ones(1)
            self.n_iter_, self.converged_, self.objective_ = 0, True, 0.0
            return majority_proba(votes)
        d = _Design(votes.item, votes.annotator, votes.item * k + votes.label, n, a, k)
        x = np.concatenate([self.alphas_, np.log(self.betas_)])
        log_priors = np.full(k, -np.log(k))
        n_votes = max(votes.n_votes, 1)
        post, log_lik = self._e_step(d, x[:a], x[a:], log_priors, gold)
        prev = log_lik + self._log_prior(x, a)
        converged = False
        it = 0
        for it in range(1, self.max_iter + 1):  # noqa: B007 - it is reported
            if self.learn_priors:
                log_priors = np.log(np.clip(post.mean(axis=0), 1e-10, None))
            res = minimize(
                self._q_and_grad,
                x,
                args=(d, post.reshape(-1)[d.cell]),
                jac=True,
                method="CG",
                tol=self.m_step_tol,
                options={"maxiter": self.m_step_max_iter},
            )
            x = np.asarray(res.x, dtype=np.float64)
            post, log_lik = self._e_step(d, x[:a], x[a:], log_priors, gold)
            objective = log_lik + self._log_prior(x, a)
            if (objective - prev) / n_votes < self.tol:
                converged = True
                prev = objective
                break
            prev = objective
        self.alphas_ = x[:a].copy()
        self.betas_ = np.exp(x[a:])
        self.priors_ = np.exp(log_priors)
        self.n_iter_, self.converged_, self.objective_ = it, converged, prev
        return post
