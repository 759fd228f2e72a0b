"""labeltrail: an event-sourced labeling pipeline for content moderation."""

from labeltrail.exceptions import LabeltrailError

__all__ = ["LabeltrailError", "__version__"]

__version__ = "0.1.0"
