"""Model artifacts and their ModelPublished records, pure (hashlib only).

An artifact is one ONNX file under ``models_dir/<model_version>/model.onnx``; the event names
it relative to ``models_dir`` (so a scorer on another host resolves it against its own dir),
its sha256, the export it was trained on and its gold metrics per slice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from labeltrail.events.models import ModelPublished

__all__ = ["artifact_path", "file_sha256", "model_published"]

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


def model_published(
    models_dir: Path,
    model_version: str,
    classes: Sequence[str],
    *,
    export_id: str | None,
    export_hash: str | None,
    metrics: Mapping[str, float],
    causation_id: str | None = None,
) -> ModelPublished:
    """The record of a written artifact (deterministic id: version and file hash).

    ``causation_id``: the event that asked for the model (the export it was trained on).
    """
    path = artifact_path(models_dir, model_version)
    sha = file_sha256(path)
    return ModelPublished.create(
        producer=PRODUCER,
        id_parts=(model_version, sha),
        causation_id=causation_id,
        model_version=model_version,
        artifact_uri=str(path.relative_to(models_dir)),
        artifact_sha256=sha,
        classes=list(classes),
        export_id=export_id,
        export_hash=export_hash,
        metrics=dict(metrics),
    )
