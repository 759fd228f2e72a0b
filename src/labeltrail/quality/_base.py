"""Common scikit-learn-like surface of the consensus estimators."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeltrail.exceptions import NotFittedError, VoteFormatError
from labeltrail.quality._encoding import NO_GOLD, Votes, argmax_lowest

__all__ = ["Aggregator", "GoldLike", "resolve_gold"]

GoldLike = Mapping[Hashable, Hashable] | ArrayLike | None
"""Gold as ``{item id: label}`` or as class codes (n_items,) with ``NO_GOLD`` (-1) for unknown."""


def resolve_gold(votes: Votes, gold: GoldLike) -> NDArray[np.int64] | None:
    """Gold in any accepted form -> codes (n_items,) or None when no item has gold."""
    if gold is None:
        return None
    if isinstance(gold, Mapping):
        codes = votes.encode_gold(gold)
    else:
        arr = np.asarray(gold)
        if arr.shape != (votes.n_items,) or (arr.size and arr.dtype.kind not in "iu"):
            raise VoteFormatError(
                f"gold codes must be integers of shape ({votes.n_items},), got {arr.dtype} "
                f"{arr.shape}; pass a mapping {{item id: label}} for ids"
            )
        codes = arr.astype(np.int64)
        if codes.size and (codes.min() < NO_GOLD or codes.max() >= votes.n_classes):
            raise VoteFormatError("gold codes out of range")
    return codes if np.any(codes != NO_GOLD) else None


class Aggregator:
    """Base: ``fit(votes, gold=None)`` learns ``posteriors_`` (n_items, n_classes) and ``labels_``.

    ``labels_`` follows :data:`~labeltrail.quality.TIE_RULE` (exact ties -> lowest class code).
    ``confidence_`` is the posterior of the chosen label, (n_items,).
    """

    posteriors_: NDArray[np.floating]
    labels_: NDArray[np.int64]
    classes_: NDArray[Any]

    def _fit(self, votes: Votes, gold: NDArray[np.int64] | None) -> NDArray[np.floating]:
        raise NotImplementedError

    def fit(self, votes: Votes, gold: GoldLike = None) -> Self:
        """Fit on ``votes``; ``gold`` is used only by methods that hold gold items fixed."""
        if not isinstance(votes, Votes):
            raise VoteFormatError("fit expects labeltrail.quality.Votes (see Votes.from_long)")
        if votes.n_classes == 0:
            raise VoteFormatError("no votes to aggregate")
        self.posteriors_ = self._fit(votes, resolve_gold(votes, gold))
        self.labels_ = argmax_lowest(self.posteriors_)
        self.classes_ = votes.classes
        return self

    def fit_predict(self, votes: Votes, gold: GoldLike = None) -> NDArray[np.int64]:
        """Class codes (n_items,); decode with ``votes.classes[codes]``."""
        return self.fit(votes, gold).labels_

    def fit_predict_proba(self, votes: Votes, gold: GoldLike = None) -> NDArray[np.floating]:
        """Posteriors (n_items, n_classes)."""
        return self.fit(votes, gold).posteriors_

    @property
    def confidence_(self) -> NDArray[np.floating]:
        if not hasattr(self, "posteriors_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted")
        rows = np.arange(self.labels_.shape[0])
        return self.posteriors_[rows, self.labels_]
