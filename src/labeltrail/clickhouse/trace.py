"""The full trace of a comment: its own events, then what they caused (two named queries)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.client import run_named

__all__ = ["full_trace", "link_parameters"]

_EPOCH = dt.datetime(1970, 1, 1)


def _millis(value: dt.datetime) -> int:
    naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return (naive - _EPOCH) // dt.timedelta(milliseconds=1)


def link_parameters(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``trace_links`` parameters, from a comment's ``trace`` rows."""
    voting = [r for r in rows if r["event_type"] in ("VoteCast", "AdjudicationRecorded")]
    times = [r["occurred_at"] for r in voting] or [_EPOCH]
    labels = [
        [r["schema_version"], _millis(r["recorded_at"]), r["topic"], r["partition"], r["offset"]]
        for r in rows
        if r["event_type"] == "LabelCommitted"
    ]
    return {
        "event_ids": [r["event_id"] for r in rows],
        "annotators": sorted({r["annotator_id"] for r in voting if r["annotator_id"]}),
        "first_at": min(times),
        "last_at": max(times),
        "labels": json.dumps(labels),
    }


def full_trace(client: Client, comment_id: str) -> list[dict[str, Any]]:
    """``trace`` rows followed by the ``trace_links`` rows they lead to."""
    rows = run_named(client, "trace", comment_id=comment_id)
    if not rows:
        return rows
    return rows + run_named(client, "trace_links", **link_parameters(rows))
