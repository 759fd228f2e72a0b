"""Vote-counting consensus: majority vote and weighted majority vote.

The model-based methods live in :mod:`labeltrail.quality.dawid_skene` and
:mod:`labeltrail.quality.mace`; all share :class:`~labeltrail.quality._base.Aggregator`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeltrail.exceptions import VoteFormatError
from labeltrail.quality._base import Aggregator
from labeltrail.quality._em import majority_proba
from labeltrail.quality._encoding import Votes, argmax_lowest

__all__ = ["MajorityVote", "WeightedMajorityVote", "weighted_proba"]


class MajorityVote(Aggregator):
    """Share of votes per class; label by :data:`~labeltrail.quality.TIE_RULE`.

    Duplicate votes count as separate votes. Items without votes get a uniform row.

    >>> v = Votes.from_long(["a", "a", "b", "b"], ["x", "y", "x", "y"], [1, 1, 0, 1])
    >>> MajorityVote().fit_predict(v).tolist()  # item b is a tie -> lowest label 0
    [1, 0]
    """

    def _fit(self, votes: Votes, gold: NDArray[np.int64] | None) -> NDArray[np.floating]:
        return majority_proba(votes)


def weighted_proba(votes: Votes, weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-item normalized sums of annotator weights: (n_items, n_classes).

    weights: (n_annotators,) non-negative. Items whose weights sum to 0 get a uniform row.
    """
    n, k = votes.n_items, votes.n_classes
    w = weights[votes.annotator]
    sums = np.bincount(votes.item * k + votes.label, weights=w, minlength=n * k).reshape(n, k)
    totals = sums.sum(axis=1, keepdims=True)
    empty = totals[:, 0] <= 0
    sums[empty] = 1.0
    totals[empty] = k
    out: NDArray[np.float64] = sums / totals
    return out


class WeightedMajorityVote(Aggregator):
    """Majority vote with one weight per annotator.

    weights: ``{annotator id: weight}`` or (n_annotators,) in code order. When None the weights
    are learned as each annotator's agreement with the plain majority vote (Wawa, "worker
    agreement with aggregate"), with ``n_iter`` rounds of re-weighting.
    Learned ``weights_``: (n_annotators,).
    """

    def __init__(
        self, weights: Mapping[Hashable, float] | ArrayLike | None = None, n_iter: int = 1
    ) -> None:
        self.weights = weights
        self.n_iter = n_iter

    def _resolve_weights(self, votes: Votes) -> NDArray[np.float64] | None:
        if self.weights is None:
            return None
        if isinstance(self.weights, Mapping):
            w = np.array([float(self.weights.get(a, 0.0)) for a in votes.annotator_ids.tolist()])
        else:
            w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (votes.n_annotators,) or np.any(~np.isfinite(w)) or np.any(w < 0):
            raise VoteFormatError("weights must be finite, non-negative, one per annotator")
        return w

    def _fit(self, votes: Votes, gold: NDArray[np.int64] | None) -> NDArray[np.floating]:
        w = self._resolve_weights(votes)
        if w is not None:
            self.weights_ = w
            return weighted_proba(votes, w)
        proba = majority_proba(votes)
        n_a = np.bincount(votes.annotator, minlength=votes.n_annotators).astype(np.float64)
        learned = np.zeros(votes.n_annotators)
        for _ in range(max(self.n_iter, 1)):
            agg = argmax_lowest(proba)
            hits = (votes.label == agg[votes.item]).astype(np.float64)
            agree = np.bincount(votes.annotator, weights=hits, minlength=votes.n_annotators)
            learned = np.divide(agree, n_a, out=np.zeros_like(agree), where=n_a > 0)
            proba = weighted_proba(votes, learned)
        self.weights_ = learned
        return proba
