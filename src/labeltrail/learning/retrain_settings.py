"""Settings of the trainer service, read from the environment (``LABELTRAIL_TRAINER_*``).

Where the artifacts go is :class:`~labeltrail.learning.settings.LearningSettings`'
``models_dir``, shared with the scorer.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from labeltrail.learning.retrain import RetrainConfig

__all__ = ["TrainerSettings"]


class TrainerSettings(BaseSettings):
    """When the trainer retrains and the model it trains (frozen)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_TRAINER_", frozen=True, extra="ignore")

    every_labels: int = Field(500, ge=0)
    """``LABELTRAIL_TRAINER_EVERY_LABELS``: an export and a model per this many new labels
    (0: only on exports made elsewhere)."""

    min_rows: int = Field(50, ge=1)
    """``LABELTRAIL_TRAINER_MIN_ROWS``: fewer training rows are not trained on."""

    schema_version: str = "v3"
    """``LABELTRAIL_TRAINER_SCHEMA_VERSION``: the label schema the model predicts."""

    n_buckets: int = Field(2**16, ge=16)
    """``LABELTRAIL_TRAINER_N_BUCKETS``: hashed n-gram buckets."""

    dim: int = Field(32, ge=1)
    """``LABELTRAIL_TRAINER_DIM``: embedding width."""

    hidden: int = Field(32, ge=1)
    """``LABELTRAIL_TRAINER_HIDDEN``: hidden layer width."""

    epochs: int = Field(12, ge=1)
    """``LABELTRAIL_TRAINER_EPOCHS``."""

    batch_size: int = Field(32, ge=1)
    """``LABELTRAIL_TRAINER_BATCH_SIZE``."""

    seed: int = 0
    """``LABELTRAIL_TRAINER_SEED``: fixes initialization and shuffling."""

    threads: int = Field(1, ge=1)
    """``LABELTRAIL_TRAINER_THREADS``: torch threads (more than free cores slows sparse updates)."""

    def config(self) -> RetrainConfig:
        return RetrainConfig(
            every_labels=self.every_labels,
            min_rows=self.min_rows,
            schema_version=self.schema_version,
            n_buckets=self.n_buckets,
            dim=self.dim,
            hidden=self.hidden,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            threads=self.threads,
        )
