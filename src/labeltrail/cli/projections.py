"""``labeltrail projections ...``: apply the DDL, run the projector, rebuild, compare checksums."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from labeltrail.cli.common import console, fail
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

if TYPE_CHECKING:
    from labeltrail.clickhouse.endpoint import ReadEndpoint
    from labeltrail.clickhouse.projector import Projector

__all__ = ["projections_app"]

projections_app = typer.Typer(help="ClickHouse projections.", no_args_is_help=True)


@projections_app.command("apply")
def apply() -> None:
    """Apply the ClickHouse DDL in projections/ddl (idempotent)."""
    from labeltrail.clickhouse.client import apply_ddl, client_from

    try:
        applied = apply_ddl(client_from(Settings(), own=True))
    except LabeltrailError as exc:
        raise fail(exc) from exc
    console.print("applied " + ", ".join(applied))


@projections_app.command("run")
def run(
    follow: Annotated[bool, typer.Option(help="Keep projecting after catching up.")] = False,
    batch_size: Annotated[int, typer.Option(help="Records per batch.")] = 5_000,
) -> None:
    """Project every topic into ClickHouse, resuming at the recorded positions.

    On a chdb directory it also serves the engine read-only over ClickHouse's HTTP interface
    (``LABELTRAIL_CLICKHOUSE_HTTP_PORT``), so readers query while it projects.
    """
    from labeltrail.clickhouse.client import apply_ddl, chdb_directory, client_from
    from labeltrail.clickhouse.projector import Projector
    from labeltrail.clickhouse.rebuild import run_until_caught_up
    from labeltrail.kafka.admin import require_kafka

    settings = Settings()
    try:
        require_kafka(settings)
        client = client_from(settings, own=True)
        apply_ddl(client)
        projector = Projector(client, settings, batch_size=batch_size)
        with contextlib.ExitStack() as serving:
            directory = chdb_directory(settings.clickhouse_dsn)
            if directory is not None:
                endpoint = serving.enter_context(_read_endpoint(settings, directory, projector))
                console.print(f"serving {directory} read-only at {endpoint.url}", highlight=False)
            if follow:
                stop = threading.Event()  # SIGTERM (supervisord, `labeltrail down`) ends a batch
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                projector.run(stop)
            else:
                run_until_caught_up(projector)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    s = projector.stats
    console.print(f"projected {s.projected}, rejected {s.rejected}, batches {s.batches}")


def _read_endpoint(settings: Settings, directory: Path, projector: Projector) -> ReadEndpoint:
    from labeltrail.clickhouse.client import engine_session
    from labeltrail.clickhouse.endpoint import ReadEndpoint

    return ReadEndpoint(
        lambda: engine_session(directory),
        projector.engine_lock,
        host=settings.clickhouse_http_host,
        port=settings.clickhouse_http_port,
        directory=directory,
    )


@projections_app.command("endpoint")
def endpoint() -> None:
    """Print the URL where the running projector serves its chdb directory read-only."""
    from labeltrail.clickhouse.client import chdb_directory, live_endpoint

    directory = chdb_directory(Settings().clickhouse_dsn)
    if directory is None:
        raise fail("the configured ClickHouse is a server (LABELTRAIL_CLICKHOUSE_DSN): query it")
    url, why_not = live_endpoint(directory)
    if url is None:
        raise fail(f"no projector serves {directory}: {why_not}")
    print(url)


@projections_app.command("rebuild")
def rebuild(
    into: Annotated[
        str, typer.Option(help="DSN of the fresh database; default <dsn>-rebuild-<time>.")
    ] = "",
) -> None:
    """Replay the whole log into a fresh database (the live one is not touched)."""
    from labeltrail.clickhouse.rebuild import rebuild as do_rebuild
    from labeltrail.kafka.admin import require_kafka

    settings = Settings()
    target = into or f"{settings.clickhouse_dsn}-rebuild-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    try:
        require_kafka(settings)
        result = do_rebuild(settings, target)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    console.print(
        f"rebuilt {target}: {result.stats.projected} events in {result.seconds:.1f}s "
        f"({result.rate:,.0f} events/s), {result.stats.rejected} undecodable"
    )


@projections_app.command("checksum")
def checksum(
    dsn: Annotated[str, typer.Option(help="DSN to check; default the configured one.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Row count and content checksum of every table (compare a rebuild with the live run)."""
    from labeltrail.clickhouse.client import client_from
    from labeltrail.clickhouse.writer import table_checksums

    try:
        sums = table_checksums(client_from(Settings(), dsn=dsn or None))
    except LabeltrailError as exc:
        raise fail(exc) from exc
    if as_json:
        print(json.dumps({t: {"rows": n, "checksum": f"{c:016x}"} for t, (n, c) in sums.items()}))
        return
    for table, (n, c) in sums.items():
        console.print(f"{table:<24} {n:>12,}  {c:016x}")
