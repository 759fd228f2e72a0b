"""Serve the projector's embedded engine over ClickHouse's HTTP interface, read-only.

A chdb directory is owned by one process: while ``labeltrail projections run`` projects, no
other process can open it. So the projector serves its own engine the way a ClickHouse server
does (``GET /ping``; ``GET|POST /?query=...`` with ``database``, ``default_format``,
``param_<name>``, settings as parameters, the query in the body or a form), and every reader,
``labeltrail audit``/``report``/``export``, clickhouse-connect with an ``http://`` DSN, curl,
reads through it (docs/audit.md, "Querying while it projects").

Read-only by the engine and its own parser, not by pattern-matching SQL: each request gets its
own engine session at ``readonly = 2`` (no write, no DDL, and ``readonly`` cannot be lowered;
settings may change, as labeltrail's queries and clickhouse-connect need). Before it runs, the
engine parses the text (``formatQuery``: one statement only; ``EXPLAIN AST``): only SELECT,
SHOW, DESCRIBE, EXISTS and EXPLAIN pass, no ``INTO OUTFILE``, no table function but the
generators (``numbers``, ``zeros``, ...), no ``file()``: what a ClickHouse user granted only
SELECT may do, since the embedded engine's one user holds every grant (it reads files, and
``readonly`` alone stops neither ``file()`` nor ``INSERT INTO FUNCTION``). The statement run is
the one the engine formatted. Consistent: every engine call, the projector's batch writes and
these reads, takes one lock, so a read sees whole batches (all tables at the same batch
boundary), never half of one; concurrent queries on a chdb engine also clobber each other's
query parameters, which the lock rules out. The server is aiohttp's (already the annotation
frontend's), on its own event loop in a thread; a query runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from labeltrail.clickhouse.client import ENDPOINT_FILE, EngineSession
from labeltrail.exceptions import LabeltrailError

__all__ = ["EndpointPortInUseError", "QueryError", "ReadEndpoint", "query_format", "vet"]

log = logging.getLogger(__name__)

TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "role",
        "readonly",  # always 2 here: a request cannot lower it (nor lock out SETTINGS clauses)
    }
)
"""Request parameters that are not engine settings (as a ClickHouse server reads them)."""

BLOCK_FORMATS = frozenset(
    {
        "Native",
        "RowBinary",
        "TabSeparated",
        "TSV",
        "TabSeparatedRaw",
        "TSVRaw",
        "CSV",
        "JSONEachRow",
        "JSONCompactEachRow",
    }
)
"""Formats whose blocks concatenate into the whole result (no header or footer): answered as
the engine streams them, a block at a time, instead of materialized."""

STALLED_WRITE_SECONDS = 60.0
"""How long a streamed answer waits for its reader to take a block before it is dropped (the
query holds the projector's lock meanwhile)."""

ARRAY_OF_ROWS = "output_format_json_array_of_rows"
"""The setting that gives JSONEachRow a header and a footer (then it is materialized)."""

READ_STATEMENTS = ("Select", "Show", "Describe", "Exists", "Explain")
"""The AST roots (``EXPLAIN AST``'s first line) of the statements the endpoint runs."""

GENERATORS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values"}
)
"""Table functions that read nothing outside the query (any other one is refused)."""

OUTSIDE_FUNCTIONS = frozenset({"file", "catboostevaluate"})
"""Ordinary functions that read the machine's files."""

_AST_LINE = re.compile(r"^( *)(\w+)(?: (\S+))?")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_STATUS_BY_CODE = {
    62: 400,  # SYNTAX_ERROR
    164: 403,  # READONLY
    497: 403,  # ACCESS_DENIED
    60: 404,  # UNKNOWN_TABLE
    81: 404,  # UNKNOWN_DATABASE
    115: 400,  # UNKNOWN_SETTING
}
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8",
    "TSVWithNames": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


class EndpointPortInUseError(LabeltrailError):
    """The read endpoint's port is taken."""


def query_format(query: str, default: str) -> str:
    """The format a query's result comes in: its own ``FORMAT`` clause, else ``default``."""
    found = _TRAILING_FORMAT.search(query)
    return found.group(1) if found else default


@dataclass(frozen=True)
class _Request:
    query: str
    fmt: str
    database: str | None
    settings: dict[str, str]
    params: dict[str, str]


@dataclass(frozen=True)
class _Statement:
    """A vetted statement: the text to run (as the engine formatted it) and its AST root."""

    query: str
    root: str

    def startswith(self, kinds: tuple[str, ...]) -> bool:
        return self.root.startswith(kinds)


SELECT = ("Select",)
"""The AST roots chdb can stream (``send_query`` refuses SHOW, DESCRIBE, EXISTS, EXPLAIN)."""


@dataclass(frozen=True)
class _Answer:
    body: bytes
    rows_read: int = 0
    bytes_read: int = 0
    elapsed: float = 0.0


class _Blocks:
    """A query's result as the engine streams it, holding the engine lock and its session
    until :meth:`close`."""

    def __init__(self, stream: Any, session: EngineSession, lock: threading.Lock) -> None:
        self._stream, self._session, self._lock = stream, session, lock
        self._closed = False

    def next(self) -> bytes:
        """The next block's bytes; empty at the end."""
        while True:
            try:
                chunk = next(self._stream)
            except StopIteration:
                return b""
            except Exception as exc:
                raise QueryError(str(exc)) from exc
            data = chunk.bytes() if hasattr(chunk, "bytes") else bytes(chunk)
            if data:
                return bytes(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            self._session.close()
            self._lock.release()


class QueryError(Exception):
    """The engine refused or failed a query: its ClickHouse message and code."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        found = _ERROR_CODE.search(message)
        self.code = int(found.group(1)) if found else 1000
        start = message.find("Code: ")
        self.text = message[start:].strip() if start > 0 else message.strip()


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _escaped(value: str) -> str:
    """A query parameter's value in ClickHouse's text escaping (as in HTTP ``param_``)."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _refused(what: str) -> QueryError:
    return QueryError(
        f"Code: 164. DB::Exception: {what}: this endpoint is read-only (SELECT, SHOW, DESCRIBE, "
        "EXISTS, EXPLAIN over the projected tables). (READONLY)"
    )


def vet(ast: str, formatted: str) -> None:
    """Refuse a statement, from the engine's ``EXPLAIN AST`` of it and its formatted text,
    that is not a read of the projected tables (raises :class:`QueryError`, code 164)."""
    lines = ast.splitlines()
    root = lines[0].strip() if lines else ""
    if not root.startswith(READ_STATEMENTS):
        raise _refused(f"{root.split(' ')[0] or 'an empty statement'} is not a read")
    if any(line.startswith("INTO OUTFILE") for line in formatted.splitlines()):
        raise _refused("INTO OUTFILE writes a file")
    parents: list[tuple[int, str]] = []
    for line in lines:
        found = _AST_LINE.match(line)
        if not found:
            continue
        depth, node, name = len(found.group(1)), found.group(2), (found.group(3) or "")
        while parents and parents[-1][0] >= depth:
            parents.pop()
        if node == "Function":
            under_table = bool(parents) and parents[-1][1] == "TableExpression"
            if under_table and name.lower() not in GENERATORS:
                raise _refused(f"table function {name}() reads outside the projected tables")
            if name.lower() in OUTSIDE_FUNCTIONS:
                raise _refused(f"{name}() reads the machine's files")
        parents.append((depth, node))


class ReadEndpoint:
    """ClickHouse's HTTP interface over one embedded engine, read-only, in a thread.

    ``connect`` opens a new session on the engine (:func:`labeltrail.clickhouse.client.
    engine_session`); ``lock`` is the one the projector holds while it writes a batch.
    Binding happens in the constructor, so a taken port is an error there; ``port`` 0 takes a
    free one. The endpoint's URL is written to ``<directory>/labeltrail-endpoint.json`` for the
    CLI to find, and removed on :meth:`close`.
    """

    def __init__(
        self,
        connect: Callable[[], EngineSession],
        lock: threading.Lock,
        *,
        host: str,
        port: int,
        directory: Path | None = None,
    ) -> None:
        self._connect = connect
        self._lock = lock
        self._directory = directory
        self._sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM
        )
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise EndpointPortInUseError(
                    f"the projector's read endpoint cannot listen on {host}:{port}: the port is "
                    "already in use (another projector, or a ClickHouse server, listens there); "
                    "set LABELTRAIL_CLICKHOUSE_HTTP_PORT to a free port, or 0 for any free one"
                ) from exc
            raise LabeltrailError(
                f"the projector's read endpoint cannot listen on {host}:{port}: "
                f"{exc.strerror or exc}"
            ) from exc
        self._sock.listen(128)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self.timezone = self._engine_timezone()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="clickhouse-read-endpoint", daemon=True
        )
        self._thread.start()
        started.wait(30)
        if self._directory is not None:
            self._write_endpoint_file()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/ping", self._ping)
        app.router.add_route("*", "/", self._query)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.SockSite(self._runner, self._sock)
        self._loop.run_until_complete(site.start())
        started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def close(self) -> None:
        """Stop serving and remove the endpoint file (if it is still this one's)."""
        if self._directory is not None:
            path = self._directory / ENDPOINT_FILE
            try:
                if json.loads(path.read_text()).get("pid") == os.getpid():
                    path.unlink()
            except (OSError, ValueError):
                pass
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> ReadEndpoint:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _write_endpoint_file(self) -> None:
        assert self._directory is not None
        path = self._directory / ENDPOINT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": self.url, "pid": os.getpid()}) + "\n")
        tmp.replace(path)

    # -- the engine --------------------------------------------------------------------------

    def _engine_timezone(self) -> str:
        answer = self._run(_Request("SELECT timezone()", "TabSeparated", None, {}, {}))
        return answer.body.decode().strip() or "UTC"

    def _run(self, request: _Request) -> _Answer:
        """Run one request in its own read-only session, between the projector's batches."""
        with self._lock:
            session = self._connect()
            try:
                try:
                    statement = self._prepare(session, request)
                    result = session.query(statement.query, request.fmt, params=request.params)
                except Exception as exc:  # chdb raises its own error types; keep its message
                    raise QueryError(str(exc)) from exc
                return _Answer(
                    result.bytes() or b"",
                    int(result.rows_read()),
                    int(result.bytes_read()),
                    float(result.elapsed()),
                )
            finally:
                session.close()

    def _open(self, request: _Request) -> _Blocks:
        """Start one request's query as a stream of blocks; it holds the lock until closed."""
        self._lock.acquire()
        session = self._connect()
        try:
            statement = self._prepare(session, request)
            if statement.startswith(SELECT):
                stream = session.send_query(statement.query, request.fmt, params=request.params)
            else:  # chdb streams only a SELECT; SHOW, DESCRIBE, ... are small
                stream = iter([session.query(statement.query, request.fmt, params=request.params)])
        except BaseException as exc:
            session.close()
            self._lock.release()
            raise QueryError(str(exc)) from exc
        return _Blocks(stream, session, self._lock)

    def _prepare(self, session: EngineSession, request: _Request) -> _Statement:
        """Set the session up for ``request`` (database, its settings, read-only); the
        statement to run."""
        if request.database:
            db = request.database.replace("`", "``")
            session.query(f"USE `{db}`", "TabSeparated")
        for name, value in request.settings.items():
            session.query(f"SET {name} = {_quoted(value)}", "TabSeparated")
        session.query("SET readonly = 2", "TabSeparated")
        return self._vetted(session, request.query, request.params)

    @staticmethod
    def _vetted(session: EngineSession, query: str, params: dict[str, str]) -> _Statement:
        """The statement to run: ``query`` as the engine formats it, if it is one read."""
        sql = "SELECT formatQuery({q:String})"
        formatted = str(
            session.query(sql, "TSVRaw", params={"q": _escaped(query)}).bytes().decode()
        )
        if not formatted.strip():
            raise _refused("an empty statement")
        ast = str(
            session.query(f"EXPLAIN AST {formatted}", "TSVRaw", params=params).bytes().decode()
        )
        vet(ast, formatted)
        return _Statement(formatted, ast.lstrip().split(" ", 1)[0].strip())

    # -- HTTP ------------------------------------------------------------------------------

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="Ok.\n")

    async def _query(self, request: web.Request) -> web.StreamResponse:
        query_id = request.query.get("query_id") or str(uuid.uuid4())
        headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": self.timezone}
        try:
            parsed = await self._parse(request)
        except QueryError as exc:
            return _error(exc, headers)
        if not parsed.query.strip():
            if request.method in ("GET", "HEAD") and not request.query:
                return web.Response(text="Ok.\n", headers=headers)  # as ClickHouse: GET / is Ok.
            empty = QueryError("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
            return _error(empty, headers)
        fmt = query_format(parsed.query, parsed.fmt)
        headers["X-ClickHouse-Format"] = fmt
        headers["Content-Type"] = _CONTENT_TYPES.get(fmt, "application/octet-stream")
        if fmt in BLOCK_FORMATS and not any(
            ARRAY_OF_ROWS in text for text in (parsed.query, *parsed.settings)
        ):
            return await self._stream(request, parsed, headers)
        try:
            answer = await asyncio.get_running_loop().run_in_executor(None, self._run, parsed)
        except QueryError as exc:
            return _error(exc, headers)
        headers["X-ClickHouse-Summary"] = json.dumps(
            {
                "read_rows": str(answer.rows_read),
                "read_bytes": str(answer.bytes_read),
                "written_rows": "0",
                "written_bytes": "0",
                "total_rows_to_read": str(answer.rows_read),
                "result_rows": "0",
                "result_bytes": str(len(answer.body)),
                "elapsed_ns": str(int(answer.elapsed * 1e9)),
            }
        )
        response = web.Response(body=answer.body, headers=headers)
        if request.query.get("enable_http_compression") == "1":
            response.enable_compression()  # gzip or deflate, as Accept-Encoding asks
        return response

    async def _stream(
        self, request: web.Request, parsed: _Request, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Send the result a block at a time, as the engine makes it (bounded memory); an
        error after the first block ends the body with ClickHouse's message inside the
        exception tag of the response's ``X-ClickHouse-Exception-Tag``, as a server does."""
        loop = asyncio.get_running_loop()
        try:
            blocks = await loop.run_in_executor(None, self._open, parsed)
        except QueryError as exc:
            return _error(exc, headers)
        try:
            try:
                block = await loop.run_in_executor(None, blocks.next)
            except QueryError as exc:
                return _error(exc, headers)
            tag = secrets.token_hex(8)
            response = web.StreamResponse(headers={**headers, "X-ClickHouse-Exception-Tag": tag})
            if request.query.get("enable_http_compression") == "1":
                response.enable_compression()
            await response.prepare(request)
            while block:
                # A reader that stops reading would hold the projector's lock: drop it instead.
                await asyncio.wait_for(response.write(block), STALLED_WRITE_SECONDS)
                try:
                    block = await loop.run_in_executor(None, blocks.next)
                except QueryError as exc:  # marked as a server marks it (25.11 and later)
                    message = f"{exc.text}\n".encode()
                    await response.write(
                        b"__exception__\r\n%s\r\n%s%d %s\r\n__exception__\r\n"
                        % (tag.encode(), message, len(message), tag.encode())
                    )
                    break
            await response.write_eof()
            return response
        finally:
            await loop.run_in_executor(None, blocks.close)

    async def _parse(self, request: web.Request) -> _Request:
        fields: dict[str, str] = dict(request.query)
        query = fields.get("query", "")
        # As ClickHouse: a multipart form carries the query and parameters; any other body
        # (curl --data-binary sends it as a urlencoded form) is the query's text.
        if request.content_type == "multipart/form-data":
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, str):
                    fields[name] = value
            query = fields.get("query", "")
        elif request.can_read_body:
            body = await request.read()
            if body:
                try:
                    text = body.decode()
                except UnicodeDecodeError as exc:
                    raise QueryError(
                        "Code: 27. DB::Exception: the query is not UTF-8 text "
                        "(this endpoint is read-only: it takes no data). (CANNOT_PARSE_INPUT)"
                    ) from exc
                query = f"{query}\n{text}" if query else text
        settings = _settings(fields)
        params = {k.removeprefix("param_"): v for k, v in fields.items() if k.startswith("param_")}
        return _Request(
            query=query,
            fmt=fields.get("default_format") or "TabSeparated",
            database=fields.get("database") or None,
            settings=settings,
            params=params,
        )


def _settings(fields: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in fields.items():
        if name in TRANSPORT_PARAMS or name.startswith("param_"):
            continue
        if not _SETTING_NAME.match(name):
            raise QueryError(
                f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)"
            )
        out[name] = value
    return out


def _error(exc: QueryError, headers: dict[str, str]) -> web.Response:
    headers = {**headers, "X-ClickHouse-Exception-Code": str(exc.code)}
    status = _STATUS_BY_CODE.get(exc.code, 500)
    return web.Response(
        status=status,
        text=exc.text + "\n",
        headers={**headers, "Content-Type": "text/plain; charset=UTF-8"},
    )
