"""The read endpoint on a real embedded engine, in process: what ClickHouse's HTTP interface
takes, and what a read-only endpoint refuses (the engine parses every statement first)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from urllib3 import encode_multipart_formdata

from labeltrail.clickhouse.client import Client, apply_ddl, client_from, engine_session
from labeltrail.clickhouse.endpoint import ReadEndpoint
from labeltrail.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Client]]:
    """An engine on a fresh directory with the DDL applied, served; its URL and owner."""
    directory = tmp_path / "clickhouse"
    owner = client_from(Settings(clickhouse_dsn=f"chdb://{directory}"), own=True)
    apply_ddl(owner)
    owner.command(
        "INSERT INTO consumer_positions (consumer, topic, partition, next_offset) "
        "VALUES ('c', 't', 0, 7)"
    )
    endpoint = ReadEndpoint(
        lambda: engine_session(directory),
        threading.Lock(),
        host="127.0.0.1",
        port=0,
        directory=directory,
    )
    try:
        yield endpoint.url, owner
    finally:
        endpoint.close()
        owner.close()


def _post(
    url: str, body: bytes, query: dict[str, str] | None = None, **headers: str
) -> tuple[int, str]:
    target = f"{url}/?{urllib.parse.urlencode(query or {})}"
    request = urllib.request.Request(target, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT next_offset FROM consumer_positions", "7\n"),
        ("SELECT count() FROM numbers(10)", "10\n"),
        ("EXISTS TABLE votes", "1\n"),
        ("SHOW TABLES LIKE 'vote%'", "votes\n"),
        ("SELECT sum(zero) FROM (SELECT * FROM zeros(3)) SETTINGS max_threads = 1", "0\n"),
    ],
)
def test_reads_run(served: tuple[str, Client], sql: str, expected: str) -> None:
    url, _ = served
    assert _post(url, sql.encode()) == (200, expected)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO consumer_positions (consumer) VALUES ('x')",
        "TRUNCATE TABLE consumer_positions",
        "DROP TABLE votes",
        "CREATE TEMPORARY TABLE x (a UInt8)",
        "ALTER TABLE votes DELETE WHERE 1",
        "OPTIMIZE TABLE votes FINAL",
        "SYSTEM STOP MERGES",
        "SET max_threads = 1",
        "SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'a String')",
        "SELECT * FROM remote('127.0.0.1', system.one)",
        "SELECT * FROM numbers(1) JOIN file('/etc/hostname', 'LineAsString') ON 1",
        "WITH f AS (SELECT * FROM file('/etc/passwd', 'LineAsString')) SELECT * FROM f",
        "SELECT length(file('/etc/hostname'))",
        "SELECT 1 INTO OUTFILE 'x.txt'",
        "INSERT INTO FUNCTION file('x.csv', 'CSV') SELECT 1",
        "KILL QUERY WHERE 1",
    ],
)
def test_everything_but_a_read_is_refused(served: tuple[str, Client], sql: str) -> None:
    url, owner = served
    status, body = _post(url, sql.encode())
    assert status == 403 and "(READONLY)" in body, (status, body)
    assert owner.query("SELECT count() FROM consumer_positions").result_rows == [(1,)]


def test_what_a_clickhouse_server_takes(served: tuple[str, Client]) -> None:
    url, _ = served
    with urllib.request.urlopen(f"{url}/ping", timeout=10) as answer:
        assert answer.read() == b"Ok.\n"
    # The query in the URL, parameters, a default format, the database.
    query = {
        "query": "SELECT {n:UInt8} + 1 AS x, currentDatabase() AS db",
        "param_n": "41",
        "default_format": "JSONEachRow",
        "database": "system",
    }
    with urllib.request.urlopen(f"{url}/?{urllib.parse.urlencode(query)}", timeout=10) as answer:
        assert answer.read() == b'{"x":42,"db":"system"}\n'
        assert answer.headers["X-ClickHouse-Format"] == "JSONEachRow"
    # A multipart form, as clickhouse-connect sends long parameters.
    body, content_type = encode_multipart_formdata(
        {"query": "SELECT {s:String} AS s", "param_s": "a\\tb"}
    )
    assert _post(url, body, **{"Content-Type": content_type}) == (200, "a\\tb\n")
    # ClickHouse's errors, with their codes.
    status, body = _post(url, b"SELEC 1")
    assert status == 400 and body.startswith("Code: 62.")
    status, body = _post(url, b"SELECT * FROM no_such_table")
    assert status == 404 and body.startswith("Code: 60.")
    status, body = _post(url, b"SELECT 1; SELECT 2")
    assert status == 400 and "Multi-statements are not allowed" in body
