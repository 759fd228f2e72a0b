"""ONNX scoring with onnxruntime: the deployed model's path, which never imports torch.

:class:`OnnxTextScorer` loads one self-describing ONNX artifact (featurizer config, classes and
training metadata are in the file) and turns texts into probabilities in batches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from labeltrail.learning.exceptions import ArtifactError
from labeltrail.learning.features import PAD, HashingFeaturizer
from labeltrail.learning.publish import file_sha256

__all__ = ["OnnxTextScorer", "margins"]


def margins(probabilities: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Top-1 minus top-2 probability per row: ``(n, k) -> (n,)``."""
    p = np.asarray(probabilities, dtype=np.float64)
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return np.clip(top2[:, 1] - top2[:, 0], 0.0, 1.0)


class OnnxTextScorer:
    """Texts -> probabilities ``(n, n_classes)`` with an onnxruntime session.

    ``expected_sha256``, when given, must match the file (a published model is verified
    before it serves). ``threads`` bounds onnxruntime's intra-op threads (shared machines);
    ``batch_size`` texts are featurized at once, ``run_batch`` rows go to one session run.
    """

    def __init__(
        self,
        path: Path,
        *,
        expected_sha256: str | None = None,
        threads: int = 1,
        batch_size: int = 2048,
        run_batch: int = 256,
    ) -> None:
        if not path.is_file():
            raise ArtifactError(f"model artifact {path} not found")
        self.sha256 = file_sha256(path)
        if expected_sha256 is not None and expected_sha256 != self.sha256:
            raise ArtifactError(
                f"{path}: sha256 {self.sha256} does not match published {expected_sha256}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            meta = self.session.get_modelmeta().custom_metadata_map
            self.featurizer = HashingFeaturizer.from_config(
                json.loads(meta["labeltrail.featurizer"])
            )
            self.classes: list[str] = list(json.loads(meta["labeltrail.classes"]))
            self.metadata: dict[str, Any] = json.loads(meta.get("labeltrail.metadata", "{}"))
        except (KeyError, ValueError, ort.capi.onnxruntime_pybind11_state.Fail) as exc:
            raise ArtifactError(f"{path}: not a labeltrail ONNX model ({exc})") from exc
        self.path = path
        self.batch_size = batch_size
        self.run_batch = run_batch
        self._input = self.session.get_inputs()[0].name

    def predict_ids(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """Probabilities for featurized rows ``ids: (n, width)``.

        Runs in sub-batches of ``run_batch`` rows, each trimmed to its own widest row: the
        gathered ``(rows, width, dim)`` block then stays in cache (measured 1.5x faster than
        one 1024-row run).
        """
        counts = (ids != PAD).sum(axis=1)
        parts: list[NDArray[np.float32]] = []
        for start in range(0, ids.shape[0], self.run_batch):
            width = max(1, int(counts[start : start + self.run_batch].max(initial=0)))
            block = np.ascontiguousarray(ids[start : start + self.run_batch, :width])
            parts.append(np.asarray(self.session.run(None, {self._input: block})[0]))
        if not parts:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Probabilities ``(len(texts), n_classes)``; featurization included, in batches."""
        parts = [
            self.predict_ids(self.featurizer.transform(texts[i : i + self.batch_size]))
            for i in range(0, len(texts), self.batch_size)
        ]
        if not parts:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.concatenate(parts)
