"""``labeltrail feedback ingest`` and ``labeltrail audit overturns``: production feedback in,
and how often the expert reviews it opened overturned a label."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from labeltrail.cli.common import console, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = ["feedback_app", "overturns", "register"]

feedback_app = typer.Typer(
    help="Production feedback: user flags, appeals, moderator overrides.", no_args_is_help=True
)

OverturnKey = Literal["class", "slice", "schema_version", "annotator", "kind"]
OVERTURN_COLUMNS = (
    "by",
    "key",
    "reviews",
    "decided",
    "upheld",
    "overturned",
    "overturn_rate",
    "pending",
)


@feedback_app.command("ingest")
def ingest(
    path: Annotated[str, typer.Argument(help="JSON-lines file of feedback, or - for stdin.")],
) -> None:
    """Validate feedback and produce it as FeedbackReceived; all or nothing.

    Each line: feedback_id, comment_id, kind (user_flag, appeal, moderator_override),
    actor_hash, at (ISO 8601 with a zone), and optional label (required for an override),
    actor_kind and note. Ingesting a file again adds nothing.
    """
    from labeltrail.cli.main import _read_lines
    from labeltrail.feedback import parse_feedback
    from labeltrail.kafka.producer import EventProducer

    settings = Settings()
    lines = _read_lines(path)
    require_kafka(settings)
    producer = EventProducer(settings)
    try:
        events = parse_feedback(lines, fits=producer.fits)
    except LabeltrailError as exc:
        raise fail(exc, 2) from exc
    try:
        for event in events:
            producer.send(event)
        producer.flush()
    except LabeltrailError as exc:
        raise fail(exc) from exc
    kinds = {kind: sum(e.kind == kind for e in events) for kind in sorted({e.kind for e in events})}
    shown = ", ".join(f"{kind} {n}" for kind, n in kinds.items()) or "none"
    console.print(f"produced {len(events)} feedback event(s): {shown}")


def overturns(
    by: Annotated[
        OverturnKey,
        typer.Option(
            help="Group by the label's class, a comment slice, schema version, "
            "annotator of the label, or feedback kind."
        ),
    ] = "class",
    slice_key: Annotated[str, typer.Option(help="Comment attribute to slice by.")] = "slice",
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Expert reviews opened by production feedback (appeals and overrides that contradicted a
    label) and the share whose verdict overturned the label, per group."""
    from labeltrail.audit import emit
    from labeltrail.cli.audit import run_query

    rows = run_query("overturns", by=by, slice_key=slice_key)
    emit(
        rows, as_json=as_json, title=f"overturns by {by}", console=console, columns=OVERTURN_COLUMNS
    )


def register(app: typer.Typer, audit_app: typer.Typer) -> None:
    """Add ``labeltrail feedback`` and ``labeltrail audit overturns``."""
    app.add_typer(feedback_app, name="feedback")
    audit_app.command("overturns")(overturns)
