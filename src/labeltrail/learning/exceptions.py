"""Errors raised by the learning package."""

from __future__ import annotations

from labeltrail.exceptions import LabeltrailError

__all__ = ["ArtifactError", "LearningError", "NotFittedError"]


class LearningError(LabeltrailError):
    """Base class for errors of the learning package."""


class NotFittedError(LearningError, AttributeError):
    """An estimator was used before ``fit``."""


class ArtifactError(LearningError):
    """A model artifact is missing, unreadable or does not match its published hash."""
