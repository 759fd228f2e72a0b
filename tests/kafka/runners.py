"""Run a fold under either runner on the real broker and report what it did, the same way.

``confluent``: the :class:`StageRunner` (or, for a scalable stage, its scale-out worker) in a
thread. ``faust``: ``python -m labeltrail.kafka.faust_stage`` in a subprocess, whose status
file gives the counters. Either way the fold comes from a ``MODULE:FACTORY`` spec, a callable
``Settings -> Fold`` the subprocess can import.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from labeltrail.config import Settings
from labeltrail.folds.base import Fold
from labeltrail.kafka.runner import StageRunner
from labeltrail.kafka.scaleout import GroupStageRunner

REPO = Path(__file__).resolve().parents[2]
RUNNERS = ("confluent", "faust")


@dataclass
class Outcome:
    """What one run of a stage did: its counters, its consumer group, how it ended."""

    stats: dict[str, Any]
    group: str
    code: int
    """0 after a clean stop; 1 when the stage failed."""
    error: BaseException | None = None
    log: str = ""


def load(spec: str) -> Callable[[Settings], Fold]:
    module, _, attr = spec.partition(":")
    return cast(Callable[[Settings], Fold], getattr(importlib.import_module(module), attr))


def run_stage(
    runner: str,
    spec: str,
    settings: Settings,
    tmp: Path,
    *,
    consumed: int | None = None,
    finite: bool = False,
    scalable: bool = False,
    timeout: float = 120,
) -> Outcome:
    """Run until caught up (with ``consumed`` records read, if given) or failed, then stop."""
    if runner == "confluent":
        return _confluent(spec, settings, consumed, finite, scalable, timeout)
    proc = start_faust(spec, settings, tmp, finite=finite)
    status: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            status = faust_status(tmp)
            if status.get("caught_up") and consumed in (None, status.get("consumed")):
                break
            time.sleep(0.2)
        else:
            if proc.poll() is None:
                pytest.fail(f"faust did not catch up: {status}\n{faust_log(tmp)[-3000:]}")
    finally:
        code = stop_faust(proc, tmp)
    status = faust_status(tmp) or status
    return Outcome(status, str(status.get("app_id", "")), code, log=faust_log(tmp))


def _confluent(
    spec: str,
    settings: Settings,
    consumed: int | None,
    finite: bool,
    scalable: bool,
    timeout: float,
) -> Outcome:
    make = load(spec)
    runner = (
        GroupStageRunner(lambda: make(settings), settings, finite=finite)
        if scalable
        else StageRunner(make(settings), settings, finite=finite)
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run(stop, idle_seconds=0.5)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"runner-{spec}")
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not errors:
            done = runner.caught_up.is_set()
            if done and consumed in (None, runner.stats.consumed):
                break
            assert time.monotonic() < deadline, f"the runner did not catch up: {runner.stats}"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(60)
    stats = asdict(runner.stats)
    stats["reasons"] = dict(runner.stats.reasons)
    error = errors[0] if errors else None
    return Outcome(stats, runner.group, 1 if error else 0, error)


def start_faust(
    spec: str, settings: Settings, tmp: Path, *, finite: bool = False, name: str = "faust"
) -> subprocess.Popen[bytes]:
    """The faust worker of ``spec`` as a subprocess; status and log files under ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "TMPDIR": str(tmp),  # faust's data directory lives under it
    }
    args = [sys.executable, "-m", "labeltrail.kafka.faust_stage", spec]
    args += ["--status-file", str(tmp / "status.json"), "--stall-seconds", "20"]
    if finite:
        args.append("--finite")
    log = open(tmp / "faust.log", "wb")  # noqa: SIM115 - closed with the process
    try:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def faust_status(tmp: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((tmp / "status.json").read_text()))
    except (OSError, ValueError):
        return {}


def faust_log(tmp: Path) -> str:
    try:
        return (tmp / "faust.log").read_text()
    except OSError:
        return ""


def stop_faust(proc: subprocess.Popen[bytes], tmp: Path) -> int:
    """SIGTERM (a clean stop commits what is acknowledged); the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        pytest.fail("faust worker ignored SIGTERM:\n" + faust_log(tmp)[-3000:])


def start_service(
    stage: str, runner: str, settings: Settings, tmp: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """``services/<stage>.py`` under ``LABELTRAIL_RUNNER=runner``; the process and its log."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_RUNNER": runner,
        "TMPDIR": str(tmp),
    }
    log_path = tmp / "service.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    try:
        args = [sys.executable, str(REPO / "services" / f"{stage}.py")]
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    return proc, log_path
