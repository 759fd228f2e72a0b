"""The trainer service's two heavy parts, built from a :class:`RetrainConfig`.

An edge module (it imports torch and onnxruntime through the trainer and scorer): the pure
:class:`labeltrail.folds.trainer.RetrainFold` is handed these factories by
``services/trainer.py``, and tests hand it the same ones.
"""

from __future__ import annotations

from pathlib import Path

from labeltrail.learning.features import HashingFeaturizer
from labeltrail.learning.retrain import RetrainConfig
from labeltrail.ml.scoring import OnnxTextScorer
from labeltrail.ml.training import SoftLabelTrainer

__all__ = ["onnx_scorer", "torch_trainer"]


def torch_trainer(cfg: RetrainConfig) -> SoftLabelTrainer:
    """The torch classifier the config describes, untrained."""
    return SoftLabelTrainer(
        cfg.classes,
        featurizer=HashingFeaturizer(n_buckets=cfg.n_buckets, seed=cfg.seed),
        dim=cfg.dim,
        hidden=cfg.hidden,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        threads=cfg.threads,
        seed=cfg.seed,
    )


def onnx_scorer(path: Path, sha256: str, *, threads: int = 1) -> OnnxTextScorer:
    """The published artifact, loaded only if its hash matches (``threads``: onnxruntime's
    intra-op threads)."""
    return OnnxTextScorer(path, expected_sha256=sha256, threads=threads)
