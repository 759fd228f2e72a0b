"""``labeltrail export ...``: create a versioned export, verify one against the log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = ["export_app"]

export_app = typer.Typer(help="Versioned, reproducible training exports.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(exc: Exception, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code)


def _time(value: str) -> dt.datetime:
    if value == "now":
        return dt.datetime.now(dt.UTC)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@export_app.command("create")
def create(
    schema_version: Annotated[str, typer.Option("--schema-version", help="Schema version.")],
    out: Annotated[Path, typer.Option(help="Directory to write the export under.")] = Path(
        "exports"
    ),
    at: Annotated[str, typer.Option(help="Time the export stands at (ISO-8601) or 'now'.")] = (
        "now"
    ),
) -> None:
    """Write Parquet and JSONL rows and a manifest; record ExportCreated with its hash."""
    from labeltrail.clickhouse.client import apply_ddl, connect
    from labeltrail.export.build import create_export

    settings = Settings()
    try:
        client = connect(settings.clickhouse_dsn)
        apply_ddl(client)
        event = create_export(
            client, settings, schema_version=schema_version, out_dir=out, as_of=_time(at)
        )
    except (LabeltrailError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(f"export {event.export_id}: {event.row_count} rows, {event.content_hash}")
    console.print(event.uri)


@export_app.command("verify")
def verify(
    export: Annotated[str, typer.Argument(help="Export id, export directory or manifest.json.")],
) -> None:
    """Rebuild an export from the log up to its positions and check its content hash."""
    from labeltrail.export.build import find_export, verify_export

    settings = Settings()
    try:
        result = verify_export(settings, find_export(settings, export))
    except LabeltrailError as exc:
        raise _fail(exc) from exc
    console.print(f"recorded {result.recorded_hash}")
    console.print(f"rebuilt  {result.rebuilt_hash} ({result.rebuilt_rows} rows from the log)")
    if result.file_hash is not None:
        console.print(f"file     {result.file_hash}")
    if not result.ok:
        raise _fail(LabeltrailError(f"export {result.export_id} does NOT reproduce"), 4)
    console.print(f"export {result.export_id} reproduces from the log")
