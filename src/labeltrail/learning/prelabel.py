"""Model-assisted labeling decisions, pure: routes, draft labels, auto-accept, anchoring watch.

The scorer routes comments (:func:`route_for`), tasking copies the model's top class into a
task as its draft (:func:`prelabel_decision`), and the labels fold commits a confident score
as a machine-made label that never counts as a human vote (:func:`auto_accept_label`).
:class:`DraftAcceptance` watches per confidence band whether annotators anchor on the draft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.ids import derive_id
from labeltrail.events.models import CommentScored, LabelCommitted, TaskCreated, VoteCast
from labeltrail.quality.calibration import temper

__all__ = [
    "DEFAULT_BANDS",
    "BandStats",
    "DraftAcceptance",
    "Prelabel",
    "auto_accept_label",
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


def auto_accept_label(
    scored: CommentScored, schema_version: str, auto_accept_threshold: float
) -> LabelCommitted | None:
    """The machine-made label for a confidently scored comment, or None below the threshold.

    Provenance says what it is: route ``auto_accept``, ``machine_made=True``, method
    ``model:<version>``, no votes and no annotators, so no consensus or reliability figure
    can count it as a human judgement. The id is a function of comment, schema and model.
    A score made under the model's calibration map (``scored.temperature``) gates on, and
    commits, the calibrated distribution, and the label's method_params name the temperature.
    """
    temperature = scored.temperature
    probabilities = (
        scored.probabilities
        if temperature is None
        else temper(list(scored.probabilities), temperature)
    )
    draft = prelabel_decision(scored.classes, probabilities, auto_accept_threshold)
    if not draft.auto_accept:
        return None
    params = {"auto_accept_threshold": f"{auto_accept_threshold:.4f}"}
    if temperature is not None:
        params["temperature"] = repr(temperature)
    label_id = derive_id("label", scored.comment_id, schema_version, "auto", scored.model_version)
    return LabelCommitted.create(
        producer="tasking",
        id_parts=(label_id,),
        occurred_at=scored.envelope.occurred_at,
        causation_id=scored.event_id,
        correlation_id=scored.comment_id,
        label_id=label_id,
        comment_id=scored.comment_id,
        schema_version=schema_version,
        label=draft.label,
        classes=list(scored.classes),
        distribution=list(draft.distribution),
        confidence=draft.confidence,
        route="auto_accept",
        method=f"model:{scored.model_version}",
        method_params=params,
        vote_ids=[],
        annotator_ids=[],
        machine_made=True,
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

    def add_vote(
        self, task: TaskCreated, vote: VoteCast, true_label: str | None = None
    ) -> DraftAcceptance:
        """Record a human vote on a task that carried a draft; other votes are ignored."""
        if task.prelabel is None or task.prelabel_confidence is None or not vote.prelabel_shown:
            return self
        return self.add(task.prelabel, task.prelabel_confidence, vote.label, true_label)

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


def margins(probabilities: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Top-1 minus top-2 probability per row: ``(n, k) -> (n,)``."""
    p = np.asarray(probabilities, dtype=np.float64)
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return np.clip(top2[:, 1] - top2[:, 0], 0.0, 1.0)
