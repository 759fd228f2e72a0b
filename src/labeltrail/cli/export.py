"""``labeltrail export ...``: create a versioned export, verify one against the log."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from labeltrail.cli.common import console, err, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = ["export_app"]

export_app = typer.Typer(help="Versioned, reproducible training exports.", no_args_is_help=True)


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
    run: Annotated[
        str,
        typer.Option(
            help="Export the labels of this labeling run (labeltrail relabel); 'weak': the "
            "weak stage's machine-made labels, never exported otherwise."
        ),
    ] = "",
) -> None:
    """Write Parquet and JSONL rows and a manifest; record ExportCreated with its hash."""
    from labeltrail.clickhouse.client import apply_ddl, client_from
    from labeltrail.export.build import create_export

    settings = Settings()
    require_kafka(settings)
    try:
        client = client_from(settings)
        apply_ddl(client)
        event = create_export(
            client,
            settings,
            schema_version=schema_version,
            out_dir=out,
            as_of=_time(at),
            run=run,
        )
    except (LabeltrailError, ValueError) as exc:
        raise fail(exc) from exc
    console.print(f"export {event.export_id}: {event.row_count} rows, {event.content_hash}")
    console.print(event.uri)


def _as_directory(reference: str) -> Path | None:
    """The export directory a reference names, or None for an export id."""
    from labeltrail.export.manifest import MANIFEST

    path = Path(reference)
    if path.name == MANIFEST and path.is_file():
        return path.parent
    if path.is_dir() or "/" in reference or os.sep in reference:
        return path
    return None


@export_app.command("verify")
def verify(
    export: Annotated[
        str, typer.Argument(help="Export directory (or its manifest.json), or an export id.")
    ],
) -> None:
    """Check an export against the log: rebuild its rows up to its positions and compare.

    Given a directory, also check every file in it against its manifest (sha256 of the bytes,
    missing and extra files), the manifest against its own hash and the ExportCreated on the
    log, and the Parquet rows against the rebuilt ones. Given an id, only the log is checked.
    Exit 4 names every problem found.
    """
    from labeltrail.export.build import find_export, verify_directory, verify_export

    settings = Settings()
    require_kafka(settings)
    directory = _as_directory(export)
    try:
        if directory is None:
            result = verify_export(settings, find_export(settings, export))
        elif not directory.is_dir():
            raise LabeltrailError(f"no export directory at {directory}")
        else:
            result = verify_directory(settings, directory)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    console.print(f"recorded {result.recorded_hash}", soft_wrap=True)
    console.print(
        f"rebuilt  {result.rebuilt_hash} ({result.rebuilt_rows} rows from the log)",
        soft_wrap=True,
    )
    if directory is None:
        console.print("files    not checked (give the export directory to check its files)")
    else:
        checked = ", ".join(result.checked_files) or "none"
        console.print(f"files    {checked} in {directory}", soft_wrap=True, highlight=False)
    if result.erased:
        shown = ", ".join(result.erased[:5]) + (" ..." if len(result.erased) > 5 else "")
        console.print(
            f"erased   {len(result.erased)} comment(s) since (their labels still verify; their "
            f"text and author read as erased): {shown}",
            soft_wrap=True,
            highlight=False,
        )
    for problem in result.problems:
        err.print(f"[bold red]problem:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    if not result.ok:
        raise fail(LabeltrailError(f"export {result.export_id} does NOT verify"), 4)
    console.print(f"export {result.export_id} verifies against the log", soft_wrap=True)
