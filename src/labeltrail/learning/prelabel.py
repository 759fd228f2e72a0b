"""Model-assisted labeling decisions, pure: routes, draft labels, auto-accept, anchoring watch.

The tasking fold copies the draft label from CommentScored into the task and calls
:func:`prelabel_decision`; above the configured confidence the label is committed as
machine-made (``route="auto_accept"``, ``machine_made=True``) and never counts as a human
vote. :class:`DraftAcceptance` tracks, per confidence band, how often humans keep the draft:
acceptance far above the model's own accuracy in a band means annotators anchor on the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "DEFAULT_BANDS",
    "BandStats",
    "DraftAcceptance",
    "Prelabel",
    "prelabel_decision",
    "route_for",
]

Route = Literal["annotate", "auto_accept", "none"]
DEFAULT_BANDS: tuple[float, ...] = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
"""Confidence band edges; the last band includes 1.0."""


def route_for(
    margin: float,
    top_probability: float,
    threshold: float,
    auto_accept_threshold: float | None = None,
) -> Route:
    """``annotate`` below the margin threshold; ``auto_accept`` at or above the auto-accept
    confidence (when set); otherwise ``none``. The margin test wins when both apply."""
    if margin < threshold:
        return "annotate"
    if auto_accept_threshold is not None and top_probability >= auto_accept_threshold:
        return "auto_accept"
    return "none"


@dataclass(frozen=True)
class Prelabel:
    """A draft label for a task: what the model proposes and whether it stands alone."""

    label: str
    confidence: float
    auto_accept: bool
    distribution: tuple[float, ...]


def prelabel_decision(
    classes: Sequence[str],
    probabilities: Sequence[float],
    auto_accept_threshold: float,
) -> Prelabel:
    """The draft label (top class, lowest index on ties) and whether to auto-accept it.

    Auto-accepted labels are machine-made: the caller commits them with
    ``machine_made=True`` and no votes; they must never be counted as a human vote.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape != (len(classes),) or len(classes) == 0:
        raise ValueError("one probability per class is required")
    best = int(np.argmax(p))
    confidence = float(p[best])
    return Prelabel(
        label=classes[best],
        confidence=confidence,
        auto_accept=confidence >= auto_accept_threshold,
        distribution=tuple(float(x) for x in p),
    )


def _band(confidence: float, edges: Sequence[float]) -> int:
    i = int(np.searchsorted(edges, confidence, side="right")) - 1
    return min(max(i, 0), len(edges) - 2)


@dataclass
class BandStats:
    """One confidence band: drafts shown, kept by the human, and correct (where known)."""

    low: float
    high: float
    shown: int = 0
    accepted: int = 0
    judged: int = 0
    correct: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.shown if self.shown else None

    @property
    def draft_accuracy(self) -> float | None:
        """How often the draft was right against gold or adjudication."""
        return self.correct / self.judged if self.judged else None

    @property
    def anchoring_gap(self) -> float | None:
        """Acceptance minus draft accuracy: large and positive = humans rubber-stamp."""
        if self.acceptance_rate is None or self.draft_accuracy is None:
            return None
        return self.acceptance_rate - self.draft_accuracy


@dataclass
class DraftAcceptance:
    """``initialize / add / result`` tracker of human acceptance of drafts per band."""

    edges: tuple[float, ...] = DEFAULT_BANDS
    bands: list[BandStats] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.bands:
            self.bands = [
                BandStats(lo, hi) for lo, hi in zip(self.edges[:-1], self.edges[1:], strict=True)
            ]

    def add(
        self,
        draft_label: str,
        draft_confidence: float,
        human_label: str,
        true_label: str | None = None,
    ) -> DraftAcceptance:
        """Record one human answer to a task that showed a draft."""
        band = self.bands[_band(draft_confidence, self.edges)]
        band.shown += 1
        band.accepted += int(human_label == draft_label)
        if true_label is not None:
            band.judged += 1
            band.correct += int(draft_label == true_label)
        return self

    def result(self, *, anchoring_alert: float = 0.15) -> list[dict[str, float | int | bool]]:
        """Per band: shown, acceptance rate, draft accuracy, gap and an anchoring alert."""
        rows: list[dict[str, float | int | bool]] = []
        for b in self.bands:
            gap = b.anchoring_gap
            rows.append(
                {
                    "low": b.low,
                    "high": b.high,
                    "shown": b.shown,
                    "acceptance_rate": -1.0 if b.acceptance_rate is None else b.acceptance_rate,
                    "draft_accuracy": -1.0 if b.draft_accuracy is None else b.draft_accuracy,
                    "anchoring": gap is not None and gap > anchoring_alert,
                }
            )
        return rows
