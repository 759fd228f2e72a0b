"""``labeltrail report``: write the auditor's HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labeltrail.cli.common import console, err
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = ["report"]


def report(
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("audit-report.html"),
    slice_key: Annotated[str, typer.Option(help="Comment attribute to slice by.")] = "slice",
    attribute: Annotated[str, typer.Option(help="Pool attribute to chart.")] = "locale",
    target: Annotated[str, typer.Option(help="Target pool mix as JSON.")] = "{}",
) -> None:
    """Write a self-contained HTML audit report (no network needed to view it)."""
    from labeltrail.clickhouse.client import client_from
    from labeltrail.report.html import ReportOptions, write_report

    settings = Settings()
    try:
        path = write_report(
            client_from(settings),
            out,
            ReportOptions(slice_key=slice_key, attribute=attribute, target=target),
        )
    except LabeltrailError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"wrote {path}")
