"""The full trace of a comment: its own events, then what they caused (two named queries),
each part in causal order: an event never before the event that caused it."""

from __future__ import annotations

import datetime as dt
import heapq
import json
from collections.abc import Sequence
from typing import Any

from labeltrail.clickhouse.client import Client, run_named

__all__ = ["causal_order", "full_trace", "link_parameters"]

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


def causal_order(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every cause before its effects (``causation_id`` chains), else in the order
    given (the queries' time order).

    Event time alone can put an effect first: the stages stamp an expert task, the request
    that caused it and the vote behind both with the same instant, and the type order that
    breaks such ties cannot know which caused which. A stable topological sort: at each step,
    the earliest row (in the given order) whose cause, if among the rows, is already placed.
    """
    position = {row["event_id"]: i for i, row in enumerate(rows)}
    waiting: dict[int, list[int]] = {}
    ready: list[int] = []
    for i, row in enumerate(rows):
        cause = position.get(row.get("causation_id") or "")
        if cause is None or cause == i:
            ready.append(i)
        else:
            waiting.setdefault(cause, []).append(i)
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for effect in waiting.pop(i, []):
            heapq.heappush(ready, effect)
    placed = set(order)
    order += [i for i in range(len(rows)) if i not in placed]  # a causation cycle: as given
    return [rows[i] for i in order]


def full_trace(client: Client, comment_id: str) -> list[dict[str, Any]]:
    """``trace`` rows followed by the ``trace_links`` rows they lead to, each in causal order."""
    rows = causal_order(run_named(client, "trace", comment_id=comment_id))
    if not rows:
        return rows
    return rows + causal_order(run_named(client, "trace_links", **link_parameters(rows)))
