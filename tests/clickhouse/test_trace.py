"""trace and trace_links keep their meaning after their rewrite for speed.

The earlier formulations are kept below as the reference (``trace`` read ``events FINAL``;
``trace_links`` named its link sets as CTEs used twice). Both are run on a history with every
kind of link (reliability caused by the comment and by a window over its votes, exports that
include or exclude its label, models trained on them), a replayed batch (the same events at the
same offsets) and re-emitted copies at later offsets (the earliest copy counts), and must give
the same rows, comment by comment.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.client import apply_ddl, client_from, reference_query, run_named
from labeltrail.clickhouse.trace import causal_order, full_trace, link_parameters
from labeltrail.clickhouse.writer import BatchWriter, LogRecord
from labeltrail.config import Settings
from labeltrail.events import (
    Event,
    ExportCreated,
    LabelCommitted,
    LogPosition,
    ModelPublished,
    encode,
)
from tests.audit.history import adjudicated_comment, project
from tests.folds.helpers import suffix_topic

REFERENCE_TRACE = reference_query("trace_final")

REFERENCE_LINKS = reference_query("trace_links_cte")

LATER = 100_000
"""Offset of the re-emitted copies: far beyond every first copy."""


def _rows(client: Client, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _reference(client: Client, comment: str) -> list[dict[str, Any]]:
    """The reference queries' rows, put in causal order as full_trace puts the named ones."""
    rows = causal_order(_rows(client, REFERENCE_TRACE, comment_id=comment))
    if not rows:
        return rows
    return rows + causal_order(_rows(client, REFERENCE_LINKS, **link_parameters(rows)))


def _label_offsets(history: list[Event]) -> tuple[str, dict[str, int]]:
    """The labels topic and each label's offset there, counted as project() counts them."""
    counts: dict[str, int] = {}
    offsets: dict[str, int] = {}
    topic = ""
    for event in history:
        name = "t." + suffix_topic(event)
        if isinstance(event, LabelCommitted):
            topic = name
            offsets.setdefault(event.event_id, counts.get(name, 0))
        counts[name] = counts.get(name, 0) + 1
    return topic, offsets


def _exports(labels: list[LabelCommitted], topic: str, offsets: dict[str, int]) -> list[Event]:
    """Exports around the labels' first copies, and models trained on them."""
    first, last = offsets[labels[0].event_id], offsets[labels[-1].event_id]
    late = max(e.envelope.recorded_at for e in labels) + dt.timedelta(days=1)
    specs = {
        "all": ("v3", late, last + 1),  # every label
        "first-only": ("v3", late, first + 1),  # the first label, not a re-emitted copy
        "too-early": ("v3", labels[0].envelope.recorded_at - dt.timedelta(seconds=1), last + 1),
        "other-version": ("v9", late, last + 1),
    }
    out: list[Event] = []
    for name, (version, as_of, end) in specs.items():
        export = ExportCreated.create(
            producer="tests.export",
            id_parts=("export", name),
            occurred_at=late,
            export_id=f"export-{name}",
            schema_version=version,
            as_of=as_of,
            log_positions=[LogPosition.at(topic, 0, end)],
            aggregator="latest-committed-label",
            content_hash=f"sha256:{name}",
            row_count=1,
            uri=f"file:///exports/{name}",
        )
        model = ModelPublished.create(
            producer="tests.train",
            id_parts=("model", name),
            occurred_at=late + dt.timedelta(hours=1),
            model_version=f"m-{name}",
            artifact_uri=f"file:///models/{name}.onnx",
            artifact_sha256="00",
            classes=["non-toxic", "mild", "harassment", "hate", "threats"],
            export_id=export.export_id,
            export_hash=export.content_hash,
        )
        out += [export, model]
    return out


@pytest.fixture(scope="module")
def trace_db(tmp_path_factory: pytest.TempPathFactory, history: list[Event]) -> Iterator[Client]:
    path: Path = tmp_path_factory.mktemp("trace-ch")
    client = client_from(Settings(clickhouse_dsn=f"chdb://{path}"))
    apply_ddl(client)
    project(client, history)
    labels = [e for e in history if isinstance(e, LabelCommitted)]
    topic, offsets = _label_offsets(history)
    extra = _exports(labels, topic, offsets)
    project(client, extra, consumer="tests-exports")
    project(client, history[:300], consumer="tests-replay")  # same events, same offsets
    again = [
        LogRecord(topic, 0, LATER + i, encode(e))
        for i, e in enumerate(labels[:3])  # re-emitted later: the earliest copy counts
    ]
    BatchWriter(client, "tests-reemit").project(again)
    yield client
    client.close()  # chdb serves one path per process at a time


def test_trace_rows_equal_the_reference(trace_db: Client, history: list[Event]) -> None:
    comments = list(dict.fromkeys(e.comment_id for e in history if isinstance(e, LabelCommitted)))
    links: dict[str, int] = {}
    for comment in comments:
        got = full_trace(trace_db, comment)
        assert got == _reference(trace_db, comment), comment
        for row in got:
            if row["link"]:
                kind = row["link"].split(" export ")[0]
                links[kind] = links.get(kind, 0) + 1
    # the history exercises every kind of link, so the comparison above is not vacuous
    assert {
        "caused by this comment",
        "reliability window covers its votes",
        "export includes its label",
        "trained on",
    } <= set(links)


def test_first_copy_decides_and_exports_filter(trace_db: Client, history: list[Event]) -> None:
    labels = [e for e in history if isinstance(e, LabelCommitted)]
    first = full_trace(trace_db, labels[0].comment_id)
    exports = {json_id(r) for r in first if r["event_type"] == "ExportCreated"}
    assert exports == {"export-all", "export-first-only"}  # not too early, not v9
    models = {r["link"] for r in first if r["event_type"] == "ModelPublished"}
    assert models == {"trained on export export-all", "trained on export export-first-only"}
    own = [r for r in first if r["event_id"] == labels[0].event_id]
    assert len(own) == 1 and own[0]["offset"] < LATER  # the earliest copy, once
    later = full_trace(trace_db, labels[-1].comment_id)
    assert {json_id(r) for r in later if r["event_type"] == "ExportCreated"} == {"export-all"}


def json_id(row: dict[str, Any]) -> str:
    return str(json.loads(row["payload"])["export_id"])


def test_trace_of_an_unknown_comment_is_empty(trace_db: Client, history: list[Event]) -> None:
    assert full_trace(trace_db, "no-such-comment") == []
    assert run_named(trace_db, "trace", comment_id=adjudicated_comment(history))


def test_a_cause_comes_before_its_effects(trace_db: Client, history: list[Event]) -> None:
    """The expert's task is caused by the adjudication request, which is caused by a consensus
    update, caused by a vote, all at one instant: the trace lists them in that order."""
    comments = list(dict.fromkeys(e.comment_id for e in history if isinstance(e, LabelCommitted)))
    checked = 0
    for comment in comments:
        rows = full_trace(trace_db, comment)
        at = {row["event_id"]: i for i, row in enumerate(rows)}
        for i, row in enumerate(rows):
            cause = at.get(row["causation_id"])
            if cause is not None:
                assert cause < i, (comment, row["event_type"], rows[cause]["event_type"])
                checked += 1
        kinds = [r["event_type"] for r in rows]
        if "AdjudicationRequested" in kinds:
            expert = next(
                i
                for i, r in enumerate(rows)
                if r["event_type"] == "TaskCreated" and json.loads(r["payload"])["kind"] == "expert"
            )
            assert kinds.index("AdjudicationRequested") < expert, comment
    assert checked > 100


def test_causal_order_keeps_time_order_otherwise() -> None:
    rows = [
        {"event_id": "task", "causation_id": "request"},
        {"event_id": "vote", "causation_id": ""},
        {"event_id": "request", "causation_id": "vote"},
        {"event_id": "other", "causation_id": "elsewhere"},
        {"event_id": "loop-a", "causation_id": "loop-b"},
        {"event_id": "loop-b", "causation_id": "loop-a"},
    ]
    assert [r["event_id"] for r in causal_order(rows)] == [
        "vote",
        "request",
        "task",
        "other",
        "loop-a",
        "loop-b",
    ]
