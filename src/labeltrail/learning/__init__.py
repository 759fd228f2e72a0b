"""The closed loop: featurization, soft-label training, ONNX scoring, active learning, weak
supervision and a label model across sources.

Pure modules (numpy/scipy only; a test enforces it): :mod:`~.features`, :mod:`~.data`,
:mod:`~.metrics`, :mod:`~.publish`, :mod:`~.prelabel`, :mod:`~.active`, :mod:`~.lf`,
:mod:`~.lf_analysis`, :mod:`~.label_model`, :mod:`~.multisource`. Edges: :mod:`~.torch_model`
and :mod:`~.training` (torch, the ``train`` extra), :mod:`~.scoring` and :mod:`~.scorer_fold`
(onnxruntime, the ``score`` extra), :mod:`~.scenario` (both). This package root imports only
the pure names, so ``import labeltrail.learning`` never loads torch or onnxruntime.
"""

from __future__ import annotations

from labeltrail.exceptions import ArtifactError, LearningError, NotFittedError
from labeltrail.learning.data import TrainingSet, training_set_from_labels
from labeltrail.learning.features import PAD, HashingFeaturizer
from labeltrail.learning.metrics import SliceMetrics, evaluate_by_slice, flatten_metrics
from labeltrail.learning.prelabel import (
    DraftAcceptance,
    Prelabel,
    auto_accept_label,
    prelabel_decision,
    route_for,
)

__all__ = [
    "PAD",
    "ArtifactError",
    "DraftAcceptance",
    "HashingFeaturizer",
    "LearningError",
    "NotFittedError",
    "Prelabel",
    "SliceMetrics",
    "TrainingSet",
    "auto_accept_label",
    "evaluate_by_slice",
    "flatten_metrics",
    "prelabel_decision",
    "route_for",
    "training_set_from_labels",
]
