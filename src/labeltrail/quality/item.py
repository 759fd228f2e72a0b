"""One item's votes, in plain Python: the per-item posterior and agreement rules.

These are the rules the streaming consensus (:mod:`labeltrail.folds.consensus`) applies to
each item as its votes arrive, and the ones :func:`~labeltrail.quality.agreement_items.
item_agreement` reports: one implementation, used by both. Plain Python on purpose: for the
three to five votes of one item it is an order of magnitude cheaper than numpy. The batch
estimators (:class:`~labeltrail.quality.DawidSkene` and the rest) compute the same posterior
for every item at once (``tests/folds/test_folds.py`` checks the two agree).

- Agreement is the share of agreeing vote pairs, Fleiss' per-item P_i, kept as an integer
  count of ordered agreeing pairs so that adding a vote is exact.
- The posterior is P(truth = c | the item's votes) under a uniform prior: each vote adds its
  annotator's log-likelihood column ``[log P(answer | truth = c) for c]``, from a Dawid-Skene
  confusion matrix or a one-coin model at the annotator's accuracy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from operator import add

__all__ = [
    "EPS",
    "add_column",
    "agreeing_pairs",
    "confusion_columns",
    "normalise",
    "one_coin_columns",
    "pairwise_agreement",
    "share_agreeing",
    "vote_shares",
]

EPS = 1e-10
"""Floor of a probability before its log (as the batch models' ``eps``)."""
_ACCURACY_FLOOR = 1e-3


def agreeing_pairs(labels: Iterable[Hashable]) -> int:
    """Ordered pairs of distinct votes with the same label: sum of c * (c - 1) per class."""
    return sum(c * (c - 1) for c in Counter(labels).values())


def share_agreeing(pairs: int, n: int) -> float:
    """``pairs`` agreeing ordered pairs among ``n`` votes as a share; 1.0 below two votes."""
    return pairs / (n * (n - 1)) if n >= 2 else 1.0


def pairwise_agreement(labels: Sequence[Hashable]) -> float:
    """Share of agreeing vote pairs (Fleiss' per-item P_i); 1.0 for a single vote."""
    return share_agreeing(agreeing_pairs(labels), len(labels))


def one_coin_columns(accuracy: float, classes: Sequence[str]) -> dict[str, list[float]]:
    """answer -> [log P(answer | truth = c) for c in classes] of a one-coin annotator: right
    with ``accuracy`` (kept within [0.001, 0.999]), errors spread evenly over the others."""
    k = len(classes)
    acc = min(max(accuracy, _ACCURACY_FLOOR), 1 - _ACCURACY_FLOOR)
    hit, miss = math.log(acc), math.log((1.0 - acc) / max(k - 1, 1))
    return {answer: [hit if c == j else miss for c in range(k)] for j, answer in enumerate(classes)}


def confusion_columns(
    confusion: Sequence[Sequence[float]], classes: Sequence[str]
) -> dict[str, list[float]]:
    """answer -> [log P(answer | truth = c) for c in classes] from a confusion matrix whose
    row c is P(answer | truth = c), each cell floored at :data:`EPS`."""
    k = len(classes)
    return {
        answer: [math.log(max(confusion[c][j], EPS)) for c in range(k)]
        for j, answer in enumerate(classes)
    }


def add_column(logp: list[float], column: Sequence[float]) -> list[float]:
    """A running log-posterior with one more vote's column added (a new list)."""
    return list(map(add, logp, column))


def normalise(logp: Sequence[float], places: int = 6) -> list[float]:
    """An unnormalised log-posterior as probabilities, rounded to ``places`` (events carry
    rounded values, so the tie rule "first class with the top value" is exact)."""
    top = max(logp)
    weights = [math.exp(x - top) for x in logp]
    total = sum(weights)
    return [round(w / total, places) for w in weights]


def vote_shares(labels: Sequence[str], classes: Sequence[str]) -> list[float]:
    """Majority vote as a posterior: each class's share of the votes."""
    counts = Counter(labels)
    return [counts.get(c, 0) / len(labels) for c in classes]
