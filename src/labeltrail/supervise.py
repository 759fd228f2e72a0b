"""Every labeltrail service as one supervised set of processes (``labeltrail up``, ``down``,
``status``).

supervisord (the ``supervisor`` package) does the supervising: it starts each stage service,
the projector and the annotation frontend, restarts one that dies, rotates their logs and
stops them (the whole process group) on ``down``. This module only writes its configuration
under the run directory (default ``var/labeltrail/run``), starts it daemonized and talks to it
over its XML-RPC interface on a unix socket there. The one thing supervisord does not keep is
a restart count: a small event listener (:func:`listen`, ``python -m labeltrail.supervise``)
appends every process state change to ``events.jsonl`` and :func:`restarts` counts them.

What the processes are doing comes from Kafka, not from them: each stage's consumer lag per
partition (its group's committed offsets against the log's ends) and the dead letters each
stage wrote (:func:`stage_status`).
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import os
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = [
    "RUN_DIR",
    "ProcessStatus",
    "Program",
    "RunDir",
    "StageStatus",
    "Supervisor",
    "down",
    "frontend_url",
    "listen",
    "process_status",
    "programs",
    "projector_status",
    "render_config",
    "restarts",
    "stage_status",
    "up",
]

RUN_DIR = Path("var/labeltrail/run")
"""Where ``labeltrail up`` keeps supervisord's configuration, socket, PID file and the logs
(relative to the directory it is run from, like the embedded ClickHouse directory)."""

START_SECONDS = 3
"""A process counts as started once it has run this long (supervisord's ``startsecs``)."""

STOP_WAIT_SECONDS = 30
"""SIGTERM, then SIGKILL after this long: a stage finishes its batch and commits first."""


class SupervisorError(LabeltrailError):
    """supervisord could not be started, reached or stopped."""


@dataclass(frozen=True)
class Program:
    """One supervised process: ``python -m labeltrail.cli <args>`` run as ``name``."""

    name: str
    kind: str
    """``stage``, ``projector`` or ``frontend``."""
    args: tuple[str, ...]


def programs(without: Sequence[str] = (), *, frontend_args: Sequence[str] = ()) -> list[Program]:
    """Every stage service of :data:`labeltrail.stages.STAGES`, the projector and the
    annotation frontend (``frontend_args`` added to ``annotate serve``), less the names in
    ``without``."""
    from labeltrail.stages import STAGES

    every = [Program(name, "stage", ("serve", name)) for name in STAGES]
    every.append(Program("projector", "projector", ("projections", "run", "--follow")))
    every.append(Program("annotate", "frontend", ("annotate", "serve", *frontend_args)))
    unknown = set(without) - {p.name for p in every}
    if unknown:
        names = ", ".join(p.name for p in every)
        raise LabeltrailError(f"unknown service(s) {', '.join(sorted(unknown))}; known: {names}")
    return [p for p in every if p.name not in without]


@dataclass(frozen=True)
class RunDir:
    """The files of one supervised set of processes."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.root / "supervisor.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One ``up`` or ``down`` at a time on this directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _ini(value: Path | str) -> str:
    """A value as supervisord reads it (it expands ``%(name)s``: a literal % is doubled)."""
    return str(value).replace("%", "%%")


def render_config(
    run: RunDir,
    progs: Sequence[Program],
    *,
    python: str = sys.executable,
    cwd: Path,
    environment: Mapping[str, str] | None = None,
) -> str:
    """supervisord's configuration: a private unix socket, logs under the run directory, and
    every program restarted whenever it exits, stopped with its whole process group.

    The programs inherit the environment of whoever starts supervisord, plus ``environment``.
    """
    lines = [
        "; written by `labeltrail up`; rewritten on the next one",
        "[unix_http_server]",
        f"file={_ini(run.socket)}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_ini(run.root / 'supervisord.log')}",
        f"pidfile={_ini(run.pidfile)}",
        f"childlogdir={_ini(run.logs)}",
        f"directory={_ini(cwd)}",
        "identifier=labeltrail",
        "nodaemon=false",
        *(
            ["environment=" + ",".join(f'{k}="{_ini(v)}"' for k, v in environment.items())]
            if environment
            else []
        ),
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_ini(run.socket)}",
        "",
        "[eventlistener:restarts]",
        f"command={_ini(python)} -m labeltrail.supervise {_ini(run.events)}",
        "events=PROCESS_STATE",
        "autorestart=true",
        f"directory={_ini(cwd)}",
        "stdout_logfile=NONE",  # the listener's stdout is supervisord's protocol
        f"stderr_logfile={_ini(run.logs / 'restarts.log')}",
    ]
    for prog in progs:
        command = " ".join(_ini(part) for part in (python, "-m", "labeltrail.cli", *prog.args))
        lines += [
            "",
            f"[program:{prog.name}]",
            f"command={command}",
            f"directory={_ini(cwd)}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            "startretries=10",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECONDS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_ini(run.log_of(prog.name))}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=3",
        ]
    return "\n".join(lines) + "\n"


class Supervisor:
    """supervisord's XML-RPC interface on the run directory's unix socket (a context
    manager: its connection is closed on exit)."""

    def __init__(self, run: RunDir) -> None:
        from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

        self.run = run
        self._transport = SupervisorTransport(None, None, f"unix://{run.socket}")
        self._proxy: Any = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=self._transport)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._transport.close()

    @property
    def rpc(self) -> Any:
        """The ``supervisor.*`` namespace of the interface."""
        return self._proxy.supervisor

    def alive(self) -> bool:
        """Whether a supervisord answers on the socket."""
        if not self.run.socket.exists():
            return False
        try:
            return bool(self.rpc.getState()["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Error):
            return False

    def pid(self) -> int:
        return int(self.rpc.getPID())

    def processes(self) -> list[dict[str, Any]]:
        """``getAllProcessInfo``: one dict per program (the restart listener included)."""
        return list(self.rpc.getAllProcessInfo())


@dataclass(frozen=True)
class ProcessStatus:
    """One supervised process as supervisord and the restart listener see it."""

    name: str
    state: str
    pid: int
    uptime_s: int
    restarts: int
    exit_status: int
    log: str


@dataclass
class UpResult:
    started: bool
    """False: a supervisord was already running here; only stopped programs were started."""
    supervisord_pid: int
    processes: list[ProcessStatus] = field(default_factory=list)


def _spawn_supervisord(run: RunDir) -> None:
    """Start supervisord on ``run.conf``; it daemonizes, so this returns once it forked."""
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(run.conf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise SupervisorError(f"supervisord did not start: {message[-1] if message else '?'}")


def _wait(what: str, ready: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SupervisorError(f"{what} within {timeout:g} s")
        time.sleep(0.2)


def up(
    run: RunDir,
    progs: Sequence[Program],
    *,
    cwd: Path | None = None,
    environment: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> UpResult:
    """Start supervisord with ``progs`` and wait until every one has stayed up
    ``START_SECONDS``.

    Idempotent: when a supervisord already runs here, its configuration is brought to
    ``progs`` as ``supervisorctl update`` does (programs added or changed are (re)started,
    those left out stopped) and stopped ones are started; nothing runs twice. Raises
    :class:`SupervisorError` naming the programs that did not start, with the last line of
    each one's log.
    """
    with run.locked(), Supervisor(run) as sup:
        started = not sup.alive()
        run.logs.mkdir(parents=True, exist_ok=True)
        here = (cwd or Path.cwd()).resolve()
        run.conf.write_text(render_config(run, progs, cwd=here, environment=environment))
        if started:
            run.events.unlink(missing_ok=True)  # restarts are counted per supervisord run
            _spawn_supervisord(run)
            _wait("supervisord did not answer", sup.alive, 30.0)
        else:
            [[added, changed, removed]] = sup.rpc.reloadConfig()
            for name in [*removed, *changed]:
                sup.rpc.stopProcessGroup(name, True)
                sup.rpc.removeProcessGroup(name)
            for name in [*added, *changed]:
                sup.rpc.addProcessGroup(name)
            for info in sup.processes():
                if info["statename"] in {"STOPPED", "EXITED", "FATAL"}:
                    sup.rpc.startProcess(info["name"], False)

        def settled() -> bool:
            return all(p["statename"] != "STARTING" for p in sup.processes())

        with contextlib.suppress(SupervisorError):
            _wait("", settled, timeout)
        result = UpResult(started, sup.pid(), process_status(run) or [])
    failed = [p for p in result.processes if p.state != "RUNNING"]
    if failed:
        why = "; ".join(f"{p.name} {p.state}: {_last_line(Path(p.log))}" for p in failed)
        raise SupervisorError(f"not running after {timeout:g} s: {why}")
    return result


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "empty log"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def down(run: RunDir, *, timeout: float = STOP_WAIT_SECONDS + 30.0) -> list[str] | None:
    """Stop every program (SIGTERM to its process group, SIGKILL after ``STOP_WAIT_SECONDS``),
    then supervisord; returns the names stopped, or None when nothing was running here."""
    with run.locked(), Supervisor(run) as sup:
        if not sup.alive():
            return None
        pid = sup.pid()
        names = [p["name"] for p in sup.processes() if p["statename"] == "RUNNING"]
        sup.rpc.stopAllProcesses(True)
        sup.rpc.shutdown()
        _wait(f"supervisord (pid {pid}) did not exit", lambda: not _pid_alive(pid), timeout)
        return sorted(n for n in names if n != "restarts")


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


def process_status(run: RunDir) -> list[ProcessStatus] | None:
    """Every supervised program's state, PID, uptime and restarts; None when no supervisord
    runs here."""
    with Supervisor(run) as sup:
        if not sup.alive():
            return None
        infos = sup.processes()
    counts = restarts(run)
    out = []
    for info in infos:
        if info["name"] == "restarts":
            continue
        running = info["statename"] == "RUNNING"
        out.append(
            ProcessStatus(
                name=info["name"],
                state=info["statename"],
                pid=int(info["pid"]),
                uptime_s=int(info["now"]) - int(info["start"]) if running else 0,
                restarts=counts[info["name"]],
                exit_status=int(info["exitstatus"]),
                log=str(run.log_of(info["name"])),
            )
        )
    return out


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


@dataclass(frozen=True)
class StageStatus:
    """What a stage's consumer group has done, read from Kafka."""

    name: str
    group: str
    partitions: list[Any]
    """:class:`labeltrail.kafka.lag.PartitionLag` of every input partition the group commits."""
    dead_lettered: int
    metrics: dict[str, Any] | None = None
    """What the running stage reports (:func:`labeltrail.kafka.metrics.read`): ``processed``,
    ``rejected`` by reason, ``healthy`` and more; None when metrics are off or it does not
    answer (``metrics_error`` says why)."""
    metrics_error: str | None = None

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def committed(self) -> int:
        """Records the group has dealt with (processed, skipped or rejected): the sum of its
        committed offsets."""
        return sum(p.committed or 0 for p in self.partitions)


def _committed_inputs(name: str) -> list[str]:
    """Topic suffixes whose offsets the stage's group commits: every input, except the
    broadcast registries a scalable stage reads whole outside the group."""
    from labeltrail.kafka.scaleout import BROADCAST_INPUTS
    from labeltrail.stages import STAGES

    stage = STAGES[name]
    fold_class = inspect.signature(stage.make, eval_str=True).return_annotation
    inputs: tuple[str, ...] = fold_class.inputs
    return [s for s in inputs if not (stage.scalable and s in BROADCAST_INPUTS)]


def dead_letters_by_stage(settings: Settings) -> Counter[str]:
    """Dead letters on ``<prefix>.deadletter`` so far, by the stage that wrote them."""
    from labeltrail.events.models import DeadLettered
    from labeltrail.events.topics import topic_name
    from labeltrail.kafka.log import end_positions, read_until

    topic = topic_name(settings.topic_prefix, "deadletter")
    counts: Counter[str] = Counter()
    for event, _position in read_until(settings, end_positions(settings, [topic])):
        if isinstance(event, DeadLettered):
            counts[event.stage] += 1
    return counts


def stage_status(settings: Settings, names: Sequence[str] | None = None) -> list[StageStatus]:
    """Each stage's lag per input partition and its dead letters (the configured cluster)."""
    from labeltrail.events.topics import topic_name
    from labeltrail.kafka.lag import group_lag
    from labeltrail.stages import STAGES

    dead = dead_letters_by_stage(settings)
    out = []
    for name in names if names is not None else list(STAGES):
        group = f"{settings.topic_prefix}.{name}"  # the runners' group (StageRunner.group)
        topics = [topic_name(settings.topic_prefix, s) for s in _committed_inputs(name)]
        metrics, error = _metrics_of(settings, name)
        out.append(
            StageStatus(name, group, group_lag(settings, group, topics), dead[name], metrics, error)
        )
    return out


def projector_status(settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The projector's own figures (its positions live in ClickHouse, which the running
    projector owns, so its lag comes from its metrics server), or why there are none."""
    return _metrics_of(settings, "projector")


def _metrics_of(settings: Settings, service: str) -> tuple[dict[str, Any] | None, str | None]:
    """The service's own figures from its metrics server, or why there are none."""
    from labeltrail.kafka.metrics import metrics_url, read

    url = metrics_url(settings, service)
    if url is None:
        return None, "metrics are off (LABELTRAIL_METRICS_PORT unset)"
    try:
        return read(url), None
    except LabeltrailError as exc:
        return None, str(exc)


METRICS_BASE_PORT = 9400
"""Where ``labeltrail up`` looks for a free block of metrics ports when none is configured."""

METRICS_BLOCK = 10
"""Ports per block: a base port plus each service's offset (``kafka.metrics.PORT_OFFSETS``)."""


def free_metrics_port(host: str, start: int = METRICS_BASE_PORT, tries: int = 50) -> int:
    """The first base port from ``start`` (in steps of a block) whose whole block is free."""
    for base in range(start, start + tries * METRICS_BLOCK, METRICS_BLOCK):
        if all(_port_free(host, base + i) for i in range(METRICS_BLOCK)):
            return base
    raise SupervisorError(f"no free block of {METRICS_BLOCK} metrics ports from {start}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    listen(Path(sys.argv[1]))
