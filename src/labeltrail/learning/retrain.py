"""Train, check and publish one model from one training set, pure (the trainer is injected).

:func:`train_and_publish` fits on soft, confidence-weighted targets, writes the ONNX artifact
atomically, loads it back as the scorer will, checks parity and evaluates it on gold per slice,
and returns the ``ModelPublished``. The version derives from the export and the configuration
and a finished job's record stays beside its artifact, so a restart re-emits the same event
and never a second model. The caller injects ``make_trainer`` and ``load_scorer``, so torch
and onnxruntime are not imported here (``docs/learning.md``, "Retrain and publish").
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.ids import derive_id
from labeltrail.events.models import ModelPublished, ModelRefused
from labeltrail.exceptions import ArtifactError, LearningError
from labeltrail.learning.data import WEAK_LABELS_MODES, TrainingSet
from labeltrail.learning.gate import (
    DEFAULT_TOLERANCE,
    calibrate_on_gold,
    gate_candidate,
    model_refused,
)
from labeltrail.learning.metrics import GoldSet, evaluate_by_slice, flatten_metrics
from labeltrail.learning.publish import (
    PRODUCER,
    ModelManifest,
    ProbabilityScorer,
    ScorerFactory,
    artifact_path,
    file_sha256,
    model_published,
    write_manifest,
)
from labeltrail.ontology.schema import MODERATION_CLASSES

__all__ = [
    "ClassifierTrainer",
    "GoldSet",
    "ProbabilityScorer",
    "RetrainConfig",
    "ScorerFactory",
    "TrainerFactory",
    "model_version_for",
    "train_and_publish",
]

PUBLISHED_RECORD = "published.json"
"""The finished job's ModelPublished, beside its artifact."""
REFUSED_RECORD = "refused.json"
"""The finished job's ModelRefused (the gate said no), beside its artifact."""


@dataclass(frozen=True)
class RetrainConfig:
    """When to retrain and how (the model's hyper-parameters are part of its version).

    ``every_labels``: emit a training export after this many newly committed labels (0: train
    only on exports made elsewhere, e.g. ``labeltrail export create``). ``min_rows``: fewer
    training rows than this are not trained on. ``parity_tolerance``: the largest allowed
    difference between torch and onnxruntime probabilities on the gold texts.
    ``weak_labels``: ``fill`` adds the weak stage's labels for comments no human label covers,
    each weighted ``weak_weight`` times its confidence
    (:func:`~labeltrail.learning.data.training_set_from_labels`); ``off`` leaves them out.
    """

    every_labels: int = 500
    min_rows: int = 50
    schema_version: str = "v3"
    classes: tuple[str, ...] = MODERATION_CLASSES
    include_machine_made: bool = False
    weak_labels: str = "off"
    weak_weight: float = 0.5
    n_buckets: int = 2**16
    dim: int = 32
    hidden: int = 32
    epochs: int = 12
    batch_size: int = 32
    seed: int = 0
    threads: int = 1
    parity_tolerance: float = 1e-5

    def __post_init__(self) -> None:
        if self.weak_labels not in WEAK_LABELS_MODES:
            raise ValueError(f"weak_labels {self.weak_labels!r}: one of {WEAK_LABELS_MODES}")

    def fingerprint(self) -> str:
        """A stable id of what shapes the model (not when it is trained)."""
        shaping = dataclasses.asdict(self)
        for key in ("every_labels", "min_rows", "threads", "parity_tolerance"):
            shaping.pop(key)
        if self.weak_labels == "off":  # the versions of models trained before the setting
            shaping.pop("weak_labels")
            shaping.pop("weak_weight")
        return derive_id("trainer-config", json.dumps(shaping, sort_keys=True))


class ClassifierTrainer(Protocol):
    """What :func:`train_and_publish` needs of a trainer (``SoftLabelTrainer`` is one)."""

    def fit(
        self,
        texts: Sequence[str],
        targets: NDArray[np.floating[Any]],
        weights: NDArray[np.floating[Any]] | None = None,
    ) -> ClassifierTrainer: ...

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def export_onnx(self, path: Path, *, metadata: dict[str, Any] | None = None) -> Path: ...


TrainerFactory = Callable[[RetrainConfig], ClassifierTrainer]


def model_version_for(export_id: str, config: RetrainConfig) -> str:
    """The version of the model trained on ``export_id`` with ``config`` (deterministic)."""
    return "m-" + derive_id("model", export_id, config.fingerprint())[:13]


def _stored(models_dir: Path, version: str) -> ModelPublished | ModelRefused | None:
    """The finished job's event (published or refused), if its artifact is still the same."""
    path = artifact_path(models_dir, version)
    if not path.is_file():
        return None
    for name, kind in ((PUBLISHED_RECORD, ModelPublished), (REFUSED_RECORD, ModelRefused)):
        record = models_dir / version / name
        if record.is_file():
            stored = kind.model_validate_json(record.read_text())
            return stored if stored.artifact_sha256 == file_sha256(path) else None
    return None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _weak_metadata(config: RetrainConfig, by_source: dict[str, int] | None) -> dict[str, Any]:
    """The artifact's word on weak rows (nothing when weak labels are off: ``by_source``
    None)."""
    if by_source is None:
        return {}
    return {
        "weak_labels": config.weak_labels,
        "weak_weight": config.weak_weight,
        **{f"rows_{k}": n for k, n in by_source.items()},
    }


def train_and_publish(
    training: TrainingSet,
    gold: GoldSet,
    *,
    models_dir: Path,
    version: str,
    config: RetrainConfig,
    make_trainer: TrainerFactory,
    load_scorer: ScorerFactory,
    export_id: str | None = None,
    export_hash: str | None = None,
    manifest: Mapping[str, Any] | None = None,
    causation_id: str | None = None,
    baseline: ModelPublished | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    calibration_min_gold: int | None = None,
    calibration_bins: int = 10,
) -> ModelPublished | ModelRefused:
    """Fit, export, verify, evaluate on ``gold`` per slice, and gate against ``baseline``
    (the live model); the ModelPublished to emit, or the ModelRefused.

    ``export_id`` / ``export_hash`` name the export the set was read from (default: the
    training set's own). ``manifest`` goes into the ONNX metadata beside them (log positions,
    the training set's hash). The gate is :func:`~labeltrail.learning.gate.gate_candidate`,
    the one ``labeltrail model publish`` runs: a refused model's artifact stays, with its
    manifest beside it, for a person to publish with ``--force``. Raises
    :class:`ArtifactError` when parity fails (the artifact is removed) or the baseline cannot
    be loaded, and :class:`LearningError` when the set cannot be trained on.
    ``calibration_min_gold``: a published model with at least this many gold items gets the
    auto-accept map fitted on its gold scores (:func:`~labeltrail.learning.gate.
    calibrate_on_gold`; None: never).
    """
    stored = _stored(models_dir, version)
    if stored is not None:
        return stored
    if len(training) == 0:
        raise LearningError("no training rows")
    classes = list(training.classes)
    export_id = export_id or training.export_id
    export_hash = export_hash or training.content_hash
    # Rows per source (human, weak, machine): how many the weak stage's labels filled.
    by_source = training.rows_by_source() if config.weak_labels != "off" else None
    metadata = {
        "export_id": export_id,
        "export_hash": export_hash,
        "training_set_hash": training.content_hash,
        "rows": len(training),
        "trainer": config.fingerprint(),
        "schema_version": config.schema_version,
        **_weak_metadata(config, by_source),
        **dict(manifest or {}),
    }
    trainer = make_trainer(config).fit(list(training.texts), training.targets, training.weights)
    path = artifact_path(models_dir, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".model.{os.getpid()}.onnx")
    trainer.export_onnx(tmp, metadata=metadata)
    os.replace(tmp, path)
    scorer = load_scorer(path, file_sha256(path))
    probe = list(gold.texts) or list(training.texts[:256])
    onnx_p = np.asarray(scorer.predict_proba(probe), dtype=np.float64)
    torch_p = np.asarray(trainer.predict_proba(probe), dtype=np.float64)
    diff = float(np.max(np.abs(onnx_p - torch_p))) if probe else 0.0
    if not diff <= config.parity_tolerance:
        path.unlink()
        raise ArtifactError(
            f"model {version}: onnxruntime and torch differ by {diff:.2e} "
            f"(> {config.parity_tolerance:.0e}); not published"
        )
    metrics: dict[str, float] = {
        "train.rows": float(len(training)),
        "train.weight": float(np.sum(training.weights)),
        "parity.max_abs_diff": diff,
    }
    if by_source is not None:
        metrics.update({f"train.rows.{k}": float(n) for k, n in by_source.items()})
    if len(gold):
        per_slice = evaluate_by_slice(list(gold.truth), onnx_p, list(gold.slices), classes)
        metrics.update(flatten_metrics(per_slice))
    write_manifest(
        path,
        ModelManifest(
            model_version=version,
            classes=classes,
            schema_version=config.schema_version,
            export_id=export_id,
            export_hash=export_hash,
        ),
    )
    gold_p = onnx_p[: len(gold)]  # the model's scores of the gold items (probe's first rows)
    decision = gate_candidate(
        gold,
        gold_p,
        classes,
        baseline=baseline,
        models_dir=models_dir,
        load_scorer=load_scorer,
        tolerance=tolerance,
    )
    event: ModelPublished | ModelRefused
    if decision.passed:
        calibration = calibrate_on_gold(
            gold, gold_p, classes, min_gold=calibration_min_gold, bins=calibration_bins
        )
        event = model_published(
            models_dir,
            version,
            classes,
            export_id=export_id,
            export_hash=export_hash,
            metrics={**metrics, **decision.metrics(), **calibration.metrics},
            causation_id=causation_id,
            schema_version=config.schema_version,
            baseline_version=decision.baseline_version,
            temperature=calibration.temperature,
        )
        record = PUBLISHED_RECORD
    else:
        event = model_refused(
            decision,
            gold,
            producer=PRODUCER,
            model_version=version,
            artifact_sha256=file_sha256(path),
            classes=classes,
            schema_version=config.schema_version,
            export_id=export_id,
            metrics=metrics,
            causation_id=causation_id,
        )
        record = REFUSED_RECORD
    _write_atomically(models_dir / version / record, event.model_dump_json(indent=2))
    return event
