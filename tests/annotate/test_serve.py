"""``labeltrail annotate serve`` as a process: ready, takes a vote, exits cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from labeltrail.annotate.queue import outcome_id
from labeltrail.config import Settings
from tests.annotate.helpers import TOKENS, bearer, make_task, publish_tasks, read_events

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_process_votes_then_shuts_down_on_sigterm(pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    task = make_task("a47", 1, prelabel="hate", confidence=0.6)
    publish_tasks(settings, [task])
    from labeltrail.annotate.auth import hash_token

    port = _free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_ANNOTATE_PORT": str(port),
        "LABELTRAIL_ANNOTATE_TOKENS": f"a47={hash_token(TOKENS['a47'])}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "labeltrail.cli", "annotate", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "never became ready"
            time.sleep(0.2)
        served = urllib.request.Request(f"{base}/tasks/next", headers=bearer("a47"))
        with urllib.request.urlopen(served, timeout=10) as r:
            assert json.loads(r.read())["task"]["assignment_id"] == task.assignment_id
        request = urllib.request.Request(
            f"{base}/tasks/{task.assignment_id}",
            data=json.dumps({"label": "hate"}).encode(),
            headers={**bearer("a47"), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"shutting down" in out
    (vote,) = read_events(settings, "votes", want=1)
    assert getattr(vote, "vote_id", None) == outcome_id(task)
