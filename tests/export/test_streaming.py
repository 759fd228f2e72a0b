"""An export is read a range of comment ids at a time and written as it comes (docs/audit.md,
"A year of data on one machine"): its rows and bytes are those of one query over everything,
written at once as before, however the rows are chunked."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.client import apply_ddl, client_from, run_named
from labeltrail.config import Settings
from labeltrail.events import ExportCreated
from labeltrail.export import build
from labeltrail.export.manifest import MANIFEST, check_directory
from labeltrail.folds.export_rows import canonical_from_sql, jsonl
from tests.audit.bench_history import audit_bench, project_bench_history

AT = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """600 comments of the bench's history in 6 batches (so `labels` has parts to split on)."""
    path = tmp_path_factory.mktemp("export-stream-ch")
    client = client_from(Settings(clickhouse_dsn=f"chdb://{path}"))
    apply_ddl(client)
    client.command("SYSTEM STOP MERGES labels")  # its parts stay as inserted: ranges to split on
    project_bench_history(client, 600, batches=6)
    yield client
    client.close()


def _write(client: Client, out: Path) -> ExportCreated:
    positions = audit_bench()._export_positions(client)
    return build.write_export(client, out, schema_version="v3", as_of=AT, positions=positions)


def _files(event: ExportCreated) -> dict[str, bytes]:
    directory = Path(event.uri.removeprefix("file://"))
    return {name: (directory / name).read_bytes() for name in (*build.EXPORT_FILES, MANIFEST)}


def test_ranges_cover_every_label_once(exported: Client) -> None:
    ranges = build.comment_ranges(exported, rows_per_range=100)
    assert len(ranges) >= 3 and ranges[0][0] == "" and ranges[-1][1] == ""
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    bounds = [end for _, end in ranges[:-1]]
    assert bounds == sorted(set(bounds)) and "" not in bounds
    assert build.comment_ranges(exported, rows_per_range=10**9) == [("", "")]


def test_chunks_are_the_rows_of_one_query_written_as_before(
    exported: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The files are byte for byte what the export wrote before it streamed (one query, every
    row in memory, jsonl() and one pq.write_table), and they check against their manifest."""
    positions = audit_bench()._export_positions(exported)
    params = {
        "schema_version": "v3",
        "at": build.sql_time(AT),
        "positions": json.dumps([[p.topic, p.partition, p.offset] for p in positions]),
        "run": "",
        "from_comment": "",
        "to_comment": "",
    }
    whole = [canonical_from_sql(r, "v3") for r in run_named(exported, "export_rows", **params)]
    assert len(whole) == 600
    chunks = list(build.export_row_chunks(exported, "v3", AT, positions, rows_per_range=100))
    assert len(chunks) >= 3 and [r for c in chunks for r in c] == whole
    monkeypatch.setattr(build, "EXPORT_CHUNK_ROWS", 100)
    event = _write(exported, tmp_path / "streamed")
    files = _files(event)
    before = pa.BufferOutputStream()
    flat = [{**r, "method_params": list(r["method_params"].items())} for r in whole]
    pq.write_table(pa.Table.from_pylist(flat, schema=build._PARQUET), before)
    assert files["rows.jsonl"] == jsonl(whole)
    assert files["rows.parquet"] == before.getvalue().to_pybytes()
    assert event.content_hash == "sha256:" + hashlib.sha256(jsonl(whole)).hexdigest()
    assert event.row_count == 600
    directory = Path(event.uri.removeprefix("file://"))
    assert check_directory(directory).problems == ()
    assert not list((tmp_path / "streamed").glob(".*.partial"))  # the staging is gone


def test_the_same_bytes_however_the_rows_are_chunked(
    exported: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Row groups of a fixed size, whatever the chunks: several chunks and row groups give the
    bytes one chunk gives."""
    monkeypatch.setattr(build, "PARQUET_ROW_GROUP", 70)
    monkeypatch.setattr(build, "EXPORT_CHUNK_ROWS", 100)
    small = _files(_write(exported, tmp_path / "small"))
    monkeypatch.setattr(build, "EXPORT_CHUNK_ROWS", 10**9)
    whole = _files(_write(exported, tmp_path / "whole"))
    assert small == whole
    groups = pq.ParquetFile(pa.BufferReader(small["rows.parquet"])).metadata.num_row_groups
    assert groups == -(-600 // 70)
