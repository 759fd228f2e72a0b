"""Errors raised by the quality core."""

from __future__ import annotations

from labeltrail.exceptions import LabeltrailError

__all__ = ["ConvergenceWarning", "NotFittedError", "QualityError", "VoteFormatError"]


class QualityError(LabeltrailError):
    """Base class for errors of the quality core."""


class VoteFormatError(QualityError, ValueError):
    """Votes, gold labels or ratings are malformed (shape, dtype, range or missing values)."""


class NotFittedError(QualityError, AttributeError):
    """An estimator was used before ``fit``."""


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before reaching ``tol``."""
