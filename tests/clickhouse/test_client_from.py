"""The one ClickHouse client factory: a password given only by LABELTRAIL_CLICKHOUSE_PASSWORD
reaches the server from every command group, the service and the demo.

No ClickHouse server can run on this machine: Debian's ``clickhouse-server`` is 18.16 (2018),
which clickhouse-connect cannot open (its first query reads a ``system.settings`` column that
release lacks), and no PyPI package ships a server (chdb is in-process, without HTTP). So the
server end here is an HTTP listener on 127.0.0.1 that records each request's credentials and
refuses it as a server refuses a wrong password: every command runs unmodified through the real
clickhouse-connect client up to the wire, and the test reads what arrived there.
"""

from __future__ import annotations

import base64
import importlib.util
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.clickhouse.client import ClickHouseUnavailableError, client_from, shown_dsn
from labeltrail.config import Settings, settings

SERVICE = Path(__file__).resolve().parents[2] / "services" / "projector.py"


@dataclass
class Listener:
    """What reached the "server": (user, password) per request, from HTTP basic auth."""

    port: int
    credentials: list[tuple[str, str]] = field(default_factory=list)

    def dsn(self, user: str = "labeltrail", *, scheme: str = "http", db: str = "audit") -> str:
        return f"{scheme}://{user}@127.0.0.1:{self.port}/{db}"


@pytest.fixture
def listener() -> Iterator[Listener]:
    seen = Listener(port=0)

    class Refuse(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            auth = self.headers.get("Authorization", "")
            user, _, password = (
                base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
                if auth.startswith("Basic ")
                else ("", "", "")
            )
            seen.credentials.append((user, password))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = b"Code: 516. DB::Exception: Authentication failed (the test's listener)"
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _refuse

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    seen.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _env(listener: Listener, secret: str, kafka: str) -> dict[str, str]:
    return {
        "LABELTRAIL_CLICKHOUSE_DSN": listener.dsn(),
        "LABELTRAIL_CLICKHOUSE_PASSWORD": secret,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "LABELTRAIL_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "LABELTRAIL_TOPIC_PARTITIONS": "1",
    }


def _commands(tmp: Path, other_db: str) -> dict[str, list[str]]:
    return {
        "audit trace": ["audit", "trace", "c-1"],
        "audit label-as-of": ["audit", "label-as-of", "all", "--json"],
        "audit explain": ["audit", "explain", "l-1"],
        "audit iaa": ["audit", "iaa"],
        "report": ["report", "--out", str(tmp / "report.html")],
        "export create": ["export", "create", "--schema-version", "v1", "--out", str(tmp)],
        "projections apply": ["projections", "apply"],
        "projections run": ["projections", "run"],
        "projections checksum": ["projections", "checksum"],
        "projections checksum --dsn": ["projections", "checksum", "--dsn", other_db],
        "projections rebuild --into": ["projections", "rebuild", "--into", other_db],
        "demo": ["demo", "--comments", "10", "--timeout", "30"],
    }


def test_the_password_from_the_environment_reaches_the_server_from_every_command(
    listener: Listener, kafka_bootstrap: str, tmp_path: Path
) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    env = _env(listener, secret, kafka_bootstrap)
    for name, argv in _commands(tmp_path, listener.dsn(db="rebuilt")).items():
        listener.credentials.clear()
        result = CliRunner().invoke(app, argv, env=env)
        assert isinstance(result.exception, SystemExit), (name, result.exception)
        assert result.exit_code == 1, (name, result.output)
        assert "cannot open ClickHouse" in result.output, (name, result.output)
        assert secret not in result.output, name
        assert listener.credentials, f"{name}: nothing reached the server"
        assert set(listener.credentials) == {("labeltrail", secret)}, (
            name,
            listener.credentials,
        )


def test_the_projector_service_passes_the_password(
    listener: Listener, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    for key, value in _env(listener, secret, kafka_bootstrap).items():
        monkeypatch.setenv(key, value)
    settings.cache_clear()
    spec = importlib.util.spec_from_file_location("projector_service", SERVICE)
    assert spec is not None and spec.loader is not None
    service = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(service)
    try:
        with pytest.raises(ClickHouseUnavailableError):
            service.main()
    finally:
        settings.cache_clear()
    assert set(listener.credentials) == {("labeltrail", secret)}


def test_an_https_dsn_never_sends_the_password_in_clear(listener: Listener) -> None:
    """clickhouse-connect takes TLS from the port unless told; the scheme must tell it."""
    secret = f"pw-{uuid.uuid4().hex}"
    dsn = listener.dsn(scheme="https")
    config = Settings(clickhouse_dsn=dsn, clickhouse_password=SecretStr(secret))
    with pytest.raises(ClickHouseUnavailableError):
        client_from(config)  # a TLS handshake with a plain-HTTP listener: refused
    assert listener.credentials == []


def test_an_inline_password_is_never_printed(listener: Listener) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    dsn = f"http://labeltrail:{secret}@127.0.0.1:{listener.port}/audit"
    with pytest.raises(ClickHouseUnavailableError) as caught:
        client_from(Settings(clickhouse_dsn=dsn))
    assert listener.credentials == [("labeltrail", secret)]
    assert secret not in str(caught.value)
    assert shown_dsn(dsn) in str(caught.value)
    assert shown_dsn(dsn) == f"http://labeltrail:***@127.0.0.1:{listener.port}/audit"


def test_the_environment_password_wins_over_an_inline_one(listener: Listener) -> None:
    dsn = f"http://labeltrail:stale@127.0.0.1:{listener.port}/audit"
    with pytest.raises(ClickHouseUnavailableError):
        client_from(Settings(clickhouse_dsn=dsn, clickhouse_password=SecretStr("rotated")))
    assert listener.credentials == [("labeltrail", "rotated")]


def test_a_chdb_dsn_opens_the_engine_in_process(tmp_path: Path) -> None:
    client = client_from(
        Settings(clickhouse_password=SecretStr("unused")), dsn=f"chdb://{tmp_path}"
    )
    try:
        assert client.query("SELECT 1 + 1").result_rows == [(2,)]
    finally:
        client.close()
