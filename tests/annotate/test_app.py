"""The HTTP app without a broker: auth, isolation, validation, escaping, limits, shutdown.

The sink is in memory here; ``test_kafka.py``, ``test_serve.py`` and ``test_browser.py`` beside
it run the same app against the real broker and a real browser.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from labeltrail.annotate.app import COOKIE, Frontend, create_app
from labeltrail.annotate.queue import outcome_id
from labeltrail.annotate.sink import MemorySink
from labeltrail.events.base import Event
from labeltrail.events.models import PriorVote, VoteCast

from .helpers import TOKENS, bearer, frontend, make_task, produced, run_app


def test_signin_cookie_and_token_checked_on_every_request() -> None:
    task = make_task("a47", 1)

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        r = await client.get("/tasks/next", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/signin"
        r = await client.post("/signin", data={"annotator": "a47", "token": "wrong"})
        assert r.status == 401 and "wrong token" in await r.text()
        r = await client.post(
            "/signin", data={"annotator": "a47", "token": TOKENS["a47"]}, allow_redirects=False
        )
        assert r.status == 303
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        r = await client.get("/tasks/next")
        assert r.status == 200 and "comment number 1" in await r.text()
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        # a forged cookie for another annotator (right format, wrong token) is refused
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({COOKIE: f"b12:{TOKENS['a47']}"})
        r = await client.get("/tasks/next", allow_redirects=False)
        assert r.status == 303
        r = await client.get("/api-or-anything", headers={"Accept": "application/json"})
        assert r.status == 401

    run_app(frontend([task]), scenario)


def test_annotator_cannot_read_or_vote_on_anothers_task() -> None:
    mine, theirs = make_task("a47", 1), make_task("b12", 2, text="b12's private task")

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        r = await client.get(f"/tasks/{theirs.assignment_id}", headers=bearer("a47"))
        assert r.status == 404
        r = await client.get("/tasks/next", headers=bearer("a47"))
        assert (await r.json())["task"]["assignment_id"] == mine.assignment_id
        r = await client.post(
            f"/tasks/{theirs.assignment_id}", json={"label": "mild"}, headers=bearer("a47")
        )
        assert r.status == 404
        assert produced(fe) == []
        assert fe.queue.is_pending("b12", theirs.assignment_id)

    run_app(frontend([mine, theirs]), scenario)


def test_forged_class_question_or_task_id_is_rejected_and_nothingproduced() -> None:
    task = make_task("a47", 1)

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        url = f"/tasks/{task.assignment_id}"
        assert (await client.get(url, headers=bearer("a47"))).status == 200  # served
        cases = [
            (url, {"label": "spam"}, 400, "is not a class of v3"),
            (url, {"label": "mild", "answer.q9_evil": "yes"}, 400, "not asked by this task"),
            (url, {"label": "mild", "answer.q1_slur": "perhaps"}, 400, "is not an answer"),
            (url, {"label": "mild", "vote_id": "chosen-by-me"}, 400, "unknown field"),
            ("/tasks/not-a-task", {"label": "mild"}, 404, "no such task"),
        ]
        for target, body, status, message in cases:
            r = await client.post(target, json=body, headers=bearer("a47"))
            assert r.status == status, (body, await r.text())
            assert message in (await r.json())["detail"]
        html = {**bearer("a47"), "Accept": "text/html"}
        r = await client.post(url, data={"label": "<b>x</b>"}, headers=html)
        assert r.status == 400 and "&lt;b&gt;x&lt;/b&gt;" in await r.text()
        assert produced(fe) == []
        r = await client.post(url, json={"label": "mild"}, headers=bearer("a47"))
        assert r.status == 200
        (vote,) = produced(fe)
        assert isinstance(vote, VoteCast) and vote.vote_id == outcome_id(task)
        r = await client.post(url, json={"label": "mild"}, headers=bearer("a47"))
        assert r.status == 404  # answered: gone from the queue, nothing produced twice
        assert len(produced(fe)) == 1

    run_app(frontend([task]), scenario)


def test_markup_in_a_comment_renders_as_text() -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    task = make_task("a47", 1, text=evil, context=["<b>parent</b>"], prelabel="<i>mild</i>")

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        r = await client.get("/tasks/next", headers={**bearer("a47"), "Accept": "text/html"})
        body = await r.text()
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body
        assert "&lt;b&gt;parent&lt;/b&gt;" in body and "<i>mild</i>" not in body

    run_app(frontend([task]), scenario)


def test_crowd_never_sees_votes_expert_sees_votes_and_context() -> None:
    votes = [PriorVote(annotator_id="b12", label="non-toxic", confidence=0.7)]
    crowd = make_task("a47", 1, prior_votes=votes, context=["granted thread"])
    expert = make_task(
        "e-04", 1, pool="expert", prior_votes=votes, context=["the parent"], request_id="r1"
    )

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        html = {"Accept": "text/html"}
        body = await (await client.get("/tasks/next", headers={**bearer("a47"), **html})).text()
        assert "granted thread" in body and "b12" not in body and "crowd-votes" not in body
        data = await (await client.get("/tasks/next", headers=bearer("a47"))).json()
        assert "prior_votes" not in data["task"]
        body = await (await client.get("/tasks/next", headers={**bearer("e-04"), **html})).text()
        assert "crowd-votes" in body and "b12" in body and "the parent" in body
        r = await client.post(
            f"/tasks/{expert.assignment_id}",
            json={"label": "harassment", "confidence": 0.9, "note": "coded"},
            headers=bearer("e-04"),
        )
        assert r.status == 200
        (adj,) = produced(fe)
        assert type(adj).__name__ == "AdjudicationRecorded"

    run_app(frontend([crowd, expert]), scenario)


def test_submissions_are_rate_limited() -> None:
    tasks = [make_task("a47", n) for n in range(5)]

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        statuses = []
        for task in tasks:
            await client.get(f"/tasks/{task.assignment_id}", headers=bearer("a47"))
            r = await client.post(
                f"/tasks/{task.assignment_id}", json={"label": "mild"}, headers=bearer("a47")
            )
            statuses.append(r.status)
        assert statuses == [200, 200, 200, 429, 429]
        assert int(r.headers["Retry-After"]) >= 1
        assert len(produced(fe)) == 3

    run_app(frontend(tasks, burst=3), scenario)


def test_health_metrics_and_cross_origin_post() -> None:
    task = make_task("a47", 1, prelabel="mild")

    async def scenario(client: TestClient[Any, Any], fe: Frontend) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200
        r = await client.post(
            f"/tasks/{task.assignment_id}",
            data={"label": "mild"},
            headers={**bearer("a47"), "Origin": "http://evil.example"},
        )
        assert r.status == 403 and produced(fe) == []
        await client.get("/tasks/next", headers=bearer("a47"))
        r = await client.post(
            f"/tasks/{task.assignment_id}",
            json={"label": "mild", "time_ms": 1500},
            headers=bearer("a47"),
        )
        assert r.status == 200
        text = await (await client.get("/metrics")).text()
        assert 'annotate_tasks_served_total{pool="crowd"} 1.0' in text
        assert 'annotate_votes_produced_total{draft_shown="yes",pool="crowd"} 1.0' in text
        assert "annotate_label_seconds_count" in text

    run_app(frontend([task]), scenario)


class _SlowSink(MemorySink):
    """Takes a while to acknowledge, like a broker under load."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()

    async def publish(self, event: Event) -> None:
        self.started.set()
        await asyncio.sleep(0.5)
        await super().publish(event)


def test_graceful_shutdown_finishes_a_submission_in_flight() -> None:
    task = make_task("a47", 1)

    async def main() -> None:
        sink = _SlowSink()
        fe = frontend([task], sink=sink)
        runner = web.AppRunner(create_app(fe), shutdown_timeout=5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        from aiohttp import ClientSession

        async with ClientSession() as session:
            url = f"http://{host}:{port}/tasks/{task.assignment_id}"
            async with session.get(url, headers=bearer("a47")) as served:
                assert served.status == 200
            post = asyncio.create_task(
                session.post(
                    f"http://{host}:{port}/tasks/{task.assignment_id}",
                    json={"label": "hate"},
                    headers=bearer("a47"),
                )
            )
            await sink.started.wait()
            await runner.cleanup()  # what SIGTERM does
            response = await post
            assert response.status == 200
            response.release()
        assert [type(e).__name__ for e in sink.events] == ["VoteCast"] and sink.closed

    asyncio.run(main())
