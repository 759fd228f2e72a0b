"""``labeltrail import votes``: a past annotation campaign brought into the log as events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from labeltrail.cli.common import console, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = ["import_app", "votes"]

import_app = typer.Typer(
    help="Bring the history of past campaigns into the log.", no_args_is_help=True
)


ImportFormat = Literal["csv", "label-studio"]


@import_app.command("votes")
def votes(
    path: Annotated[Path, typer.Argument(help="The campaign's file (CSV or Label Studio JSON).")],
    fmt: Annotated[ImportFormat, typer.Option("--format", help="The file's format.")],
    schema_version: Annotated[
        str, typer.Option("--schema-version", help="The published schema the labels are in.")
    ],
    source: Annotated[
        str, typer.Option(help="The source system's name: prefixes annotator and vote ids.")
    ] = "",
    from_name: Annotated[
        str | None, typer.Option(help="Label Studio: the choices control to read.")
    ] = None,
    text_field: Annotated[str, typer.Option(help="Label Studio: the data field of the text.")] = (
        "text"
    ),
) -> None:
    """Import items, annotators, labels and times as CommentPosted, AnnotatorRegistered,
    TaskCreated (reason import) and VoteCast events with their provenance; all or nothing, and
    importing again adds nothing. The live stages then fold them (docs/pipeline.md)."""
    from labeltrail.cli.registry import _schemas
    from labeltrail.exceptions import LineError
    from labeltrail.imports import plan_import, read_annotations
    from labeltrail.kafka.keys import seal_comments
    from labeltrail.kafka.producer import EventProducer

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(exc, 2) from exc
    settings = Settings()
    require_kafka(settings)
    schema = next((s for s in _schemas(settings) if s.version == schema_version), None)
    if schema is None:
        raise fail(f"no schema version {schema_version!r} is published", 2)
    producer = EventProducer(settings)
    errors: list[LineError] = []
    options = {"from_name": from_name, "text_field": text_field} if fmt != "csv" else {}
    try:
        annotations = read_annotations(text, fmt, errors, **options)
        plan = plan_import(
            annotations,
            source=source or fmt,
            schema_version=schema_version,
            classes=schema.classes,
            errors=errors,
            fits=producer.fits,
        )
    except LabeltrailError as exc:
        raise fail(exc, 2) from exc
    try:
        for event in seal_comments(settings, plan.events):
            producer.send(event)
        producer.flush()
    except LabeltrailError as exc:
        raise fail(exc) from exc
    repeats = f" ({plan.repeats} identical repeat(s) imported once)" if plan.repeats else ""
    console.print(
        f"imported {plan.votes} vote(s) on {plan.items} item(s) by {plan.annotators} "
        f"annotator(s), {plan.comments} comment(s){repeats}: {len(plan.events)} event(s)"
    )
