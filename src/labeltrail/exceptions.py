"""The root of every error labeltrail raises on purpose."""

from __future__ import annotations

__all__ = ["ConfigurationError", "LabeltrailError"]


class LabeltrailError(Exception):
    """Base class for all labeltrail errors."""


class ConfigurationError(LabeltrailError):
    """A setting is missing or invalid."""
