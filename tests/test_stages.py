"""The trainer settings come from the environment; the version covers what shapes a model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from labeltrail.config import Settings
from labeltrail.folds.trainer import RetrainFold
from labeltrail.learning.retrain import RetrainConfig, model_version_for
from labeltrail.stages import make


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELTRAIL_TRAINER_EVERY_LABELS", "647")
    monkeypatch.setenv("LABELTRAIL_TRAINER_EPOCHS", "8")
    monkeypatch.setenv("LABELTRAIL_LEARNING_MODELS_DIR", "/tmp/lt-models")
    fold = make("trainer", Settings())
    assert isinstance(fold, RetrainFold)
    config = fold.config
    assert config.every_labels == 647 and config.epochs == 8
    assert config.n_buckets == RetrainConfig().n_buckets
    assert str(fold.models_dir) == "/tmp/lt-models"
    monkeypatch.setenv("LABELTRAIL_TRAINER_EVERY_LABELS", "-1")
    with pytest.raises(ValueError):
        Settings()


def test_the_version_changes_with_the_model_not_with_the_schedule() -> None:
    base = RetrainConfig()
    version = model_version_for("export-1", base)
    assert version == model_version_for("export-1", replace(base, every_labels=10, threads=2))
    assert version != model_version_for("export-2", base)
    assert version != model_version_for("export-1", replace(base, epochs=base.epochs + 1))
    assert version != model_version_for("export-1", replace(base, seed=1))
