"""supervisord itself: its configuration, starting and stopping it, and its view of each
program (over its XML-RPC interface on the run directory's unix socket)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeltrail.exceptions import LabeltrailError
from labeltrail.supervise.events import (
    orphans,
    pid_alive,
    restarts,
    running_pids,
    signal_group,
)
from labeltrail.supervise.files import (
    START_SECONDS,
    STOP_WAIT_SECONDS,
    RunDir,
    SupervisorError,
)

__all__ = [
    "ProcessStatus",
    "Program",
    "Supervisor",
    "UpResult",
    "down",
    "process_status",
    "programs",
    "render_config",
    "up",
]


@dataclass(frozen=True)
class Program:
    """One supervised process: ``python -m labeltrail.cli <args>`` run as ``name``."""

    name: str
    kind: str
    """``stage``, ``projector`` or ``frontend``."""
    args: tuple[str, ...]


def programs(
    without: Sequence[str] = (), *, frontend_args: Sequence[str] = (), fused: bool = False
) -> list[Program]:
    """Every stage service of :data:`labeltrail.stages.STAGES`, the projector and the
    annotation frontend (``frontend_args`` added to ``annotate serve``), less the names in
    ``without``. ``fused``: the stages of :data:`labeltrail.stages.FUSED` as one process,
    ``fused`` (docs/streaming.md)."""
    from labeltrail.stages import FUSED, STAGES

    every = [Program(name, "stage", ("serve", name)) for name in STAGES]
    if fused:
        every = [p for p in every if p.name not in FUSED]
        every.insert(0, Program("fused", "stage", ("serve", "fused")))
    every.append(Program("projector", "projector", ("projections", "run", "--follow")))
    every.append(Program("annotate", "frontend", ("annotate", "serve", *frontend_args)))
    unknown = set(without) - {p.name for p in every}
    if unknown:
        names = ", ".join(p.name for p in every)
        raise LabeltrailError(f"unknown service(s) {', '.join(sorted(unknown))}; known: {names}")
    return [p for p in every if p.name not in without]


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
        left = orphans(run) if started else {}
        if left:
            pids = ", ".join(f"{n} {p}" for n, p in sorted(left.items()))
            raise SupervisorError(
                f"processes of a supervisord that is gone still run here ({pids}); "
                "labeltrail down stops them"
            )
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

        def recorded() -> bool:
            """The listener has written down every running program's PID, so a supervisord
            that dies from now on leaves no process that :func:`orphans` cannot find."""
            running = {p["pid"] for p in sup.processes() if p["statename"] == "RUNNING"}
            return running <= set(running_pids(run).values())

        with contextlib.suppress(SupervisorError):
            _wait("", settled, timeout)
            _wait("", recorded, timeout)
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


def down(run: RunDir, *, timeout: float = STOP_WAIT_SECONDS + 30.0) -> list[str] | None:
    """Stop every program (SIGTERM to its process group, SIGKILL after ``STOP_WAIT_SECONDS``),
    then supervisord; returns the names stopped, or None when nothing was running here.

    When supervisord itself died (killed, out of memory), its programs keep running: those
    are found through the event listener's record and stopped the same way.
    """
    with run.locked(), Supervisor(run) as sup:
        if not sup.alive():
            left = orphans(run)
            for pgid in left.values():
                signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            while any(pid_alive(p) for p in left.values()) and time.monotonic() < deadline:
                time.sleep(0.2)
            for pgid in left.values():
                signal_group(pgid, signal.SIGKILL)
            return sorted(n for n in left if n != "restarts") if left else None
        pid = sup.pid()
        names = [p["name"] for p in sup.processes() if p["statename"] == "RUNNING"]
        sup.rpc.stopAllProcesses(True)
        sup.rpc.shutdown()
        _wait(f"supervisord (pid {pid}) did not exit", lambda: not pid_alive(pid), timeout)
        return sorted(n for n in names if n != "restarts")


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
