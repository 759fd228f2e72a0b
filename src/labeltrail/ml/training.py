"""Soft-label, confidence-weighted training of :class:`HashedNgramClassifier` (torch).

The loss is the weighted cross-entropy against a target *distribution*:
``sum_i w_i * H(t_i, p_i) / sum_i w_i`` with ``t_i: (n_classes,)`` the label's soft
distribution and ``w_i`` its confidence. Hard labels alone are refused (a 1-d target raises):
a one-hot row is accepted only as the distribution a caller chose to give.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from labeltrail.exceptions import LearningError, NotFittedError
from labeltrail.learning.features import HashingFeaturizer
from labeltrail.ml.torch_model import HashedNgramClassifier, export_onnx, predict_proba_torch

__all__ = ["SoftLabelTrainer"]


class SoftLabelTrainer:
    """Fit a hashed n-gram classifier to soft labels with per-example confidence weights.

    Parameters are hyper-parameters only; learned state ends in ``_``: ``model_``,
    ``classes_``, ``loss_history_`` (mean loss per epoch), ``fit_seconds_``.
    """

    def __init__(
        self,
        classes: Sequence[str],
        *,
        featurizer: HashingFeaturizer | None = None,
        dim: int = 64,
        hidden: int = 64,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 0.05,
        dense_lr: float = 0.01,
        threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.classes = tuple(classes)
        self.featurizer = featurizer or HashingFeaturizer()
        self.dim = dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.dense_lr = dense_lr
        self.threads = threads
        self.seed = seed

    def fit(
        self,
        texts: Sequence[str],
        targets: NDArray[np.floating[Any]],
        weights: NDArray[np.floating[Any]] | None = None,
    ) -> SoftLabelTrainer:
        """``targets: (n, n_classes)`` distributions (rows sum to 1); ``weights: (n,)`` >= 0."""
        t = np.asarray(targets, dtype=np.float32)
        n, k = len(texts), len(self.classes)
        if t.ndim != 2 or t.shape != (n, k):
            raise LearningError(
                f"targets must be soft distributions of shape ({n}, {k}), got {t.shape}"
            )
        if n == 0:
            raise LearningError("no training examples")
        if np.any(t < 0) or not np.allclose(t.sum(axis=1), 1.0, atol=1e-3):
            raise LearningError("every target row must be a probability distribution")
        w = np.ones(n, np.float32) if weights is None else np.asarray(weights, np.float32)
        if w.shape != (n,) or np.any(w < 0) or not np.any(w > 0):
            raise LearningError("weights must be (n,), non-negative, not all zero")
        started = time.perf_counter()
        previous_threads = torch.get_num_threads()
        # More threads than free cores makes sparse updates several times slower, not faster.
        torch.set_num_threads(self.threads)
        try:
            self._fit(texts, t, w)
        finally:
            torch.set_num_threads(previous_threads)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _fit(self, texts: Sequence[str], t: NDArray[np.float32], w: NDArray[np.float32]) -> None:
        n, k = len(texts), len(self.classes)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        ids = self.featurizer.transform(texts)
        model = HashedNgramClassifier(self.featurizer.n_buckets, k, self.dim, self.hidden)
        sparse = torch.optim.SparseAdam(list(model.embedding.parameters()), lr=self.lr)
        dense_params = list(model.hidden.parameters()) + list(model.out.parameters())
        dense = torch.optim.Adam(dense_params, lr=self.dense_lr)
        ids_t, t_t, w_t = torch.from_numpy(ids), torch.from_numpy(t), torch.from_numpy(w)
        history: list[float] = []
        model.train()
        for _ in range(self.epochs):
            order = torch.from_numpy(rng.permutation(n))
            total, mass = 0.0, 0.0
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                logp = torch.log_softmax(model(ids_t[idx]), dim=-1)
                wb = w_t[idx]
                per_example = -(t_t[idx] * logp).sum(dim=-1)
                denominator = wb.sum().clamp(min=1e-8)
                loss = (wb * per_example).sum() / denominator
                sparse.zero_grad()
                dense.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                sparse.step()  # type: ignore[no-untyped-call]
                dense.step()
                total += float(loss.detach()) * float(denominator)
                mass += float(denominator)
            history.append(total / max(mass, 1e-8))
        self.model_ = model.eval()
        self.classes_ = self.classes
        self.loss_history_ = history

    def _check(self) -> HashedNgramClassifier:
        model: HashedNgramClassifier | None = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError("call fit first")
        return model

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Torch-eager probabilities, ``(n, n_classes)``."""
        model = self._check()
        return predict_proba_torch(model, self.featurizer.transform(texts))

    def export_onnx(self, path: Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the fitted model to ``path`` as ONNX (see :func:`export_onnx`)."""
        return export_onnx(self._check(), self.featurizer, self.classes, path, metadata=metadata)
