"""Settings of the learning stages, read from the environment (``LABELTRAIL_LEARNING_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LearningSettings"]


class LearningSettings(BaseSettings):
    """Scorer and trainer settings (frozen)."""

    model_config = SettingsConfigDict(
        env_prefix="LABELTRAIL_LEARNING_", frozen=True, extra="ignore"
    )

    models_dir: Path = Path("var/models")
    """``LABELTRAIL_LEARNING_MODELS_DIR``: where model artifacts are written and resolved."""

    auto_accept_threshold: float | None = Field(None, ge=0.0, le=1.0)
    """``LABELTRAIL_LEARNING_AUTO_ACCEPT_THRESHOLD``: top probability that routes auto_accept."""

    scorer_threads: int = Field(1, ge=1)
    """``LABELTRAIL_LEARNING_SCORER_THREADS``: onnxruntime intra-op threads per scorer."""
