"""``labeltrail up``, ``status`` and ``down`` on the real broker: every service as a process
supervised by supervisord, restarted when killed, lag and dead letters read from Kafka, and
nothing left running afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from labeltrail.annotate.auth import hash_token
from labeltrail.cli import app
from labeltrail.config import Settings
from labeltrail.ingest import parse_comments
from labeltrail.kafka.producer import EventProducer
from labeltrail.stages import STAGES
from labeltrail.supervise import (
    RUN_DIR,
    ProcessStatus,
    RunDir,
    down,
    process_status,
    stage_status,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVERY = {*STAGES, "projector", "annotate"}
COMMENTS = 12


def _comment(i: int) -> str:
    return json.dumps(
        {
            "comment_id": f"c-{i}",
            "video_id": f"v-{i % 3}",
            "author_hash": "9f2c",
            "text": f"comment number {i}",
            "source": "product_log",
            "posted_at": "2024-09-02T10:23:00+00:00",
            "parent_ids": [],
        }
    )


class Ops:
    """The CLI run as a user runs it: its own process, from the working directory ``cwd``
    (so ``var/`` is there), with the test's environment. Polling reads the same figures
    in-process (each CLI start costs seconds on a loaded machine)."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.run = RunDir(cwd / RUN_DIR)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "labeltrail.cli", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def status(self, *args: str) -> str:
        """``labeltrail status`` in this process (its imports are loaded already)."""
        env = {k: v for k, v in self.env.items() if k.startswith(("LABELTRAIL_", "KAFKA_"))}
        result = CliRunner().invoke(
            app, ["status", "--run-dir", str(self.run.root), *args], env=env
        )
        assert result.exit_code == 0, result.output
        return result.output

    def settings(self) -> Settings:
        """The settings the supervised processes run with (metrics port as ``up`` chose it)."""
        recorded = json.loads((self.run.root / "cluster.json").read_text())
        return Settings(
            kafka_bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"],
            topic_prefix=self.env["LABELTRAIL_TOPIC_PREFIX"],
            metrics_port=recorded["metrics_port"],
        )

    def events(self) -> str:
        """The restart listener's record (for a failure's message)."""
        return self.run.events.read_text()

    def processes(self) -> dict[str, ProcessStatus]:
        return {p.name: p for p in process_status(self.run) or []}


def _until(what: str, check: Callable[[], Any], timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _processes_in(cwd: Path) -> list[int]:
    """PIDs of live processes whose working directory is ``cwd``: every supervised program,
    its children and supervisord itself run there."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (
                Path(os.readlink(entry / "cwd")) == cwd
                and (entry / "stat").read_text().split(") ")[1][0] not in "ZX"
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def ops(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Ops]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LABELTRAIL_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "LABELTRAIL_TOPIC_PARTITIONS": "3",
        "LABELTRAIL_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}",
        "LABELTRAIL_ANNOTATE_PORT": "0",
        "LABELTRAIL_ANNOTATE_TOKENS": f"a47 {hash_token('secret-token-a47')}",
    }
    cli = Ops(tmp_path.resolve(), env)
    try:
        yield cli
    finally:
        # In this process, not through the CLI: whatever failed, nothing may outlive the test
        # (a supervisord whose directory pytest deletes would run on unreachable).
        down(cli.run)


def test_up_supervises_every_service_and_down_leaves_nothing_running(ops: Ops) -> None:
    first = ops("up", "--without", "iaa")
    assert "supervisord started" in first.stdout
    procs = ops.processes()
    assert set(procs) == EVERY - {"iaa"}
    assert all(p.state == "RUNNING" for p in procs.values()), procs
    settings = ops.settings()

    # Comments and one record that is no event (dead-lettered by every stage that reads it).
    producer = EventProducer(settings)
    for event in parse_comments([_comment(i).encode() for i in range(COMMENTS)]):
        producer.send(event)
    producer.flush()
    raw = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    raw.produce(f"{settings.topic_prefix}.comments", key=b"c-bad", value=b"\x00 not an event")
    assert raw.flush(30) == 0
    [waiting] = stage_status(settings, ["iaa"])
    assert waiting.committed == 0
    assert waiting.lag == COMMENTS + 1  # not running: every comment is behind
    assert {p.committed for p in waiting.partitions if p.topic.endswith(".comments")} == {None}

    # Again, with iaa: nothing started twice, the missing one added.
    again = ops("up")
    assert "already running" in again.stdout
    procs2 = ops.processes()
    assert set(procs2) == EVERY
    assert all(procs2[n].pid == procs[n].pid for n in procs), "up restarted a process"
    children = _processes_in(ops.cwd)
    assert len(children) >= len(EVERY) + 2  # the programs, the listener and supervisord

    # kill -9 a stage: supervisord starts it again, and the restart is counted.
    os.kill(procs2["tasking"].pid, signal.SIGKILL)
    restarted = _until(
        "tasking restarted",
        lambda: (
            (p := ops.processes()["tasking"]).state == "RUNNING"
            and p.pid != procs2["tasking"].pid
            and p
        ),
    )
    assert restarted.restarts == 1, ops.events()

    # Every stage reading comments deals with all of them, the bad one dead-lettered.
    def caught_up() -> bool:
        readers = stage_status(settings, ["scorer", "iaa"])
        return all(s.lag == 0 and s.dead_lettered == 1 for s in readers)

    _until("the comment readers caught up", caught_up, timeout=120)
    doc = json.loads(ops.status("--json"))
    assert doc["topic_prefix"] == settings.topic_prefix
    assert {p["name"]: p["restarts"] for p in doc["processes"]}["tasking"] == 1
    scorer = doc["stages"]["scorer"]
    comments = [p for p in scorer["partitions"] if p["topic"].endswith(".comments")]
    assert len(comments) == 3  # one row per partition
    assert all(p["committed"] == p["end"] and p["lag"] == 0 for p in comments)
    assert sum(p["end"] for p in comments) == COMMENTS + 1
    assert scorer["committed"] >= COMMENTS + 1
    assert scorer["dead_lettered"] == 1
    # the scorer's own counters, from its metrics server (started before the comments came)
    assert scorer["processed"] == COMMENTS and scorer["rejected"] == 1, scorer["metrics_error"]
    assert scorer["healthy"] is True
    assert doc["frontend_url"].startswith("http://127.0.0.1:")  # the port it picked
    assert doc["projector"]["metrics"]["stage"] == "projector", doc["projector"]
    text = ops.status()
    assert "restarts" in text and "dead letters" in text and "tasking" in text

    pids = [p.pid for p in ops.processes().values()]
    stopped = ops("down")
    assert "supervisord exited" in stopped.stdout
    assert _processes_in(ops.cwd) == [], "processes left running after down"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    quiet = ops("down")
    assert "nothing is running" in quiet.stdout
    assert process_status(ops.run) is None
    assert "no supervised processes" in ops.status()


def test_down_stops_what_a_dead_supervisord_left_running(ops: Ops) -> None:
    """supervisord killed: its programs run on, `up` refuses to start a second copy of them,
    `down` stops them."""
    ops("up", *(arg for name in sorted(EVERY - {"iaa"}) for arg in ("--without", name)))
    iaa = ops.processes()["iaa"].pid
    supervisord = int(ops.run.pidfile.read_text())
    os.kill(supervisord, signal.SIGKILL)
    _until("supervisord gone", lambda: process_status(ops.run) is None)
    os.kill(iaa, 0)  # still running, orphaned

    refused = ops("up", check=False)
    assert refused.returncode == 1
    assert f"iaa {iaa}" in refused.stderr and "labeltrail down" in refused.stderr

    assert "stopped iaa" in ops("down").stdout
    assert _processes_in(ops.cwd) == []
    assert "nothing is running" in ops("down").stdout


def test_up_starts_the_local_broker_only_on_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from labeltrail.cli.ops import _embedded_broker

    for name in ("KAFKA_BOOTSTRAP_SERVERS", "LABELTRAIL_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABELTRAIL_KAFKA_PORT", "19092")
    assert _embedded_broker(Settings())
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")  # a cluster chosen
    assert not _embedded_broker(Settings())
