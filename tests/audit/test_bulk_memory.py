"""Bulk reads run in bounded memory (docs/audit.md, "A year of data on one machine").

``label-as-of all`` reads ``labels`` in its key order through FINAL and the window, so no step
sorts every row; its JSON streams a block at a time (chdb materializes a result whose call
carries settings, so the settings ride in the query); ``--out`` is written by the engine; and
every bulk query runs under the ClickHouse memory ceiling of ``BULK_SETTINGS``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from labeltrail.cli.audit import LABEL_ORDER
from labeltrail.clickhouse import client as ch
from labeltrail.config import Settings
from tests.audit.bench_history import project_bench_history

COMMENTS, COPIES = 400, 50
LABELS = COMMENTS * COPIES
PARAMS = {
    "comment_id": "",
    "at": "2100-01-01 00:00:00.000",
    "schema_version": "",
    "time": "recorded",
}


@pytest.fixture(scope="module")
def cloned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """20,000 labels (the bench's history, cloned 50 times inside the engine)."""
    path = tmp_path_factory.mktemp("bulk-ch")
    client = ch.client_from(Settings(clickhouse_dsn=f"chdb://{path}"))
    ch.apply_ddl(client)
    project_bench_history(client, COMMENTS, batches=4, copies=COPIES)
    yield client
    client.close()


def _pipeline(client: Client, settings: dict[str, Any]) -> str:
    sql = ch._bulk_query("label_as_of", PARAMS, LABEL_ORDER)
    clause = f"\nSETTINGS {ch._settings_clause(settings)}" if settings else ""
    raw = client.raw_query(f"EXPLAIN PIPELINE {sql}{clause}", parameters=PARAMS, fmt="TSVRaw")
    return raw.decode()


def test_no_step_sorts_every_label(cloned: Client) -> None:
    """Under the bulk settings the plan reads in key order and only finishes the sort within a
    comment; the same query as it ran before sorts everything twice (window, then ORDER BY)."""
    bulk = _pipeline(cloned, ch.BULK_SETTINGS)
    assert "MergeSortingTransform" not in bulk, bulk
    assert "FinishSortingTransform" in bulk and "InOrder" in bulk, bulk
    assert _pipeline(cloned, {}).count("MergeSortingTransform") == 2  # what it was


def test_json_streams_in_blocks(cloned: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """chdb hands back a stream (not one buffer) and the blocks join into one JSON array with
    every label, sorted."""
    kinds: list[str] = []
    raw_stream = cloned.raw_stream

    def spy(*args: Any, **kwargs: Any) -> Any:
        stream = raw_stream(*args, **kwargs)
        kinds.append(type(stream).__name__)
        return stream

    monkeypatch.setattr(cloned, "raw_stream", spy)
    out = io.BytesIO()
    written = ch.stream_named(cloned, "label_as_of", out, order_by=LABEL_ORDER, **PARAMS)
    assert kinds and kinds != ["BytesIO"], kinds  # BytesIO: materialized in one buffer
    rows = json.loads(out.getvalue())
    assert written == len(out.getvalue()) and len(rows) == LABELS
    keys = [(r["comment_id"], r["schema_version"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == LABELS


def test_every_label_under_a_low_memory_ceiling(
    cloned: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """label-as-of all to Parquet completes under a 384 MB ceiling, sorted, one row per label;
    the ceiling is the engine's own (a tiny one fails the query: it does reach the engine)."""
    path = tmp_path / "labels.parquet"
    monkeypatch.setitem(ch.BULK_SETTINGS, "max_memory_usage", 384 << 20)
    ch.write_named(cloned, "label_as_of", path, fmt="parquet", order_by=LABEL_ORDER, **PARAMS)
    table = pq.read_table(path, columns=["comment_id", "schema_version"])
    ids = table.column("comment_id").to_pylist()
    assert len(ids) == LABELS and ids == sorted(ids)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1  # 65,536 rows per group
    monkeypatch.setitem(ch.BULK_SETTINGS, "max_memory_usage", 4 << 20)
    with pytest.raises(DatabaseError, match="memory limit"):
        ch.write_named(cloned, "label_as_of", path, fmt="json", order_by=LABEL_ORDER, **PARAMS)
