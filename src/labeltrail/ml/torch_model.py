"""The trainable text classifier (torch): hashed n-gram embeddings, mean-pooled, one hidden layer.

Trained on soft labels weighted by confidence (:mod:`labeltrail.ml.training`, the only other
module that imports torch) and exported to ONNX with :func:`export_onnx`, so scoring needs
onnxruntime only.
"""

from __future__ import annotations

import json
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
ONNX_IR_VERSION = 9
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


def export_onnx(
    model: HashedNgramClassifier,
    featurizer: HashingFeaturizer,
    classes: Sequence[str],
    path: Path,
    *,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as one self-describing ONNX file: ``ids -> probabilities``.

    The graph is written op by op from the trained weights, the same math as
    :meth:`HashedNgramClassifier.forward` plus the softmax: ``Gather`` and ``ReduceSum`` over
    the width, the non-padding count from a ``Cast`` to bool, ``Gemm`` / ``Relu`` / ``Gemm`` /
    ``Softmax``. ``ids`` is int32 when every bucket fits (half the index bytes of int64; the
    scorer casts). Batch and width are dynamic. The featurizer config, the class order and
    ``metadata`` (the training manifest and metrics) are stored in the file's metadata, so
    the artifact's hash covers all of them. :func:`predict_proba_torch` is the reference the
    file must match within 1e-5 (the parity test).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = model.eval()
    with torch.no_grad():
        model.embedding.weight[PAD].zero_()
    weights = {
        "embedding": model.embedding.weight,
        "hidden_weight": model.hidden.weight,
        "hidden_bias": model.hidden.bias,
        "out_weight": model.out.weight,
        "out_bias": model.out.bias,
    }
    initializers = [
        numpy_helper.from_array(w.detach().cpu().numpy().astype(np.float32), name)
        for name, w in weights.items()
    ]
    initializers += [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "width_axis"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
    ]
    nodes = [
        helper.make_node("Gather", ["embedding", ONNX_INPUT], ["gathered"]),
        helper.make_node("ReduceSum", ["gathered", "width_axis"], ["summed"], keepdims=0),
        helper.make_node("Cast", [ONNX_INPUT], ["present"], to=TensorProto.BOOL),
        helper.make_node("Cast", ["present"], ["present_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["present_f", "width_axis"], ["count"], keepdims=1),
        helper.make_node("Max", ["count", "one"], ["count_1"]),
        helper.make_node("Div", ["summed", "count_1"], ["pooled"]),
        helper.make_node("Gemm", ["pooled", "hidden_weight", "hidden_bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["h_relu"]),
        helper.make_node("Gemm", ["h_relu", "out_weight", "out_bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], [ONNX_OUTPUT], axis=-1),
    ]
    id_type = TensorProto.INT32 if featurizer.n_buckets <= 2**31 else TensorProto.INT64
    graph = helper.make_graph(
        nodes,
        "hashed_ngram_classifier",
        [helper.make_tensor_value_info(ONNX_INPUT, id_type, ["batch", "width"])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["batch", len(classes)])],
        initializers,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="labeltrail"
    )
    proto.ir_version = ONNX_IR_VERSION
    entries = {
        "labeltrail.featurizer": json.dumps(featurizer.to_config(), sort_keys=True),
        "labeltrail.classes": json.dumps(list(classes)),
        "labeltrail.metadata": json.dumps(metadata or {}, sort_keys=True),
    }
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(path))
    return path


def predict_proba_torch(
    model: HashedNgramClassifier, ids: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Torch-eager probabilities, ``(n, n_classes)``: the reference the ONNX file must match."""
    with torch.inference_mode():
        out = torch.softmax(model.eval()(torch.from_numpy(ids)), dim=-1)
    return out.numpy().astype(np.float32)
