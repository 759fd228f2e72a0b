"""Versioned, reproducible training exports: created from ClickHouse, verified from the log."""

from labeltrail.folds.export_rows import AGGREGATOR, AGGREGATOR_PARAMS, ExportFold, content_hash

__all__ = ["AGGREGATOR", "AGGREGATOR_PARAMS", "ExportFold", "content_hash"]
