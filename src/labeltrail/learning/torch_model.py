"""The trainable text classifier (torch): hashed n-gram embeddings, mean-pooled, one hidden layer.

Trained on soft labels only: every target is a distribution over the classes, and every example
carries a loss weight (the label's confidence), so a 2-of-3 crowd label teaches less than an
expert verdict. Exported to ONNX with :func:`export_onnx`; scoring then needs onnxruntime only.
This is the only module of the package, with :mod:`labeltrail.learning.training`, that imports
torch.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from labeltrail.learning.features import PAD, HashingFeaturizer

__all__ = ["ONNX_INPUT", "ONNX_OUTPUT", "HashedNgramClassifier", "export_onnx"]

ONNX_INPUT = "ids"
ONNX_OUTPUT = "probabilities"
ONNX_OPSET = 18
INIT_STD = 0.1


class HashedNgramClassifier(nn.Module):
    """``ids: (batch, width)`` int64 bucket ids -> logits ``(batch, n_classes)``.

    The text vector is the mean of its n-gram embeddings (padding excluded), as in fastText;
    a ReLU hidden layer follows. The embedding table is sparse-gradient so that only the rows
    a batch touches are updated.
    """

    def __init__(self, n_buckets: int, n_classes: int, dim: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_buckets, dim, padding_idx=PAD, sparse=True)
        self.hidden = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, n_classes)
        nn.init.normal_(self.embedding.weight, std=INIT_STD)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # The padding row is zero and receives no gradient, so a plain sum skips padding; no
        # (batch, width, dim) mask product is materialized (the scoring hot spot).
        summed = self.embedding(ids).sum(dim=1)
        count = (ids != PAD).sum(dim=1, keepdim=True).to(torch.float32)
        pooled = summed / count.clamp(min=1.0)
        logits: torch.Tensor = self.out(torch.relu(self.hidden(pooled)))
        return logits


class _WithSoftmax(nn.Module):
    def __init__(self, model: HashedNgramClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(ids), dim=-1)


def export_onnx(
    model: HashedNgramClassifier,
    featurizer: HashingFeaturizer,
    classes: Sequence[str],
    path: Path,
    *,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as one self-describing ONNX file: ``ids -> probabilities``.

    The featurizer config, the class order and ``metadata`` (the training manifest and
    metrics) are stored in the file's metadata, so the artifact's hash covers all of them.
    Uses the torch.export-based exporter (needs onnxscript); batch and width are dynamic.
    """
    import onnx

    model = model.eval()
    with torch.no_grad():
        model.embedding.weight[PAD].zero_()
    example = torch.ones((2, 3), dtype=torch.int64)
    batch, width = torch.export.Dim("batch"), torch.export.Dim("width")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # torch.export notes on symbolic shapes are informational; keep them out of -W error.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.")
        program = torch.onnx.export(
            _WithSoftmax(model).eval(),
            (example,),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_shapes=({0: batch, 1: width},),
            opset_version=ONNX_OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    entries = {
        "labeltrail.featurizer": json.dumps(featurizer.to_config(), sort_keys=True),
        "labeltrail.classes": json.dumps(list(classes)),
        "labeltrail.metadata": json.dumps(metadata or {}, sort_keys=True),
    }
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save_model(proto, str(path))
    return path


def predict_proba_torch(
    model: HashedNgramClassifier, ids: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Torch-eager probabilities, ``(n, n_classes)``: the reference the ONNX file must match."""
    with torch.inference_mode():
        out = torch.softmax(model.eval()(torch.from_numpy(ids)), dim=-1)
    return out.numpy().astype(np.float32)
