"""Fixtures for the learning tests: a tiny model trained and exported once per session."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from labeltrail.ontology.schema import MODERATION_CLASSES
from tests.unavailable import unavailable

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def require(module: str) -> ModuleType:
    """Import ``module`` or skip; under CI=true a missing module is a failure."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} not installed ({exc}); CI requires it")


def require_model_stack() -> None:
    """torch (training), onnxscript (its ONNX export) and onnxruntime (serving): what a test
    that trains and serves a model needs; under CI=true a missing one is a failure."""
    for module in ("torch", "onnxscript", "onnxruntime"):
        require(module)


def convabuse_dir() -> Path:
    folder = DATASETS / "convabuse"
    if not folder.is_dir():
        unavailable(f"ConvAbuse not found at {folder}")
    return folder


TOY = {
    "non-toxic": ["great video thanks", "love this part", "so useful, subscribed", "nice edit"],
    "mild": ["kind of dumb lol", "boring take", "meh cringe"],
    "harassment": ["nobody wants you here loser", "log off you clown", "you are a joke"],
    "hate": ["[slur] don't belong here", "people like [group] ruin it"],
    "threats": ["i know where you live", "watch your back tonight"],
}


def toy_corpus(repeat: int = 12, seed: int = 0) -> tuple[list[str], np.ndarray[Any, Any]]:
    """Texts and soft targets ``(n, 5)``: each template repeated with a varying suffix."""
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    rows: list[np.ndarray[Any, Any]] = []
    for r in range(repeat):
        for c, cls in enumerate(MODERATION_CLASSES):
            for t in TOY[cls]:
                texts.append(f"{t} {rng.choice(['', 'ok', 'lol', '!!'])} {r}")
                row = np.full(5, 0.05)
                row[c] = 0.8
                rows.append(row)
    return texts, np.array(rows)


@dataclass(frozen=True)
class TinyModel:
    trainer: Any
    path: Path
    texts: list[str]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A 2**12-bucket classifier trained on the toy corpus and exported to ONNX once."""
    require("torch")
    require("onnxscript")
    from labeltrail.learning.features import HashingFeaturizer
    from labeltrail.ml.training import SoftLabelTrainer

    texts, targets = toy_corpus()
    trainer = SoftLabelTrainer(
        MODERATION_CLASSES,
        featurizer=HashingFeaturizer(n_buckets=2**12, max_features=64),
        dim=16,
        hidden=16,
        epochs=8,
        batch_size=16,
        seed=0,
    ).fit(texts, targets)
    path = tmp_path_factory.mktemp("models") / "tiny" / "model.onnx"
    trainer.export_onnx(path, metadata={"export_id": "toy"})
    return TinyModel(trainer, path, texts)
