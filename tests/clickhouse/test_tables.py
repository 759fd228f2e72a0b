"""The typed tables: DDL and Arrow specs in step, idempotent inserts, earliest copy kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.tables import ENVELOPE_COLUMNS, RAW_TABLE, TABLES
from labeltrail.clickhouse.writer import BatchWriter, LogRecord, table_checksums
from labeltrail.config import Settings
from labeltrail.events import EVENT_TYPES, encode
from tests.events.samples import sample_event


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """A fresh chdb database; closed after the test (one chdb path per process at a time)."""
    ch = client_from(Settings(clickhouse_dsn=f"chdb://{tmp_path}"))
    apply_ddl(ch)
    yield ch
    ch.close()


def test_every_event_type_has_one_typed_table() -> None:
    assert sorted(t.event_type for t in TABLES) == sorted(EVENT_TYPES)


def test_ddl_columns_match_the_arrow_specs(client: Client) -> None:
    for table in (RAW_TABLE, *TABLES):
        described = [row[0] for row in client.query(f"DESCRIBE TABLE {table.name}").result_rows]
        expected = [c.name for c in (*ENVELOPE_COLUMNS, *table.columns)]
        assert described == expected, table.name


def test_replayed_batches_leave_the_same_contents(client: Client) -> None:
    writer = BatchWriter(client, "t")
    records = [
        LogRecord(f"t.{name}", 0, offset, encode(sample_event(name)))
        for offset, name in enumerate(EVENT_TYPES)
    ]
    records.append(LogRecord("t.votes", 1, 0, b"not avro"))
    first = writer.project(records)
    assert first.projected == len(EVENT_TYPES)
    assert [r.offset for r, _ in first.rejected] == [0]
    once = table_checksums(client)
    assert all(n == 1 for t, (n, _) in once.items() if t != "events")
    assert once["events"][0] == len(EVENT_TYPES)
    writer.project(records)  # a crash before the positions were recorded replays the batch
    assert table_checksums(client) == once
    raw = client.query("SELECT count() FROM events").result_rows[0][0]
    assert raw == 2 * len(EVENT_TYPES)  # the copies exist; FINAL reads one
    assert writer.stored_positions()[("t.votes", 1)] == 1


def test_the_earliest_copy_of_an_event_wins(client: Client) -> None:
    writer = BatchWriter(client, "t")
    vote = encode(sample_event("VoteCast"))
    writer.project([LogRecord("t.votes", 0, 9, vote)])
    writer.project([LogRecord("t.votes", 0, 4, vote)])  # the same event, earlier on the log
    rows = client.query("SELECT offset FROM votes FINAL").result_rows
    assert rows == [(4,)]
