"""The publish gate, pure: a candidate model against the live one on the gold set, per slice.

Both models score the same gold items now (not the figures each recorded when it was
published: the gold set may have grown since), and the candidate's accuracy on every slice
(and on ``all``) is compared with the live model's. A drop larger than the tolerance on any
slice refuses the candidate; ``labeltrail model publish --force`` publishes it anyway and the
``ModelPublished`` says so. The trainer service and the CLI both call :func:`gate_candidate`,
with the onnxruntime loader injected, so this module imports no runtime
(``docs/learning.md``, "The publish gate").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.models import ModelPublished, ModelRefused
from labeltrail.learning.metrics import OVERALL, GoldSet
from labeltrail.learning.publish import ScorerFactory, resolve_artifact
from labeltrail.quality.calibration import (
    TemperatureCalibrator,
    reliability_bins,
    temper_rows,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "GateDecision",
    "ModelCalibration",
    "SliceComparison",
    "accuracy_by_slice",
    "calibrate_on_gold",
    "compare_on_gold",
    "gate_candidate",
    "gold_digest",
    "model_refused",
    "predicted_labels",
]

DEFAULT_TOLERANCE = 0.02
"""The largest drop in gold accuracy on any slice a new model may show (the settings'
``LABELTRAIL_LEARNING_GATE_TOLERANCE`` default)."""

_EPS = 1e-9
"""Float slack: a drop equal to the tolerance passes whatever the rounding."""


@dataclass(frozen=True)
class SliceComparison:
    """One slice's gold accuracy, candidate vs baseline (the live model)."""

    slice: str
    n: int
    candidate: float
    baseline: float
    tolerance: float

    @property
    def drop(self) -> float:
        return self.baseline - self.candidate

    @property
    def worse(self) -> bool:
        return self.drop > self.tolerance + _EPS


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict. ``problem``: why no comparison could be made (a refusal too)."""

    baseline_version: str | None
    tolerance: float
    slices: tuple[SliceComparison, ...] = ()
    problem: str | None = None

    @property
    def worse_slices(self) -> tuple[str, ...]:
        return tuple(s.slice for s in self.slices if s.worse)

    @property
    def passed(self) -> bool:
        return self.problem is None and not self.worse_slices

    def reason(self) -> str:
        """One line: why it passed or was refused."""
        if self.problem is not None:
            return self.problem
        if self.baseline_version is None:
            return "first model: no live model to compare with"
        worse = [s for s in self.slices if s.worse]
        if not worse:
            return (
                f"no slice of the gold set worse than {self.baseline_version} by more than "
                f"{self.tolerance:g}"
            )
        figures = ", ".join(
            f"{s.slice} {s.baseline:.3f} -> {s.candidate:.3f} (n={s.n})" for s in worse
        )
        return (
            f"worse on gold than {self.baseline_version} by more than {self.tolerance:g} "
            f"in accuracy: {figures}"
        )

    def metrics(self) -> dict[str, float]:
        """The figures for an event: ``gate.tolerance``, and per slice the candidate's
        ``gold.<slice>.accuracy`` and the baseline's ``baseline.<slice>.accuracy``."""
        out = {"gate.tolerance": self.tolerance}
        for s in self.slices:
            out[f"gold.{s.slice}.n"] = float(s.n)
            out[f"gold.{s.slice}.accuracy"] = s.candidate
            if self.baseline_version is not None:
                out[f"baseline.{s.slice}.accuracy"] = s.baseline
        return out


def predicted_labels(probabilities: NDArray[np.floating[Any]], classes: Sequence[str]) -> list[str]:
    """``probabilities: (n, len(classes))`` -> the top class of each row, by name."""
    p = np.asarray(probabilities)
    if p.ndim != 2 or p.shape[1] != len(classes):
        raise ValueError(f"probabilities must be (n, {len(classes)}), got {p.shape}")
    return [classes[i] for i in p.argmax(axis=1)] if p.size else []


def accuracy_by_slice(
    truth: Sequence[str], predicted: Sequence[str], slices: Sequence[str]
) -> dict[str, tuple[int, float]]:
    """``{slice: (n, accuracy)}`` for every slice and ``all``, comparing class names (so
    models with other class lists compare on the same footing)."""
    if not len(truth) == len(predicted) == len(slices):
        raise ValueError("truth, predicted and slices must align")
    hit = np.asarray([t == p for t, p in zip(truth, predicted, strict=True)], dtype=bool)
    names = np.asarray(slices)
    out: dict[str, tuple[int, float]] = {}
    for name in [OVERALL, *sorted(set(slices))]:
        mask = np.ones(hit.size, bool) if name == OVERALL else names == name
        n = int(mask.sum())
        out[name] = (n, float(hit[mask].mean()) if n else float("nan"))
    return out


def compare_on_gold(
    gold: GoldSet,
    candidate: Sequence[str],
    baseline: Sequence[str] | None,
    *,
    tolerance: float,
    baseline_version: str | None,
) -> GateDecision:
    """Compare the two models' predicted labels on ``gold`` slice by slice.

    ``baseline`` None (no live model): the candidate passes, with its own figures recorded.
    With a baseline and no gold item the gate cannot tell and refuses.
    """
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    if baseline is not None and len(gold) == 0:
        return GateDecision(
            baseline_version,
            tolerance,
            problem=(
                f"no gold item to compare with {baseline_version} on: publish a gold set "
                "(labeltrail gold publish) for the model's schema version"
            ),
        )
    if baseline is None:
        baseline, baseline_version = candidate, None  # nothing to compare: its own figures
    if not len(gold):
        return GateDecision(baseline_version, tolerance)
    mine = accuracy_by_slice(gold.truth, candidate, gold.slices)
    theirs = accuracy_by_slice(gold.truth, baseline, gold.slices)
    return GateDecision(
        baseline_version,
        tolerance,
        tuple(
            SliceComparison(name, n, acc, theirs[name][1], tolerance)
            for name, (n, acc) in mine.items()
        ),
    )


def gate_candidate(
    gold: GoldSet,
    candidate_probabilities: NDArray[np.floating[Any]],
    classes: Sequence[str],
    *,
    baseline: ModelPublished | None,
    models_dir: Path,
    load_scorer: ScorerFactory,
    tolerance: float,
) -> GateDecision:
    """The one gate: score ``gold`` with the live model ``baseline`` (a ``ModelPublished``,
    its artifact loaded with ``load_scorer``, hash verified) and compare with the candidate's
    ``candidate_probabilities: (len(gold), len(classes))``.

    Raises :class:`~labeltrail.exceptions.ArtifactError` when the baseline's artifact cannot
    be loaded (the gate cannot run; nothing is published).
    """
    candidate = predicted_labels(candidate_probabilities, classes)
    if baseline is None:
        return compare_on_gold(gold, candidate, None, tolerance=tolerance, baseline_version=None)
    theirs: list[str] = []
    if len(gold):
        path = resolve_artifact(baseline.artifact_uri, models_dir)
        scorer = load_scorer(path, baseline.artifact_sha256)
        theirs = predicted_labels(scorer.predict_proba(list(gold.texts)), baseline.classes)
    return compare_on_gold(
        gold, candidate, theirs, tolerance=tolerance, baseline_version=baseline.model_version
    )


@dataclass(frozen=True)
class ModelCalibration:
    """The auto-accept map fitted on a model's gold scores at publish: ``temperature`` (None:
    too few gold items, nothing fitted) and its figures for the ModelPublished's metrics."""

    temperature: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)


def calibrate_on_gold(
    gold: GoldSet,
    probabilities: NDArray[np.floating[Any]],
    classes: Sequence[str],
    *,
    min_gold: int | None,
    bins: int = 10,
) -> ModelCalibration:
    """Fit a temperature on the model's ``probabilities: (len(gold), len(classes))`` for the
    gold items against their gold class (those whose class is one of ``classes``), as the
    consensus confidence is calibrated (``docs/quality.md``, "Calibrated confidence").

    Fewer than ``min_gold`` such items (or ``min_gold`` None: calibration off): no map.
    Otherwise ``metrics`` hold ``calibration.n_gold``, ``calibration.ece_before`` /
    ``ece_after`` and the reliability diagram's bins
    ``calibration.<before|after>.bin<k>.<n|confidence|accuracy>``, measured on the same gold
    items the map was fitted on.
    """
    index = {c: i for i, c in enumerate(classes)}
    codes = np.asarray([index.get(t, -1) for t in gold.truth], dtype=np.int64)
    rows = np.flatnonzero(codes >= 0)
    if min_gold is None or rows.size < max(min_gold, 1):
        return ModelCalibration()
    p = np.asarray(probabilities, dtype=np.float64)[rows]
    truth = codes[rows]
    temperature = TemperatureCalibrator().fit(p, truth).temperature_
    metrics: dict[str, float] = {"calibration.n_gold": float(rows.size)}
    for stage, q in (("before", p), ("after", temper_rows(p, temperature))):
        diagram = reliability_bins(q.max(axis=1), q.argmax(axis=1) == truth, bins)
        metrics[f"calibration.ece_{stage}"] = diagram.ece
        for k, (n, conf, acc) in enumerate(zip(*diagram, strict=True)):
            metrics[f"calibration.{stage}.bin{k:02d}.n"] = float(n)
            metrics[f"calibration.{stage}.bin{k:02d}.confidence"] = conf
            metrics[f"calibration.{stage}.bin{k:02d}.accuracy"] = acc
    return ModelCalibration(temperature, metrics)


def gold_digest(gold: GoldSet) -> str:
    """A hash of the gold items a decision was made on (ids, truth, slices)."""
    rows = sorted(zip(gold.comment_ids, gold.truth, gold.slices, strict=True))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def model_refused(
    decision: GateDecision,
    gold: GoldSet,
    *,
    producer: str,
    model_version: str,
    artifact_sha256: str,
    classes: Sequence[str],
    schema_version: str | None,
    export_id: str | None,
    metrics: Mapping[str, float] | None = None,
    causation_id: str | None = None,
) -> ModelRefused:
    """The audited refusal. Deterministic id: the same model refused against the same
    baseline on the same gold set with the same tolerance is one fact, however often tried."""
    return ModelRefused.create(
        producer=producer,
        id_parts=(
            model_version,
            artifact_sha256,
            decision.baseline_version,
            decision.tolerance,
            gold_digest(gold),
        ),
        causation_id=causation_id,
        model_version=model_version,
        artifact_sha256=artifact_sha256,
        classes=list(classes),
        schema_version=schema_version,
        export_id=export_id,
        baseline_version=decision.baseline_version,
        tolerance=decision.tolerance,
        worse_slices=list(decision.worse_slices),
        reason=decision.reason(),
        metrics={**dict(metrics or {}), **decision.metrics()},
    )
