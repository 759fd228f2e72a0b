"""Model artifacts and their ModelPublished records, pure (hashlib only).

An artifact is one ONNX file under ``models_dir/<model_version>/model.onnx``; the event names
it relative to ``models_dir`` (so a scorer on another host resolves it against its own dir),
its sha256, the export it was trained on and its gold metrics per slice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from labeltrail.events.models import ModelPublished

__all__ = [
    "PRODUCER",
    "ModelManifest",
    "ProbabilityScorer",
    "ScorerFactory",
    "artifact_path",
    "file_sha256",
    "manifest_path",
    "model_published",
    "resolve_artifact",
    "write_manifest",
]


class ProbabilityScorer(Protocol):
    """A loaded artifact (``OnnxTextScorer`` is one): texts -> ``(n, n_classes)``."""

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


ScorerFactory = Callable[[Path, str], ProbabilityScorer]
"""``(artifact path, expected sha256) -> scorer``; must verify the hash."""

PRODUCER = "learning"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (the ``artifact_sha256`` of ModelPublished)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_path(models_dir: Path, model_version: str) -> Path:
    """Where a model version's ONNX file lives."""
    return models_dir / model_version / "model.onnx"


def resolve_artifact(uri: str, models_dir: Path) -> Path:
    """``file:///abs/model.onnx``, an absolute path, or a path relative to ``models_dir``."""
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    path = Path(uri)
    return path if path.is_absolute() else models_dir / path


def model_published(
    models_dir: Path,
    model_version: str,
    classes: Sequence[str],
    *,
    export_id: str | None,
    export_hash: str | None,
    metrics: Mapping[str, float],
    causation_id: str | None = None,
    schema_version: str | None = None,
    baseline_version: str | None = None,
    forced: bool = False,
    force_reason: str = "",
    temperature: float | None = None,
    producer: str = PRODUCER,
) -> ModelPublished:
    """The record of a written artifact (deterministic id: version and file hash).

    ``causation_id``: the event that asked for the model (the export it was trained on).
    ``baseline_version``: the live model the publish gate compared it with; ``forced``: the
    gate refused it and a person published it anyway, for ``force_reason``.
    ``temperature``: the auto-accept map fitted on its gold scores (None: none).
    """
    path = artifact_path(models_dir, model_version)
    sha = file_sha256(path)
    return ModelPublished.create(
        producer=producer,
        id_parts=(model_version, sha),
        causation_id=causation_id,
        model_version=model_version,
        artifact_uri=str(path.relative_to(models_dir)),
        artifact_sha256=sha,
        classes=list(classes),
        export_id=export_id,
        export_hash=export_hash,
        metrics=dict(metrics),
        schema_version=schema_version,
        baseline_version=baseline_version,
        forced=forced,
        force_reason=force_reason,
        temperature=temperature,
    )


class ModelManifest(BaseModel):
    """What a model file must come with to be published (``<name>.manifest.json`` beside
    ``<name>.onnx``): its class order, the label schema version it predicts and the training
    export it was made from (``export_id`` null: trained outside labeltrail; the key must still
    be there, so the absence is a statement)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_version: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    classes: list[str] = Field(min_length=2)
    schema_version: str = Field(min_length=1)
    export_id: str | None
    export_hash: str | None = None


def manifest_path(model: Path) -> Path:
    """The manifest that goes with a model file: ``model.onnx`` -> ``model.manifest.json``."""
    return model.with_name(f"{model.stem}.manifest.json")


def write_manifest(model: Path, manifest: ModelManifest) -> Path:
    """Write ``manifest`` beside ``model`` (as :func:`manifest_path` names it)."""
    path = manifest_path(model)
    path.write_text(manifest.model_dump_json(indent=2) + "\n")
    return path
