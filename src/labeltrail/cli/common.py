"""What every command group shares: the two consoles, one error exit, the broker preflight."""

from __future__ import annotations

import typer
from rich.console import Console

from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = ["console", "err", "fail", "require_kafka"]

console = Console()
err = Console(stderr=True)


def fail(exc: Exception | str, code: int = 1) -> typer.Exit:
    """Print one error line and return the exit to raise (``raise fail(exc) from exc``).

    soft_wrap: a message is one line however narrow the terminal, so it can be grepped.
    """
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def require_kafka(settings: Settings) -> None:
    """Stop at once with one message when no broker answers (not after librdkafka's retries)."""
    from labeltrail.kafka.admin import require_kafka as preflight

    try:
        preflight(settings)
    except LabeltrailError as exc:
        raise fail(exc) from exc
