"""What the event listener records (every process state change) and what is read from it
and from the programs' logs: restarts, processes left behind by a supervisord that died,
the frontend's URL."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

from labeltrail.supervise.files import RunDir

__all__ = [
    "frontend_url",
    "listen",
    "orphans",
    "pid_alive",
    "restarts",
    "running_pids",
    "signal_group",
]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pids(run: RunDir) -> dict[str, int]:
    """The PID each program last started with, by the listener's record (``{name: pid}``)."""
    last: dict[str, int] = {}
    try:
        lines = run.events.read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            event = json.loads(line)
            if event["event"] == "PROCESS_STATE_RUNNING":
                last[event["name"]] = int(event["pid"])
    return last


def orphans(run: RunDir) -> dict[str, int]:
    """Programs still running from a supervisord that is gone: ``{name: pid}`` of each last
    started process (by the event listener's record) that is alive and still runs labeltrail.
    Each is its own process group's leader (supervisord starts them so)."""
    found = {}
    for name, pid in running_pids(run).items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-m" in cmdline and any(part.startswith(b"labeltrail.") for part in cmdline):
            found[name] = pid
    return found


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def frontend_url(run: RunDir) -> str | None:
    """The annotation frontend's base URL, as its current process logged it on start (the
    port may have been picked: ``LABELTRAIL_ANNOTATE_PORT=0``); None before it serves."""
    try:
        lines = run.log_of("annotate").read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("labeltrail annotate: shutting down"):
            return None
        if line.startswith("labeltrail annotate: serving "):
            return line.split()[3]
    return None


def restarts(run: RunDir) -> Counter[str]:
    """How often each program was started again after it exited or failed to start (by the
    event listener's record; a start after ``down`` or a manual stop is not a restart)."""
    counts: Counter[str] = Counter()
    try:
        lines = run.events.read_text().splitlines()
    except OSError:
        return counts
    for line in lines:
        with contextlib.suppress(ValueError, KeyError):
            event = json.loads(line)
            if event["event"] == "PROCESS_STATE_STARTING" and event["from_state"] in {
                "EXITED",
                "BACKOFF",
            }:
                counts[event["name"]] += 1
    return counts


def listen(events: Path, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """supervisord event listener: append each process state change to ``events`` as a JSON
    line (``event``, ``name``, ``from_state``, ``pid``, ``expected``, ``time``)."""
    from supervisor import childutils

    while True:
        headers, payload = childutils.listener.wait(stdin, stdout)
        body_line, _, _ = payload.partition("\n")
        body = childutils.get_headers(body_line)
        record = {
            "event": headers["eventname"],
            "name": body.get("processname", ""),
            "from_state": body.get("from_state", ""),
            "pid": body.get("pid"),
            "expected": body.get("expected"),
            "time": time.time(),
        }
        with events.open("a") as out:
            out.write(json.dumps(record) + "\n")
        childutils.listener.ok(stdout)
