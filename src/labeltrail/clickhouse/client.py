"""Open ClickHouse from the settings, apply the DDL, and run the named queries in projections/.

:func:`client_from` is the one way labeltrail opens ClickHouse. ``chdb:///<dir>`` runs the real
ClickHouse engine in this process (one process owns a directory at a time);
``http(s)://user@host:port/database`` talks to a server, with the password from
``LABELTRAIL_CLICKHOUSE_PASSWORD`` (or inline in the DSN). The same SQL serves both.

While a projector owns a chdb directory it serves the engine read-only over ClickHouse's HTTP
interface (:mod:`labeltrail.clickhouse.endpoint`) and writes the endpoint into the directory;
``client_from`` then reads through it, so every reading command works while it projects.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import urllib.request
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.binding import format_str
from clickhouse_connect.driver.client import Client
from pydantic import SecretStr

from labeltrail.config import Settings
from labeltrail.exceptions import ConfigurationError, LabeltrailError

__all__ = [
    "BULK_SETTINGS",
    "ClickHouseUnavailableError",
    "Client",
    "apply_ddl",
    "client_from",
    "command_named",
    "is_embedded",
    "named_query",
    "projections_dir",
    "reference_query",
    "run_named",
    "run_named_arrow",
    "run_named_arrow_stream",
    "shown_dsn",
    "stream_named",
    "write_named",
]

STREAM_FORMATS = {"json": "JSONEachRow", "csv": "CSVWithNames", "parquet": "Parquet"}
"""Formats ClickHouse writes itself for bulk output, by the name the CLI takes."""

_JSON_SETTINGS: dict[str, Any] = {
    # The same values as labeltrail.audit.to_jsonable gives Python rows: times as ISO-8601 UTC
    # with milliseconds ("...T00:00:20.123Z"), 64-bit counts as numbers, tuples as arrays.
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_named_tuples_as_objects": 0,
    "date_time_output_format": "iso",
}

BULK_SETTINGS: dict[str, Any] = {
    # label_as_of reads `labels` in its key order (comment_id, schema_version, event_id) through
    # FINAL and its window, so neither the window nor the ORDER BY comment_id, schema_version
    # around it sorts every row: the window's input is read in order (off by default), the
    # window runs in one stream (so its output keeps the order) and the final sort only orders
    # the rows of one comment.
    "optimize_read_in_window_order": 1,
    "query_plan_enable_multithreading_after_window_functions": 0,
    # A GROUP BY on a key prefix (export_rows groups labels by comment_id) streams in order.
    "optimize_aggregation_in_order": 1,
    # A plan that must still sort or group everything spills to disk past these, not to memory.
    "max_bytes_before_external_sort": 256 << 20,
    "max_bytes_before_external_group_by": 256 << 20,
    # ClickHouse's Parquet writer holds a row group in memory (default 1,000,000 rows).
    "output_format_parquet_row_group_size": 65_536,
    # The ceiling: a bulk query past it fails with ClickHouse's memory error instead of taking
    # the machine (docs/audit.md, "A year of data on one machine").
    "max_memory_usage": 2 << 30,
}
"""Settings of every bulk read (``stream_named``, ``write_named``, the export's chunks): bounded
memory whatever the size of the history (docs/audit.md, "A year of data on one machine")."""


class ClickHouseUnavailableError(LabeltrailError):
    """ClickHouse could not be opened or reached."""


def projections_dir() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "projections"
        if (candidate / "ddl").is_dir():
            return candidate
    raise ConfigurationError("projections/ not found next to the package")


ENDPOINT_FILE = "labeltrail-endpoint.json"
"""Where, in a chdb directory, its owning projector writes its read endpoint's URL."""


class EngineSession(Protocol):
    """One session on the embedded engine (a chdb connection): what the read endpoint uses."""

    def query(self, query: str, format: str = ..., params: Any = ...) -> Any: ...

    def send_query(self, query: str, format: str = ..., params: Any = ...) -> Any: ...

    def close(self) -> None: ...


def client_from(settings: Settings, *, dsn: str | None = None, own: bool = False) -> Client:
    """A clickhouse-connect client for the settings' ClickHouse: the one way labeltrail opens it.

    ``dsn`` names another database reached with the same credentials (a rebuild's target, a
    checksum of another directory); unset, the settings' ``clickhouse_dsn``. A server DSN gets
    the settings' password (``LABELTRAIL_CLICKHOUSE_PASSWORD``, over any inline one) and TLS
    when its scheme is ``https``; the user, database, port and client options (``?ca_cert=``,
    ``?verify=``) come from the DSN itself.

    A chdb directory that a running projector owns is read through the projector's read-only
    endpoint (found in the directory); ``own`` (the projector itself, DDL) opens the engine
    and never the endpoint.
    """
    return _open(dsn or settings.clickhouse_dsn, settings.clickhouse_password, own=own)


def chdb_directory(dsn: str) -> Path | None:
    """The directory of a ``chdb://`` DSN; None for a server DSN."""
    if not dsn.startswith("chdb://"):
        return None
    path = dsn.removeprefix("chdb://")
    if path in ("", "/"):
        raise ConfigurationError("chdb DSN needs a directory: chdb:///path/to/dir")
    return Path(path)


def engine_session(directory: Path) -> EngineSession:
    """A new session on the embedded engine of ``directory`` (this process must own it: a
    chdb engine serves one directory per process, any number of sessions)."""
    import chdb

    return cast("EngineSession", chdb.connect(os.path.realpath(directory)))


def live_endpoint(directory: Path) -> tuple[str | None, str]:
    """The URL of the read endpoint serving ``directory`` if it answers ``/ping``; else None
    and why not."""
    path = directory / ENDPOINT_FILE
    try:
        url = str(json.loads(path.read_text())["url"])
    except FileNotFoundError:
        return None, f"it left no endpoint in {path}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"its endpoint file {path} is unreadable ({exc})"
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
            if answer.read() == b"Ok.\n":
                return url, ""
    except OSError as exc:
        return None, f"its endpoint {url} (from {path}) does not answer ({exc})"
    return None, f"its endpoint {url} (from {path}) is not a ClickHouse endpoint"


def _locked(directory: Path) -> bool:
    """Whether a process holds the engine lock on ``directory`` (ClickHouse flocks its
    ``status`` file; chdb's error no longer says so). Only asked after an open failed: a new
    descriptor conflicts with this process's own lock too."""
    try:
        with (directory / "status").open("rb") as status:
            try:
                fcntl.flock(status, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(status, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _endpoint_client(url: str) -> Client:
    """A client of a projector's read endpoint (uncompressed: it is on this machine)."""
    parts = urlsplit(url)
    return clickhouse_connect.get_client(
        interface="http",
        host=parts.hostname,
        port=parts.port,
        autogenerate_session_id=False,
        compress=False,
    )


def shown_dsn(dsn: str) -> str:
    """The DSN as it may be printed: an inline password masked."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _open(dsn: str, password: SecretStr | None, *, own: bool = False) -> Client:
    """The client for ``dsn``; the password is revealed only in the call that opens it."""
    where = shown_dsn(dsn)
    directory = chdb_directory(dsn)
    try:
        if directory is not None:
            if not own and (directory / ENDPOINT_FILE).is_file():
                url, _ = live_endpoint(directory)
                if url is not None:
                    return _endpoint_client(url)
            directory.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(interface="chdb", path=str(directory))
        if dsn.startswith(("http://", "https://")):
            # clickhouse-connect takes TLS from the port (8443) unless told: the scheme says it.
            kwargs: dict[str, Any] = {"dsn": dsn, "interface": urlsplit(dsn).scheme}
            if password is not None:
                kwargs["password"] = password.get_secret_value()
            return clickhouse_connect.get_client(**kwargs)
    except Exception as exc:  # chdb's and clickhouse-connect's errors alike
        if directory is not None and ("Cannot lock file" in str(exc) or _locked(directory)):
            url, why_not = (None, "") if own else live_endpoint(directory)
            if url is not None:  # its projector started serving meanwhile
                return _endpoint_client(url)
            raise ClickHouseUnavailableError(
                f"{dsn} is open in another process (one process owns a chdb directory)"
                + (f" and {why_not}" if why_not else "")
                + "; a projector serves it to readers while it runs (docs/audit.md), "
                "otherwise stop that process or query through a server DSN"
            ) from exc
        raise ClickHouseUnavailableError(f"cannot open ClickHouse at {where}: {exc}") from exc
    raise ConfigurationError(f"unsupported ClickHouse DSN {where!r}: use chdb:/// or http(s)://")


def _statements(sql: str) -> list[str]:
    without_comments = re.sub(r"--[^\n]*", "", sql)
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def apply_ddl(client: Client) -> list[str]:
    """Apply every file in projections/ddl in order; every statement is idempotent."""
    applied: list[str] = []
    for path in sorted((projections_dir() / "ddl").glob("*.sql")):
        for statement in _statements(path.read_text()):
            client.command(statement)
        applied.append(path.name)
    _backfill_label_votes(client)
    return applied


def _backfill_label_votes(client: Client) -> None:
    """A database made before ``label_votes`` (``projections/ddl/004_label_votes.sql``) gets
    it filled once, whole, from its labels and votes; later batches fill it as they are
    written (``clickhouse.writer``)."""
    empty = client.query(
        "SELECT (SELECT count() FROM label_votes) = 0 AND "
        "(SELECT count() FROM labels WHERE run_id = '') > 0"
    ).result_rows[0][0]
    if empty:
        command_named(client, "label_votes_fill", all=True, comments=[])


@cache
def named_query(name: str) -> str:
    """The text of ``projections/queries/<name>.sql``."""
    path = projections_dir() / "queries" / f"{name}.sql"
    if not path.is_file():
        raise LabeltrailError(f"no named query {name!r}")
    return path.read_text()


def reference_query(name: str) -> str:
    """The text of ``projections/reference/<name>.sql``: an earlier formulation of a named
    query, kept as the reference its rewrite must equal and as the benchmark's peer."""
    path = projections_dir() / "reference" / f"{name}.sql"
    if not path.is_file():
        raise LabeltrailError(f"no reference query {name!r}")
    return path.read_text()


@cache
def _sendable(name: str) -> str:
    """A named query without its whole-line comments, as sent: clickhouse-connect scans the
    text in Python before every query (about 3 ms for trace_links' header), and the comments
    are for people reading the file. Only lines that are all comment are dropped, so no
    string literal is touched."""
    lines = named_query(name).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--"))


LIVE_LABELS = "run_id = ''"
"""How a named query reads the live pipeline's labels (LabelCommitted v2 carries a run id; the
labels of a labeling run, ``labeltrail relabel``, share the ``labels`` table)."""


def _sendable_with(name: str, parameters: dict[str, Any]) -> str:
    """The query as sent: given a ``run`` parameter, the labels it reads are that labeling
    run's (:data:`LIVE_LABELS` becomes ``run_id = {run:String}``, still a server-side
    parameter); without one, the live labels, as before runs existed."""
    sql = _sendable(name)
    if "run" in parameters:
        sql = sql.replace(LIVE_LABELS, "run_id = {run:String}")
    return sql


def run_named(client: Client, name: str, **parameters: Any) -> list[dict[str, Any]]:
    """Run a named query with server-side parameters (never string-built SQL)."""
    result = client.query(_sendable_with(name, parameters), parameters=parameters)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def command_named(client: Client, name: str, **parameters: Any) -> None:
    """Run a named statement (an ``INSERT ... SELECT``) with server-side parameters."""
    client.command(_sendable_with(name, parameters), parameters=parameters)


def run_named_arrow(client: Client, name: str, **parameters: Any) -> pa.Table:
    """Like :func:`run_named`, fetched as one Arrow table (strings as strings).

    For bulk reads: clickhouse-connect builds Python rows one value at a time, which for
    800,000 label rows with arrays costs several times the query itself.
    """
    return client.query_arrow(
        _sendable_with(name, parameters), parameters=parameters, use_strings=True
    )


def run_named_arrow_stream(client: Client, name: str, **parameters: Any) -> pa.Table:
    """Like :func:`run_named_arrow`, fetched as an Arrow stream: each block may carry its own
    dictionaries (a ``LowCardinality`` inside an ``Array`` read as Arrow dictionaries fails
    in the file format once two blocks' dictionaries differ); one chunk per block."""
    with client.query_arrow_stream(
        _sendable_with(name, parameters), parameters=parameters, use_strings=True
    ) as stream:
        return pa.Table.from_batches(list(stream))


def _settings_clause(settings: dict[str, Any]) -> str:
    return ", ".join(
        f"{key} = {format_str(value) if isinstance(value, str) else value}"
        for key, value in settings.items()
    )


def _bulk_query(name: str, parameters: dict[str, Any], order_by: Sequence[str]) -> str:
    """The named query wrapped for bulk output: ordered by ``order_by`` (identifiers from the
    caller's code, never user input)."""
    for column in order_by:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
            raise LabeltrailError(f"not a column name: {column!r}")
    sql = f"SELECT * FROM (\n{_sendable_with(name, parameters)}\n)"
    return f"{sql} ORDER BY {', '.join(order_by)}" if order_by else sql


def _check_format(fmt: str) -> None:
    if fmt not in STREAM_FORMATS:
        raise LabeltrailError(f"unknown output format {fmt!r}: one of {sorted(STREAM_FORMATS)}")


def _copy(stream: BinaryIO, out: BinaryIO, *, json_array: bool = False) -> int:
    """Copy ``stream`` to ``out`` a megabyte at a time; the bytes written. ``json_array``:
    the stream is JSON lines (one object per line; JSON strings hold no raw newline) and is
    written as one JSON array, laid out as ClickHouse lays out its own."""
    written = 0

    def put(data: bytes) -> None:
        nonlocal written
        out.write(data)
        written += len(data)

    tail = b""  # json_array: the last two bytes, held back (the last row's ",\n")
    try:
        if json_array:
            put(b"[\n")
        while chunk := stream.read(1 << 20):
            if not json_array:
                put(chunk)
                continue
            data = tail + chunk.replace(b"\n", b",\n")
            put(data[:-2])
            tail = data[-2:]
    finally:
        stream.close()
    if json_array:
        put(b"\n]\n" if tail else b"]\n")
    return written


def stream_named(
    client: Client,
    name: str,
    out: BinaryIO,
    *,
    fmt: str = "json",
    order_by: Sequence[str] = (),
    **parameters: Any,
) -> int:
    """Write a named query's rows to ``out`` in a format ClickHouse writes itself; the bytes.

    For bulk output (``label-as-of all``: 8,000,000 rows in a year): no Python row is built,
    the server's bytes are copied through under :data:`BULK_SETTINGS`. ``fmt`` is a key of
    :data:`STREAM_FORMATS`; ``json`` is one JSON array with the values
    :func:`labeltrail.audit.to_jsonable` gives the same rows, streamed on every engine: it
    is read as JSON lines, a block at a time, and written as one array. CSV and Parquet are
    streamed over HTTP; chdb materializes those in one buffer (a format with a header or a
    footer), so to a file use :func:`write_named`, which lets the engine write it.
    """
    _check_format(fmt)
    settings = {**BULK_SETTINGS, **(_JSON_SETTINGS if fmt == "json" else {})}
    # The settings ride in the query's own SETTINGS clause: chdb streams a result only when
    # the call carries no settings of its own (clickhouse-connect applies those with SET).
    sql = f"{_bulk_query(name, parameters, order_by)}\nSETTINGS {_settings_clause(settings)}"
    wire = "JSONEachRow" if fmt == "json" else STREAM_FORMATS[fmt]
    stream = cast("BinaryIO", client.raw_stream(sql, parameters=parameters, fmt=wire))
    return _copy(stream, out, json_array=fmt == "json")


def is_embedded(client: Client) -> bool:
    """Whether ``client`` runs the engine in this process (chdb), not a server."""
    return client.uri.startswith("chdb:")


def write_named(
    client: Client,
    name: str,
    path: Path,
    *,
    fmt: str = "json",
    order_by: Sequence[str] = (),
    **parameters: Any,
) -> int:
    """Write a named query's rows to the file ``path`` (replaced if it exists); its size.

    On chdb the engine writes the file itself (``INTO OUTFILE ... TRUNCATE``, under
    :data:`BULK_SETTINGS`): the rows go from the query to the file a block at a time (a
    Parquet row group at a time), in any format. Over HTTP the server's stream is copied
    (:func:`stream_named`). ``json`` is one JSON array, CSV has a header.
    """
    _check_format(fmt)
    if not is_embedded(client):
        with path.open("wb") as sink:
            return stream_named(client, name, sink, fmt=fmt, order_by=order_by, **parameters)
    settings = {
        **BULK_SETTINGS,
        **(_JSON_SETTINGS | {"output_format_json_array_of_rows": 1} if fmt == "json" else {}),
    }
    target = format_str(str(path.resolve()))
    client.command(
        f"{_bulk_query(name, parameters, order_by)}\n"
        f"INTO OUTFILE {target} TRUNCATE COMPRESSION 'none' FORMAT {STREAM_FORMATS[fmt]}\n"
        f"SETTINGS {_settings_clause(settings)}",
        parameters=parameters,
    )
    return path.stat().st_size
