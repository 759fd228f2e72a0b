"""Per-item statistics over the handful of votes one item has."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["TIE_RULE", "majority_posterior", "pairwise_agreement"]

TIE_RULE = "lowest-label"
"""Ties go to the class that comes first in the schema's class order."""


def majority_posterior(labels: Sequence[str], classes: Sequence[str]) -> tuple[list[float], str]:
    """Vote shares per class (in ``classes`` order) and the majority label (``TIE_RULE``)."""
    counts = Counter(labels)
    total = len(labels)
    posterior = [counts.get(c, 0) / total for c in classes]
    best = max(range(len(classes)), key=lambda i: (posterior[i], -i))
    return posterior, classes[best]


def pairwise_agreement(labels: Sequence[str]) -> float:
    """Share of annotator pairs that agree (Fleiss' per-item P_i); 1.0 for one vote."""
    n = len(labels)
    if n < 2:
        return 1.0
    agreeing = sum(c * (c - 1) for c in Counter(labels).values())
    return agreeing / (n * (n - 1))
