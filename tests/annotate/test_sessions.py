"""Credentials that hold: sessions, expiry, revocation, failure limits, undecodable bytes,
and the time spent measured by the server."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, TCPConnector
from aiohttp.test_utils import TestClient

from labeltrail.annotate.app import COOKIE, Frontend
from labeltrail.annotate.auth import TokenStore, hash_token
from labeltrail.annotate.queue import TaskQueue
from labeltrail.annotate.ratelimit import RateLimiter
from labeltrail.annotate.sessions import SessionStore
from labeltrail.events.models import VoteCast

from .helpers import TOKENS, bearer, frontend, make_task, produced, run_app


async def _raw(client: TestClient[Any, Any], request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client library re-encodes them); status and body."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_undecodable_credentials_answer_400_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = b"\xff\xfe\xc3("
    form = b"annotator=a47&token=" + bad
    requests = {
        "bearer": b"GET /tasks/next HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a47:"
        + bad
        + b"\r\nConnection: close\r\n\r\n",
        "cookie": b"GET /tasks/next HTTP/1.1\r\nHost: x\r\nCookie: lt_session="
        + bad
        + b"\r\nConnection: close\r\n\r\n",
        "sign-in": b"POST /signin HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        + f"Content-Length: {len(form)}\r\nConnection: close\r\n\r\n".encode()
        + form,
        "sign-in %-escaped": b"POST /signin HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 24\r\nConnection: close\r\n\r\nannotator=a47&token=%ff%",
    }

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        for name, request in requests.items():
            status, body = await _raw(client, request)
            assert status == 400, (name, body[:300])
            assert b"Traceback" not in body and b"Internal Server Error" not in body, name

    with caplog.at_level(logging.WARNING, logger="labeltrail.annotate"):
        run_app(frontend([make_task("a47", 1)]), scenario)
    refused = [r for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert len(refused) == len(requests)


def test_time_spent_is_the_servers_measure_and_unserved_tasks_are_refused() -> None:
    now = [100.0]
    queue = TaskQueue(clock=lambda: now[0])
    served, unserved = make_task("a47", 1), make_task("a47", 2)

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        # never served to a47: whatever time the client claims, nothing is recorded
        r = await client.post(
            f"/tasks/{unserved.assignment_id}",
            json={"label": "mild", "time_ms": 123456},
            headers=bearer("a47"),
        )
        assert r.status == 409 and produced(fe) == []
        assert fe.queue.is_pending("a47", unserved.assignment_id)
        r = await client.get(f"/tasks/{served.assignment_id}", headers=bearer("a47"))
        assert r.status == 200
        now[0] += 4.2
        r = await client.post(
            f"/tasks/{served.assignment_id}",
            json={"label": "mild", "time_ms": 1},
            headers=bearer("a47"),
        )
        assert r.status == 200
        (vote,) = produced(fe)
        assert isinstance(vote, VoteCast) and vote.time_spent_ms == 4200

    run_app(frontend([served, unserved], queue=queue), scenario)


async def _sign_in(client: TestClient[Any, Any], annotator: str = "a47") -> str:
    r = await client.post(
        "/signin",
        data={"annotator": annotator, "token": TOKENS[annotator]},
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    return r.cookies[COOKIE].value


def test_cookie_is_a_session_that_sign_out_ends_server_side() -> None:
    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        session_id = await _sign_in(client)
        assert TOKENS["a47"] not in session_id and "a47" not in session_id
        assert (await client.get("/tasks/next", allow_redirects=False)).status == 200
        r = await client.post("/signout", allow_redirects=False)
        assert r.status == 303 and len(fe.sessions) == 0
        # the old cookie, kept by a careless or hostile client, no longer works
        client.session.cookie_jar.update_cookies({COOKIE: session_id})
        r = await client.get("/tasks/next", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/signin"
        r = await client.get("/tasks/next", headers={"Accept": "application/json"})
        assert r.status == 401

    run_app(frontend([make_task("a47", 1)]), scenario)


def test_sessions_end_after_idleness_and_max_age() -> None:
    now = [0.0]
    sessions = SessionStore(max_age=100.0, idle=30.0, clock=lambda: now[0])

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        json = {"Accept": "application/json"}
        await _sign_in(client)
        for _ in range(4):  # active: idle never reached
            now[0] += 25.0
            assert (await client.get("/tasks/next", headers=json)).status == 200
        now[0] += 25.0  # 125 s after sign-in: past the max age
        assert (await client.get("/tasks/next", headers=json)).status == 401
        await _sign_in(client)
        now[0] += 31.0  # idle
        assert (await client.get("/tasks/next", headers=json)).status == 401

    run_app(frontend([make_task("a47", 1)], sessions=sessions), scenario)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_a_token_removed_from_the_file_stops_working_at_once(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    _write(path, [f"{a} {hash_token(t)}" for a, t in TOKENS.items()])
    tokens = TokenStore.load(str(path))

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        await _sign_in(client)  # a browser session made from a47's token
        assert (await client.get("/tasks/next", headers=bearer("a47"))).status == 200
        assert (await client.get("/tasks/next", headers={"Accept": "text/html"})).status == 200
        _write(path, [f"b12 {hash_token(TOKENS['b12'])}"])  # a47 revoked, no restart
        assert (await client.get("/tasks/next", headers=bearer("a47"))).status == 401
        r = await client.get("/tasks/next", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/signin"
        assert (await client.get("/tasks/next", headers=bearer("b12"))).status == 200
        # a broken file turns its tokens off (fail closed) until it is fixed
        path.write_text("b12 not-a-hash\n")
        assert (await client.get("/tasks/next", headers=bearer("b12"))).status == 401
        _write(path, [f"b12 {hash_token(TOKENS['b12'])}"])
        assert (await client.get("/tasks/next", headers=bearer("b12"))).status == 200

    run_app(frontend([make_task("a47", 1)], tokens=tokens), scenario)


def test_tokens_expire_after_their_issue_time(tmp_path: Path) -> None:
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp()
    old = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).isoformat()
    recent = dt.datetime(2025, 5, 20, tzinfo=dt.UTC).isoformat()
    path = tmp_path / "tokens"
    _write(
        path,
        [
            f"a47 {hash_token(TOKENS['a47'])} {old}",
            f"b12 {hash_token(TOKENS['b12'])} {recent}",
            f"e-04 {hash_token(TOKENS['e-04'])}",  # no issue time: counted from first read
        ],
    )
    clock = [now]
    store = TokenStore.load(str(path), max_age=30 * 86400.0, clock=lambda: clock[0])
    assert not store.check("a47", TOKENS["a47"])
    assert store.check("b12", TOKENS["b12"]) and store.check("e-04", TOKENS["e-04"])
    clock[0] += 31 * 86400.0
    assert not store.check("b12", TOKENS["b12"]) and not store.check("e-04", TOKENS["e-04"])


def test_failed_credentials_are_limited_per_address_and_per_credential() -> None:
    """Bearer, cookie and sign-in failures spend the same buckets; 429 with Retry-After."""

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        base = str(client.make_url(""))

        async def get(source: str, headers: dict[str, str]) -> tuple[int, str]:
            async with (
                ClientSession(connector=TCPConnector(local_addr=(source, 0))) as session,
                session.get(f"{base}/tasks/next", headers=headers) as r,
            ):
                return r.status, r.headers.get("Retry-After", "")

        wrong = {"Authorization": "Bearer a47:wrong", "Accept": "application/json"}
        cookie = {"Cookie": f"{COOKIE}=forged-session", "Accept": "application/json"}
        statuses = [(await get("127.0.0.2", wrong))[0] for _ in range(2)]
        statuses.append((await get("127.0.0.2", cookie))[0])
        status, retry = await get("127.0.0.2", bearer("b12"))  # right token, blocked address
        assert statuses == [401, 401, 401] and status == 429 and int(retry) >= 1
        # another address: a47's credential is still blocked (2 failures + burst 3 each)
        assert (await get("127.0.0.3", wrong))[0] == 401
        assert (await get("127.0.0.3", bearer("a47")))[0] == 429
        assert (await get("127.0.0.3", bearer("b12")))[0] == 200
        # sign-in spends the same buckets
        for expected in (401, 401, 401, 429):
            r = await client.post("/signin", data={"annotator": "b12", "token": "nope"})
            assert r.status == expected

    limit = RateLimiter(0.001, 3)
    run_app(frontend([make_task("a47", 1), make_task("b12", 2)], auth_limit=limit), scenario)


def test_token_command_records_the_issue_time(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labeltrail.cli import app

    path = tmp_path / "tokens"
    result = CliRunner().invoke(app, ["annotate", "token", "a47", "--tokens-file", str(path)])
    assert result.exit_code == 0, result.output
    _, _, issued = path.read_text().split()
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(issued)
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=5)
