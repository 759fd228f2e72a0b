"""``labeltrail annotate``: run the reference annotation frontend and manage its tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

annotate_app = typer.Typer(help="The reference annotation frontend.", no_args_is_help=True)


@annotate_app.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
    tokens_file: Annotated[
        Path | None, typer.Option(help="File of 'annotator sha256:<hex>' lines.")
    ] = None,
) -> None:
    """Serve tasks from the task topics and produce votes (until SIGTERM)."""
    import logging

    from labeltrail.annotate.server import serve
    from labeltrail.config import AnnotateSettings, Settings
    from labeltrail.exceptions import LabeltrailError
    from labeltrail.kafka.admin import require_kafka

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if tokens_file is not None:
        overrides["tokens_file"] = str(tokens_file)
    settings = Settings()
    # Validated like the environment's values (a port out of range is refused here too).
    annotate = AnnotateSettings.model_validate({**settings.annotate.model_dump(), **overrides})
    settings = settings.model_copy(update={"annotate": annotate})
    try:
        require_kafka(settings)
        serve(settings)
    except LabeltrailError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@annotate_app.command("token")
def token_command(
    annotator: Annotated[str, typer.Argument(help="Annotator id (the task topic key).")],
    tokens_file: Annotated[
        Path | None, typer.Option(help="Append the hash line to this file.")
    ] = None,
) -> None:
    """Make a token: prints it once; only its hash and issue time are stored.

    The token expires LABELTRAIL_ANNOTATE_TOKEN_MAX_AGE after its issue time; delete its line
    from the file to revoke it (a running server re-reads the file when it changes).
    """
    import datetime as dt

    from labeltrail.annotate.auth import ANNOTATOR_ID_PATTERN, hash_token, new_token

    if not ANNOTATOR_ID_PATTERN.match(annotator):
        typer.echo("error: annotator ids are 1-64 of A-Z a-z 0-9 . _ -", err=True)
        raise typer.Exit(2)
    token = new_token()
    issued = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    line = f"{annotator} {hash_token(token)} {issued}"
    if tokens_file is not None:
        with tokens_file.open("a") as fh:
            fh.write(line + "\n")
        typer.echo(f"appended the hash to {tokens_file}", err=True)
    else:
        typer.echo(line, err=True)
    typer.echo(token)


def register(app: typer.Typer) -> None:
    """Add the ``annotate`` group to the main command line."""
    app.add_typer(annotate_app, name="annotate")
