"""The pure learning algorithms: featurization, training sets, metrics, pre-labels, active
learning, labeling functions and label models, with no client, torch or onnxruntime.

The stage folds that use them are in :mod:`labeltrail.folds` (scorer, trainer), the torch and
onnxruntime edges in :mod:`labeltrail.ml`, the day-30 scenarios in :mod:`labeltrail.sim`; the
import-linter contracts in ``pyproject.toml`` keep it that way.
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
