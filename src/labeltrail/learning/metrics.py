"""Evaluation against the gold set, per slice, pure numpy.

Agreement is not correctness: these figures come from gold labels only, and they are always
reported per slice, because a blind spot hides inside a good overall number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["OVERALL", "GoldSet", "SliceMetrics", "evaluate_by_slice", "flatten_metrics"]

OVERALL = "all"
UNKNOWN_SLICE = "unknown"


@dataclass(frozen=True)
class GoldSet:
    """The expert-labeled evaluation items: ids, texts, true labels and slices, aligned."""

    comment_ids: tuple[str, ...]
    texts: tuple[str, ...]
    truth: tuple[str, ...]
    slices: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.comment_ids)

    @classmethod
    def from_verdicts(
        cls,
        verdicts: Mapping[str, str],
        texts: Mapping[str, str],
        slices: Mapping[str, str],
    ) -> GoldSet:
        """Comment id -> gold label, with each comment's text and slice (``unknown`` when it
        has none), in comment-id order."""
        ids = sorted(verdicts)
        return cls(
            comment_ids=tuple(ids),
            texts=tuple(texts[c] for c in ids),
            truth=tuple(verdicts[c] for c in ids),
            slices=tuple(slices.get(c, UNKNOWN_SLICE) for c in ids),
        )


@dataclass(frozen=True)
class SliceMetrics:
    """``recall``: per true class present in the slice, the share predicted as that class.

    ``toxic_recall``: share of the slice's non-``benign_class`` items predicted as any
    non-benign class (a threat called harassment still gets moderated).
    """

    n: int
    accuracy: float
    recall: dict[str, float]
    toxic_recall: float | None


def evaluate_by_slice(
    true_labels: Sequence[str],
    probabilities: NDArray[np.floating[Any]],
    slices: Sequence[str],
    classes: Sequence[str],
    *,
    benign_class: str = "non-toxic",
) -> dict[str, SliceMetrics]:
    """``probabilities: (n, n_classes)`` in ``classes`` order -> metrics per slice and ``all``."""
    p = np.asarray(probabilities)
    if p.shape != (len(true_labels), len(classes)) or len(slices) != len(true_labels):
        raise ValueError("true_labels, probabilities and slices must align")
    index = {c: i for i, c in enumerate(classes)}
    truth = np.array([index[t] for t in true_labels], dtype=np.int64)
    pred = p.argmax(axis=1) if p.size else np.zeros(0, np.int64)
    slice_arr = np.asarray(slices)
    benign = index.get(benign_class, -1)
    out: dict[str, SliceMetrics] = {}
    for name in [OVERALL, *sorted(set(slices))]:
        mask = np.ones(truth.size, bool) if name == OVERALL else slice_arr == name
        t, y = truth[mask], pred[mask]
        recall = {classes[c]: float(np.mean(y[t == c] == c)) for c in np.unique(t)}
        toxic = t != benign
        out[name] = SliceMetrics(
            n=int(mask.sum()),
            accuracy=float(np.mean(t == y)) if t.size else float("nan"),
            recall=recall,
            toxic_recall=float(np.mean(y[toxic] != benign)) if toxic.any() else None,
        )
    return out


def flatten_metrics(metrics: dict[str, SliceMetrics], prefix: str = "gold") -> dict[str, float]:
    """``{"gold.<slice>.accuracy": ..., "gold.<slice>.recall.<class>": ...}`` for events."""
    flat: dict[str, float] = {}
    for name, m in metrics.items():
        flat[f"{prefix}.{name}.n"] = float(m.n)
        flat[f"{prefix}.{name}.accuracy"] = m.accuracy
        for cls, r in m.recall.items():
            flat[f"{prefix}.{name}.recall.{cls}"] = r
        if m.toxic_recall is not None:
            flat[f"{prefix}.{name}.toxic_recall"] = m.toxic_recall
    return flat
