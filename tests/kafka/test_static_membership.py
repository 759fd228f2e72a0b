"""A scalable stage killed with SIGKILL and started again gets its partitions back at once.

Without static membership the group waits for the dead worker's session to time out before
it rebalances (45 s at librdkafka's default, the "idle about 40 s" a reviewer saw); with a
stable ``LABELTRAIL_GROUP_INSTANCE_ID`` the restarted worker takes its old place without a
rebalance. Both are measured here, from the restarted process's "reading" line (imports done)
to its "assigned" line, with a 15 s session timeout.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labeltrail.config import Settings
from labeltrail.kafka.admin import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SESSION_TIMEOUT_MS = 15_000
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?: (reading|assigned) ", re.M)


def _start(settings: Settings, log: Path, instance: str | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
    }
    env.pop("LABELTRAIL_GROUP_INSTANCE_ID", None)
    if instance:
        env["LABELTRAIL_GROUP_INSTANCE_ID"] = instance
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "services/consensus.py"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


def _stamps(log: Path) -> list[tuple[str, dt.datetime]]:
    return [
        (what, dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f"))
        for when, what in _STAMP.findall(log.read_text())
    ]


def _wait_assigned(log: Path, runs: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while sum(what == "assigned" for what, _ in _stamps(log)) < runs:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"not assigned: {log.read_text()[-3000:]}"
        time.sleep(0.2)


def _restart_wait(settings: Settings, log: Path, instance: str | None) -> float:
    """Seconds a restarted worker waits for its partitions after a SIGKILL of the first."""
    first = _start(settings, log, instance)
    try:
        _wait_assigned(log, 1, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    second = _start(settings, log, instance)
    try:
        _wait_assigned(log, 2, second)
    finally:
        second.terminate()
        second.wait(60)
    stamps = _stamps(log)
    reading = [t for what, t in stamps if what == "reading"][-1]
    assigned = [t for what, t in stamps if what == "assigned"][-1]
    return (assigned - reading).total_seconds()


def test_a_restarted_worker_gets_its_partitions_back_at_once(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(pipeline_settings)
    static = _restart_wait(pipeline_settings, tmp_path / "static.log", "consensus-1")
    other = pipeline_settings.model_copy(
        update={"topic_prefix": pipeline_settings.topic_prefix + "d"}
    )
    ensure_topics(other)
    dynamic = _restart_wait(other, tmp_path / "dynamic.log", None)
    print(f"restart to assignment: static {static:.2f} s, dynamic {dynamic:.2f} s")
    assert static < 5.0, static
    assert dynamic > static, (static, dynamic)
