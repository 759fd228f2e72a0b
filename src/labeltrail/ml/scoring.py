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

from labeltrail.exceptions import ArtifactError
from labeltrail.learning.features import HashingFeaturizer, blocks_by_length
from labeltrail.learning.prelabel import margins
from labeltrail.learning.publish import file_sha256

__all__ = ["OnnxTextScorer", "margins"]

_LOAD_ERRORS: tuple[type[Exception], ...] = (
    KeyError,
    ValueError,
    *(
        v
        for v in vars(ort.capi.onnxruntime_pybind11_state).values()
        if isinstance(v, type) and issubclass(v, Exception)
    ),
)
"""A file that is not a labeltrail model: missing metadata, or one of onnxruntime's own errors
(``Fail``, ``InvalidProtobuf``, ``InvalidGraph``, ...), which share no base class but
``Exception``; a text file named ``.onnx`` raises ``InvalidProtobuf``."""


class OnnxTextScorer:
    """Texts -> probabilities ``(n, n_classes)`` with an onnxruntime session.

    ``expected_sha256``, when given, must match the file (a published model is verified
    before it serves). ``threads`` bounds onnxruntime's intra-op threads (shared machines);
    ``batch_size`` texts are featurized at once, ``run_batch`` rows of similar length go to
    one session run (see :func:`~labeltrail.learning.features.blocks_by_length`).
    """

    def __init__(
        self,
        path: Path,
        *,
        expected_sha256: str | None = None,
        threads: int = 1,
        batch_size: int = 2048,
        run_batch: int = 64,
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
        except _LOAD_ERRORS as exc:
            raise ArtifactError(f"{path}: not a labeltrail ONNX model ({exc})") from exc
        self.path = path
        self.batch_size = batch_size
        self.run_batch = run_batch
        model_input = self.session.get_inputs()[0]
        self._input = model_input.name
        # Models exported before int32 ids take int64; the graph says which.
        self._id_dtype = np.int32 if model_input.type == "tensor(int32)" else np.int64
        self._output = [self.session.get_outputs()[0].name]

    def predict_ids(self, ids: NDArray[np.integer[Any]]) -> NDArray[np.float32]:
        """Probabilities for featurized rows ``ids: (n, width)``, in the rows' order.

        Runs blocks of ``run_batch`` rows of similar length, each trimmed to its longest row:
        the gather then reads almost no padding and its ``(rows, width, dim)`` output stays in
        cache.
        """
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (n, width), got shape {ids.shape}")
        if ids.shape[0] == 1:  # one text: padding is only what a caller added, nothing to sort
            feed = {self._input: ids.astype(self._id_dtype, copy=False)}
            return np.asarray(self.session.run(self._output, feed)[0], dtype=np.float32)
        out = np.empty((ids.shape[0], len(self.classes)), dtype=np.float32)
        for rows, block in blocks_by_length(ids, self.run_batch):
            feed = {self._input: block.astype(self._id_dtype, copy=False)}
            out[rows] = self.session.run(self._output, feed)[0]
        return out

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Probabilities ``(len(texts), n_classes)``; featurization included, in batches."""
        if len(texts) <= self.batch_size:
            return self.predict_ids(self.featurizer.transform(texts))
        return np.concatenate(
            [
                self.predict_ids(self.featurizer.transform(texts[i : i + self.batch_size]))
                for i in range(0, len(texts), self.batch_size)
            ]
        )
