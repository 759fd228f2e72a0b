"""Benchmark: the annotation frontend under load, and confirm-or-correct against from-scratch.

    python ops/bench/annotate.py [--scale small|article]

1. Load: ``labeltrail annotate serve`` in its own process on 127.0.0.1, 50 simulated annotators
   in this process, each looping GET /tasks/next (the rendered HTML page) then POST of a label
   (acknowledged only once the VoteCast is flushed to the real broker). Server time comes from
   the ``Server-Timing`` header; client time (what the annotator waits, queueing included) from
   this process. After the time budget the server gets SIGTERM while the load is still on: every
   acknowledged vote must then be on the broker.
2. Sessions: one annotator in headless Chromium labels tasks by keyboard, once with model
   drafts shown (a draft is right with probability 0.8: Enter confirms it, a wrong one is
   corrected with class key + Enter) and once without (from scratch: answer the four atomic
   questions of schema v3, then class key + Enter; and the minimal variant, class key + Enter).
   Counted: keystrokes, clicks and HTTP round trips per label, and machine time per label. The
   human part (reading, deciding) is not measured: no machine can.

Prints one JSON object per figure: figure, value, unit, peer, peer_value, ratio (> 1: ours is
better; the latency peer is the 50 ms goal, the drafts peer the no-draft session).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.annotate.helpers import (  # noqa: E402
    TOKENS,
    make_task,
    publish_tasks,
    read_events,
    service_settings,
    token_store,
)

from labeltrail.annotate.auth import hash_token  # noqa: E402
from labeltrail.annotate.server import AnnotateService, background_server  # noqa: E402
from labeltrail.config import Settings  # noqa: E402

SCALES = {"small": {"seconds": 10.0, "session": 20}, "article": {"seconds": 60.0, "session": 60}}
ANNOTATORS = 50
GOAL_MS = 50.0
CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]
ACTION = re.compile(r'action="/tasks/([^"]+)"')


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _row(
    figure: str,
    value: float,
    unit: str,
    peer: str | None,
    peer_value: float | None,
    lower_is_better: bool = True,
) -> dict[str, Any]:
    ratio = None
    if peer_value is not None and value:
        ratio = round(peer_value / value if lower_is_better else value / peer_value, 3)
    return {
        "figure": figure,
        "value": round(value, 3),
        "unit": unit,
        "peer": peer,
        "peer_value": None if peer_value is None else round(peer_value, 3),
        "ratio": ratio,
    }


# 1. load --------------------------------------------------------------------------------


async def _annotator(
    base: str,
    who: str,
    token: str,
    deadline: float,
    out: dict[str, list[Any]],
    stop: asyncio.Event,
    pace: float,
) -> None:
    headers = {"Authorization": f"Bearer {who}:{token}", "Accept": "text/html"}
    async with aiohttp.ClientSession(headers=headers) as session:
        if pace:
            await asyncio.sleep(random.uniform(0, pace))  # annotators do not start in step
        while time.monotonic() < deadline and not stop.is_set():
            started = time.monotonic()
            try:
                t0 = time.perf_counter()
                async with session.get(f"{base}/tasks/next") as r:
                    page = await r.text()
                    timing = r.headers.get("Server-Timing", "")
                out["render_client"].append((time.perf_counter() - t0) * 1000)
                out["render_server"].append(float(timing.split("dur=")[-1]))
                match = ACTION.search(page)
                if match is None:
                    return  # queue empty
                t0 = time.perf_counter()
                form = {"label": random.choice(CLASSES), "time_ms": "3000"}
                async with session.post(
                    f"{base}/tasks/{match.group(1)}", data=form, allow_redirects=False
                ) as r:
                    await r.read()
                    status, timing = r.status, r.headers.get("Server-Timing", "")
                if status == 303:
                    out["submit_client"].append((time.perf_counter() - t0) * 1000)
                    out["submit_server"].append(float(timing.split("dur=")[-1]))
                    out["acked"].append(match.group(1))
                else:
                    out["errors"].append(status)
            except (aiohttp.ClientError, ConnectionError):
                out["errors"].append("connection")
                await asyncio.sleep(0.05)
            if pace:
                await asyncio.sleep(max(0.0, pace - (time.monotonic() - started)))


def load(
    settings: Settings, seconds: float, per_annotator: int, pace: float, tag: str
) -> list[dict[str, Any]]:
    """50 annotators for ``seconds``: one label per ``pace`` seconds each, or flat out (0)."""
    tokens = {f"ann{i:02d}": uuid.uuid4().hex for i in range(ANNOTATORS)}
    tasks = [make_task(a, n) for a in tokens for n in range(per_annotator)]
    publish_tasks(settings, tasks)
    by_assignment = {t.assignment_id: t for t in tasks}
    port = 18000 + random.randrange(2000)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_ANNOTATE_PORT": str(port),
        "LABELTRAIL_ANNOTATE_TOKENS": ",".join(f"{a}={hash_token(t)}" for a, t in tokens.items()),
        "LABELTRAIL_ANNOTATE_SUBMIT_RATE": "10000",
        "LABELTRAIL_ANNOTATE_SUBMIT_BURST": "10000",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "labeltrail.cli", "annotate", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    out: dict[str, list[Any]] = {
        k: []
        for k in (
            "render_client",
            "render_server",
            "submit_client",
            "submit_server",
            "acked",
            "errors",
        )
    }

    errors_under_load: list[int] = []

    async def run() -> float:
        async with aiohttp.ClientSession() as probe:
            for _ in range(300):
                try:
                    async with probe.get(f"{base}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            else:
                server.kill()
                _, err = server.communicate(timeout=10)
                raise RuntimeError(f"frontend did not become ready: {err.decode()[-2000:]}")
        stop = asyncio.Event()
        t0 = time.monotonic()
        deadline = t0 + seconds + 5
        workers = [
            asyncio.create_task(_annotator(base, a, t, deadline, out, stop, pace))
            for a, t in tokens.items()
        ]
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        errors_under_load.append(len(out["errors"]))
        server.send_signal(signal.SIGTERM)  # graceful shutdown with the load still on
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*workers)
        return elapsed

    try:
        elapsed = asyncio.run(run())
        code = server.wait(60)
    finally:
        if server.poll() is None:
            server.kill()
    acked = set(out["acked"])
    on_log = read_events(settings, "votes", want=len(acked), timeout=30)
    from labeltrail.annotate.queue import outcome_id

    log_ids = {getattr(e, "vote_id", "") for e in on_log}
    lost = [a for a in acked if outcome_id(by_assignment[a]) not in log_ids]
    print(
        json.dumps(
            {
                "load": {
                    "acked": len(acked),
                    "on_log": len(log_ids),
                    "lost": len(lost),
                    "tag": tag,
                    "errors_under_load": errors_under_load[0],
                    "errors_after_sigterm": len(out["errors"]) - errors_under_load[0],
                    "exit_code": code,
                    "seconds": round(elapsed, 1),
                }
            }
        ),
        file=sys.stderr,
    )
    rows = []
    for kind in ("render", "submit"):
        for side in ("server", "client"):
            p95 = _p(out[f"{kind}_{side}"], 0.95)
            figure = f"{kind}_p95_{side}_ms_50_annotators_{tag}"
            rows.append(_row(figure, p95, "ms", "goal", GOAL_MS))
    rows.append(
        _row(
            f"votes_per_second_50_annotators_{tag}",
            len(acked) / elapsed,
            "votes/s",
            None,
            None,
            lower_is_better=False,
        )
    )
    lost_figure = f"acknowledged_votes_lost_on_sigterm_{tag}"
    rows.append(_row(lost_figure, float(len(lost)), "votes", None, None))
    return rows


# 2. sessions in the browser ------------------------------------------------------------


def session(settings: Settings, n: int, mode: str, seed: int) -> dict[str, float]:
    """One annotator labels n tasks by keyboard; returns per-label counts and times."""
    from playwright.sync_api import sync_playwright
    from tests.annotate.test_browser import CHROMIUM, CHROMIUM_ARGS

    rng = random.Random(seed)
    truth = [rng.choice(CLASSES) for _ in range(n)]
    drafts = [
        t if rng.random() < 0.8 else rng.choice([c for c in CLASSES if c != t]) for t in truth
    ]
    who = "a47"
    tasks = [
        make_task(
            who,
            10_000 + i,
            prelabel=drafts[i] if mode == "draft" else None,
            confidence=0.9 if mode == "draft" else None,
        )
        for i in range(n)
    ]
    publish_tasks(settings, tasks)
    service = AnnotateService(
        service_settings(settings, submit_rate=100.0, submit_burst=100), tokens=token_store()
    )
    keys = 0
    requests = 0.0
    with background_server(service), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{service.url}/signin")
        page.fill("input[name=annotator]", who)
        page.fill("input[name=token]", TOKENS[who])
        page.click("button[type=submit]")
        page.wait_for_selector("#comment-text")
        served_before = _served(service)
        t0 = time.perf_counter()
        for i in range(n):
            page.wait_for_selector("#comment-text")
            plan: list[str] = []
            if mode == "draft" and drafts[i] == truth[i]:
                plan = ["Enter"]
            elif mode == "scratch_questions":
                plan = [k for q in "qwer" for k in [q] * rng.choice([1, 2])]
                plan += [str(CLASSES.index(truth[i]) + 1), "Enter"]
            else:
                plan = [str(CLASSES.index(truth[i]) + 1), "Enter"]
            keys += len(plan)
            with page.expect_navigation():
                for key in plan:
                    page.keyboard.press(key)
        page.wait_for_selector("#empty")
        seconds = time.perf_counter() - t0
        requests = _served(service) - served_before
        browser.close()
    votes = read_events(settings, "votes", want=n)
    spent = [getattr(v, "time_spent_ms", 0) for v in votes if getattr(v, "annotator_id", "") == who]
    return {
        "keys": keys / n,
        "clicks": 0.0,
        "round_trips": requests / n,
        "seconds": seconds / n,
        "time_spent_ms": statistics.mean(spent) if spent else 0.0,
    }


def _served(service: AnnotateService) -> float:
    """HTTP requests the server answered so far (browser cache hits never reach it)."""
    total = service.metrics.registry.get_sample_value
    return sum(
        total("annotate_http_requests_total", {"route": route}) or 0.0
        for route in ("/tasks/next", "/tasks/{assignment_id}", "/static/app.js", "/static/app.css")
    )


def sessions(base: Settings, n: int) -> list[dict[str, Any]]:
    results = {}
    for mode in ("draft", "scratch_class", "scratch_questions"):
        settings = base.model_copy(update={"topic_prefix": f"{base.topic_prefix}-{mode}"})
        results[mode] = session(settings, n, mode, seed=7)
    print(json.dumps({"sessions": results}), file=sys.stderr)
    draft = results["draft"]
    rows = []
    for peer in ("scratch_class", "scratch_questions"):
        other = results[peer]
        rows.append(
            _row(
                f"keystrokes_per_label_drafts_vs_{peer}",
                draft["keys"],
                "keys",
                f"no drafts ({peer})",
                other["keys"],
            )
        )
        rows.append(
            _row(
                f"machine_seconds_per_label_drafts_vs_{peer}",
                draft["seconds"],
                "s",
                f"no drafts ({peer})",
                other["seconds"],
            )
        )
    rows.append(
        _row(
            "round_trips_per_label_drafts",
            draft["round_trips"],
            "requests",
            "no drafts",
            results["scratch_class"]["round_trips"],
        )
    )
    rows.append(
        _row(
            "clicks_per_label_drafts",
            draft["clicks"],
            "clicks",
            "no drafts",
            results["scratch_class"]["clicks"],
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--skip-browser", action="store_true", help="no Chromium sessions")
    parser.add_argument("--skip-load", action="store_true", help="no 50-annotator load")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    base = Settings(topic_prefix=f"bench-annotate-{uuid.uuid4().hex[:8]}", topic_partitions=6)
    seconds = float(scale["seconds"])
    per_annotator = int(seconds * 20)  # more than one annotator can do in the budget
    rows: list[dict[str, Any]] = []
    # paced: one label per second per annotator, ~4.5x the article's 800 labels/hour
    for tag, pace in () if args.skip_load else (("paced_1s", 1.0), ("flat_out", 0.0)):
        settings = base.model_copy(update={"topic_prefix": f"{base.topic_prefix}-{tag}"})
        rows += load(settings, seconds, per_annotator, pace, tag)
    if not args.skip_browser:
        rows += sessions(base, int(scale["session"]))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
