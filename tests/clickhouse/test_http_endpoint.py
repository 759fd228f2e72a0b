"""Audit while it runs: readers query a chdb directory through its projector's read endpoint.

``labeltrail projections run --follow`` runs as its own process on the real broker and owns a
chdb directory while events are still being produced. Meanwhile the ``audit`` commands (their
own processes), clickhouse-connect (through ``client_from`` and with a plain ``http://`` DSN)
and a bare HTTP request read it: every answer is a whole-batch snapshot (the raw log, the typed
tables and the recorded positions agree), counts never go down, a comment's trace only grows and
ends with every event of the comment; writes and DDL are refused and change nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import clickhouse_connect
import pyarrow.parquet as pq
import pytest

from labeltrail.clickhouse.client import ENDPOINT_FILE, client_from, live_endpoint
from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from tests.audit.history import simulated
from tests.unavailable import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

SNAPSHOT = """
SELECT
    (SELECT count() FROM events) AS events,
    (SELECT sum(o) FROM (SELECT max(next_offset) AS o FROM consumer_positions
                         GROUP BY topic, partition)) AS covered,
    (SELECT countIf(event_type = 'VoteCast') FROM events) AS vote_events,
    (SELECT count() FROM votes) AS votes,
    (SELECT countIf(event_type = 'CommentPosted') FROM events) AS comment_events,
    (SELECT count() FROM comments) AS comments
"""
"""One query, so one snapshot: the raw log, two typed tables and the positions."""


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "labeltrail"
    if not script.is_file():
        unavailable(f"the labeltrail entry point is not installed next to {sys.executable}")
    return [str(script)]


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_CLICKHOUSE_DSN": settings.clickhouse_dsn,
        **extra,
    }


def _labeltrail(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_cli(), *args],
        cwd=ROOT,
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _start_projector(settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    args = [*_cli(), "projections", "run", "--follow", "--batch-size", "40"]
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=_env(settings, **extra), stdout=out, stderr=out)


def _wait_for_endpoint(directory: Path, proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"projector exited: {log.read_text()[-3000:]}"
        url, _ = live_endpoint(directory)
        if url is not None:
            return url
        assert time.monotonic() < deadline, f"no endpoint: {log.read_text()[-3000:]}"
        time.sleep(0.1)


def _http(url: str, query: str, *, method: str = "POST") -> tuple[int, str]:
    if method == "GET":
        request = urllib.request.Request(f"{url}/?{urllib.parse.urlencode({'query': query})}")
    else:
        request = urllib.request.Request(f"{url}/", data=query.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class _Stream:
    """Produces a simulated history in small chunks from a thread, while the test reads."""

    def __init__(self, settings: Settings, events: list[Event], chunk: int = 150) -> None:
        self.events, self.chunk = events, chunk
        self.sent = 0
        self.error: BaseException | None = None
        self._producer = EventProducer(settings)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for start in range(0, len(self.events), self.chunk):
                for event in self.events[start : start + self.chunk]:
                    self._producer.send(event)
                self._producer.flush()
                self.sent = min(start + self.chunk, len(self.events))
                time.sleep(0.05)
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self._thread.join(300)
        assert self.error is None, self.error
        assert self.sent == len(self.events)


def _trace_ids(settings: Settings, comment: str) -> set[str]:
    done = _labeltrail(settings, "audit", "trace", comment, "--json")
    assert done.returncode == 0, done.stderr
    return {row["event_id"] for row in json.loads(done.stdout)}


def test_readers_query_while_the_projector_projects(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings.model_copy(
        update={"clickhouse_dsn": f"chdb://{tmp_path / 'clickhouse'}"}
    )
    directory = Path(settings.clickhouse_dsn.removeprefix("chdb://"))
    ensure_topics(settings)
    events = simulated(160, seed=23)
    comment = next(e.comment_id for e in events if type(e).__name__ == "CommentPosted")  # type: ignore[attr-defined]
    expected_trace = {e.event_id for e in events if getattr(e, "comment_id", None) == comment}
    log = tmp_path / "projector.log"

    proc = _start_projector(settings, log)
    try:
        url = _wait_for_endpoint(directory, proc, log)
        shown = _labeltrail(settings, "projections", "endpoint")
        assert (shown.returncode, shown.stdout.strip()) == (0, url), shown.stderr
        stream = _Stream(settings, events)

        client = client_from(settings)  # the directory is owned: the endpoint, by itself
        assert client.__class__.__name__ == "HttpClient"
        plain = clickhouse_connect.get_client(dsn=url)  # any clickhouse-connect client
        server_dsn = client_from(settings, dsn=url)  # an http:// DSN in the settings' way

        seen: list[dict[str, Any]] = []
        traces: list[set[str]] = []
        label_files = 0
        deadline = time.monotonic() + 300
        while True:
            for reader in (client, plain, server_dsn):
                row = dict(zip(*_columns_and_row(reader.query(SNAPSHOT)), strict=True))
                # A whole-batch snapshot: the raw log, the typed tables and the positions
                # written by the same batches (no batch half in).
                assert row["events"] == row["covered"], row
                assert row["votes"] == row["vote_events"], row
                assert row["comments"] == row["comment_events"], row
                if seen:
                    assert row["events"] >= seen[-1]["events"], (row, seen[-1])
                seen.append(row)
            status, body = _http(url, "SELECT count() AS n FROM events FORMAT JSON")
            assert status == 200, body
            assert json.loads(body)["data"][0]["n"] >= seen[-1]["events"]
            if seen[-1]["comment_events"] and len(traces) < 3:
                traces.append(_trace_ids(settings, comment))
            if label_files < 1 and seen[-1]["events"] > len(events) // 3:
                out = tmp_path / "labels.parquet"
                done = _labeltrail(settings, "audit", "label-as-of", "all", "--out", str(out))
                assert done.returncode == 0, done.stderr
                pq.read_table(out)  # whole, readable
                label_files += 1
            if stream.sent == len(events) and seen[-1]["events"] == len(events):
                break
            assert proc.poll() is None, log.read_text()[-3000:]
            assert stream.error is None, stream.error
            assert time.monotonic() < deadline, (seen[-1], stream.sent, len(events))
        stream.join()

        # It read while the projector projected, not only at the end.
        assert len({r["events"] for r in seen}) >= 3, [r["events"] for r in seen]
        assert label_files == 1
        # A comment's trace only grows, and once projected it has every event of the comment.
        traces.append(_trace_ids(settings, comment))
        for earlier, later in itertools.pairwise(traces):
            assert earlier <= later
        assert expected_trace <= traces[-1]

        # Read-only: writes and DDL are refused, through every path, and change nothing.
        for statement in (
            "INSERT INTO events (event_id) VALUES ('forged')",
            "DROP TABLE votes",
            "CREATE TABLE forged (a UInt8) ENGINE = MergeTree ORDER BY a",
            "ALTER TABLE labels DELETE WHERE 1",
            "SELECT * FROM file('/etc/hostname', 'LineAsString')",
            "INSERT INTO FUNCTION file('forged.csv', 'CSV') SELECT 1",
            "SELECT file('/etc/hostname')",
            "SELECT 1 INTO OUTFILE 'forged.txt'",
            "KILL QUERY WHERE 1",
            "SET readonly = 0",
        ):
            status, body = _http(url, statement)
            assert status == 403 and "readonly" in body.lower(), (statement, status, body)
            with pytest.raises(Exception, match=r"(?i)readonly"):
                plain.command(statement)
        # A result is sent as the engine streams it; a failure after the first blocks still
        # reaches the client as ClickHouse's error, not as a short result.
        big = client.query("SELECT number FROM numbers(2000000)")
        assert len(big.result_rows) == 2_000_000
        with pytest.raises(Exception, match="boom"):
            _ = client.query(
                "SELECT throwIf(number = 1500000, 'boom') FROM numbers(2000000)"
            ).result_rows
        status, body = _http(url, "SELECT 1; DROP TABLE votes")
        assert status == 400 and "Multi-statements are not allowed" in body, body
        status, body = _http(url, "SELECT 1", method="GET")
        assert (status, body) == (200, "1\n")
        final = dict(zip(*_columns_and_row(client.query(SNAPSHOT)), strict=True))
        assert final == seen[-1]
        tables = client.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
        assert {"votes", "events", "labels"} <= {r[0] for r in tables.result_rows}
        assert "forged" not in {r[0] for r in tables.result_rows}
        for c in (client, plain, server_dsn):
            c.close()
    finally:
        proc.terminate()
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "read-only at http://127.0.0.1:" in log.read_text()
    assert not (directory / ENDPOINT_FILE).exists()  # removed when it stops serving

    # The directory is free again: opened in this process, it holds what was read.
    owner = client_from(settings)
    try:
        assert owner.__class__.__name__ != "HttpClient"
        again = dict(zip(*_columns_and_row(owner.query(SNAPSHOT)), strict=True))
        assert again == seen[-1]
    finally:
        owner.close()


def _columns_and_row(result: Any) -> tuple[list[str], list[Any]]:
    return list(result.column_names), list(result.result_rows[0])


def test_a_taken_port_or_an_owner_without_endpoint_is_a_clear_error(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    log = tmp_path / "projector.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = _start_projector(settings, log, LABELTRAIL_CLICKHOUSE_HTTP_PORT=str(port))
        assert proc.wait(120) == 1
    text = log.read_text()
    assert f"127.0.0.1:{port}" in text and "already in use" in text, text
    assert "LABELTRAIL_CLICKHOUSE_HTTP_PORT" in text and "Traceback" not in text, text

    # A process that owns the directory but serves no endpoint: readers say so.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from labeltrail.clickhouse.client import client_from; "
            "from labeltrail.config import Settings; "
            "c = client_from(Settings(), own=True); c.query('SELECT 1'); "
            "print('owned', flush=True); time.sleep(120)",
        ],
        cwd=ROOT,
        env=_env(settings),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "owned"
        done = _labeltrail(settings, "audit", "trace", "c-1")
        assert done.returncode == 1
        message = " ".join(done.stderr.split())
        assert "open in another process" in message, message
        assert "left no endpoint" in message, message
        assert "Traceback" not in done.stderr
    finally:
        holder.kill()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
