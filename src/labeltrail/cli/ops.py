"""``labeltrail up``, ``down``, ``status`` and ``serve``: every service as supervised processes
(:mod:`labeltrail.supervise`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from labeltrail.cli.common import console, fail
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError
from labeltrail.supervise import RUN_DIR, RunDir

__all__ = ["register"]

LOCAL_BROKER = Path("ops/kafka/local_kafka.py")
"""The local broker's script, in a source checkout (run from its root)."""

TOKENS_FILE = Path("var/annotate/tokens.txt")
"""The frontend's tokens file when the environment names none (as in docker-compose.yml)."""

CLUSTER_FILE = "cluster.json"
"""Where ``up`` records the cluster and topic prefix its processes use (no secret)."""

CLUSTER_KEYS = ("kafka_bootstrap_servers", "topic_prefix", "metrics_port", "metrics_host")

RunDirOption = Annotated[
    Path, typer.Option("--run-dir", help="supervisord's config, socket, PID file and logs.")
]


def _embedded_broker(settings: Settings) -> bool:
    """The bootstrap is the default local broker (no cluster configured)."""
    configured = {"KAFKA_BOOTSTRAP_SERVERS", "LABELTRAIL_KAFKA_BOOTSTRAP"} & set(os.environ)
    return not configured and settings.kafka_bootstrap_servers.startswith("127.0.0.1:")


def _broker(settings: Settings, start_broker: bool) -> None:
    """The configured broker answers; on the embedded default, start the local one if not."""
    from labeltrail.kafka.admin import require_kafka

    try:
        require_kafka(settings)
        return
    except LabeltrailError as exc:
        if not (start_broker and _embedded_broker(settings) and LOCAL_BROKER.is_file()):
            raise fail(exc) from exc
    console.print(f"starting the local broker on port {settings.kafka_port}")
    cmd = [sys.executable, str(LOCAL_BROKER), "start", "--port", str(settings.kafka_port)]
    if subprocess.run(cmd, check=False).returncode != 0:
        raise fail(f"the local broker did not start (see {LOCAL_BROKER} status)")


def _frontend_args(settings: Settings) -> list[str] | None:
    """``annotate serve`` arguments: none when the environment configures tokens, the
    default tokens file when it exists, None (do not start it) when there are no tokens."""
    if settings.annotate.tokens_file or settings.annotate.tokens:
        return []
    if TOKENS_FILE.is_file():
        return ["--tokens-file", str(TOKENS_FILE.resolve())]
    return None


def _running_settings(settings: Settings, run_dir: Path) -> Settings:
    """``settings`` on the cluster and prefix that ``up`` recorded under ``run_dir`` (the
    supervised processes use those, whatever this shell's environment says)."""
    recorded = _recorded(run_dir)
    return settings.model_copy(update={k: recorded[k] for k in CLUSTER_KEYS if k in recorded})


def _recorded(run_dir: Path) -> dict[str, Any]:
    """What ``up`` recorded under ``run_dir`` (:data:`CLUSTER_KEYS`), or nothing."""
    try:
        recorded = json.loads(run_dir.joinpath(CLUSTER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def up(
    run_dir: RunDirOption = RUN_DIR,
    without: Annotated[
        list[str] | None, typer.Option("--without", help="A service not to start (repeatable).")
    ] = None,
    start_broker: Annotated[
        bool,
        typer.Option(help="On the embedded default, start the local broker if none answers."),
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every process.")] = 60.0,
    fused: Annotated[
        bool | None,
        typer.Option(
            "--fused/--separate",
            help="Every stage but the scorer and the trainer as one process"
            " (default: LABELTRAIL_FUSED).",
        ),
    ] = None,
) -> None:
    """Start every stage service, the projector and the annotation frontend under supervisord
    (restarted when they exit); running it again starts no duplicate."""
    from labeltrail.kafka.admin import ensure_topics
    from labeltrail.supervise import free_metrics_port, programs
    from labeltrail.supervise import up as start

    settings = Settings()
    _broker(settings, start_broker)
    without = list(without or ())
    frontend_args = _frontend_args(settings)
    if frontend_args is None:
        without.append("annotate")
        console.print(
            f"annotate: not started, no annotator tokens: issue some with `labeltrail annotate"
            f" token ID --tokens-file {TOKENS_FILE}`, then run labeltrail up again",
            highlight=False,
            soft_wrap=True,
        )
    run = RunDir(run_dir)
    try:
        together = settings.fused if fused is None else fused
        progs = programs(without, frontend_args=frontend_args or (), fused=together)
        ensure_topics(settings)  # once, before nine processes race to create them
        environment = {}
        if not settings.metrics_port:  # status reads processed and rejected from /metrics
            port = _recorded(run_dir).get("metrics_port") or free_metrics_port(
                settings.metrics_host
            )
            environment["LABELTRAIL_METRICS_PORT"] = str(port)
            settings = settings.model_copy(update={"metrics_port": port})
        result = start(run, progs, environment=environment, timeout=timeout)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    run.root.joinpath(CLUSTER_FILE).write_text(
        json.dumps({k: getattr(settings, k) for k in CLUSTER_KEYS})
    )
    how = "started" if result.started else "already running"
    console.print(f"supervisord {how} (pid {result.supervisord_pid}); logs in {run_dir}/logs")
    for p in result.processes:
        console.print(f"  {p.name:<12} {p.state:<8} pid {p.pid}")


def down(run_dir: RunDirOption = RUN_DIR) -> None:
    """Stop every supervised process, then supervisord (nothing running: says so, exit 0)."""
    from labeltrail.supervise import down as stop

    try:
        stopped = stop(RunDir(run_dir))
    except LabeltrailError as exc:
        raise fail(exc) from exc
    if stopped is None:
        console.print(f"nothing is running under {run_dir}")
        return
    console.print(f"stopped {', '.join(stopped) or 'nothing'}; supervisord exited")


def _uptime(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def status(
    run_dir: RunDirOption = RUN_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Each supervised process (state, PID, uptime, restarts) and each stage's consumer lag
    per partition and dead letters, read from the configured cluster."""
    from labeltrail.kafka.admin import require_kafka
    from labeltrail.supervise import (
        frontend_url,
        process_status,
        projector_status,
        stage_status,
    )

    settings = Settings()
    run = RunDir(run_dir)
    processes = process_status(run)
    url = frontend_url(run) if processes is not None else None
    if processes is not None:
        settings = _running_settings(settings, run_dir)
    stages = []
    kafka_error = None
    try:
        require_kafka(settings)
        stages = stage_status(settings)
    except LabeltrailError as exc:
        kafka_error = str(exc)
    projector, projector_error = projector_status(settings)
    if as_json:
        doc: dict[str, Any] = {
            "run_dir": str(run_dir),
            "processes": None if processes is None else [asdict(p) for p in processes],
            "frontend_url": url,
            "topic_prefix": settings.topic_prefix,
            "stages": {
                s.name: {
                    "group": s.group,
                    "lag": s.lag,
                    "committed": s.committed,
                    "dead_lettered": s.dead_lettered,
                    "processed": _figure(s, "processed"),
                    "rejected": _figure(s, "rejected"),
                    "healthy": _figure(s, "healthy"),
                    "metrics": s.metrics,
                    "metrics_error": s.metrics_error,
                    "partitions": [{**asdict(p), "lag": p.lag} for p in s.partitions],
                }
                for s in stages
            },
            "projector": {"metrics": projector, "metrics_error": projector_error},
            "kafka_error": kafka_error,
        }
        print(json.dumps(doc, indent=2))
    else:
        _print_status(run_dir, processes, stages, settings.topic_prefix)
        if url:
            print(f"annotation frontend: {url}")
        if projector is not None:
            health = projector.get("health", {}).get("healthy")
            print(f"projector: lag {projector.get('lag')}, healthy {health}")
    if kafka_error is not None:
        raise fail(kafka_error)


def _figure(stage: Any, key: str) -> Any:
    """``processed``, ``rejected`` (all reasons) or ``healthy`` from the stage's metrics."""
    if stage.metrics is None:
        return None
    if key == "healthy":
        return stage.metrics.get("health", {}).get("healthy")
    value = stage.metrics.get(key)
    if isinstance(value, dict):
        return int(sum(value.values()))
    return None if value is None else int(value)


def _print_status(run_dir: Path, processes: Any, stages: Any, prefix: str) -> None:
    """Plain lines (as ``topics list``): a table is never wrapped by the terminal's width."""
    if processes is None:
        print(f"no supervised processes under {run_dir} (labeltrail up starts them)")
    else:
        print(f"{'process':<12} {'state':<9} {'pid':>7} {'uptime':>9} {'restarts':>8}")
        for p in processes:
            uptime = _uptime(p.uptime_s)
            print(f"{p.name:<12} {p.state:<9} {p.pid or '-':>7} {uptime:>9} {p.restarts:>8}")
    if not stages:
        return
    print(f"\nstages on topics {prefix}.*")
    columns = ("lag", "committed", "processed", "rejected", "dead letters", "healthy")
    print(f"{'stage':<12} " + " ".join(f"{c:>12}" for c in columns))
    for s in stages:
        figures = (
            s.lag,
            s.committed,
            _figure(s, "processed"),
            _figure(s, "rejected"),
            s.dead_lettered,
            _figure(s, "healthy"),
        )
        print(f"{s.name:<12} " + " ".join(f"{'-' if f is None else str(f):>12}" for f in figures))
        for p in s.partitions:
            if p.lag:
                print(f"  {p.topic}[{p.partition}] committed {p.committed} end {p.end} lag {p.lag}")
    off = next((s.metrics_error for s in stages if s.metrics_error), None)
    if off:
        print(f"processed, rejected, healthy: - where {off}")


def serve(
    name: Annotated[str, typer.Argument(help="The stage to run, or `fused`.")],
    scalable: Annotated[
        bool,
        typer.Option(help="fused: one worker of several, running only the scalable stages."),
    ] = False,
) -> None:
    """Run one stage service in the foreground until SIGTERM (what `labeltrail up` supervises,
    and `python services/NAME.py` runs); `fused` runs the fused stages as one process."""
    from labeltrail.kafka.serve import serve as run
    from labeltrail.stages import STAGES

    if name == "fused":
        from labeltrail.kafka.fused import serve_fused
        from labeltrail.stages import FUSED, fused

        names = [n for n in FUSED if STAGES[n].scalable] if scalable else list(FUSED)
        raise typer.Exit(serve_fused(lambda config: fused(config, names), scalable=scalable))
    stage = STAGES.get(name)
    if stage is None:
        raise fail(f"unknown stage {name!r}; stages: {', '.join(STAGES)}", 2)
    raise typer.Exit(run(stage.make, scalable=stage.scalable))


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
    app.command("serve")(serve)
