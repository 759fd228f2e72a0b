"""``labeltrail schema ...`` and ``labeltrail annotators ...``: the registries a team loads
from its own files on day one (``docs/first-day.md``).

Each command checks its input whole before anything is sent (exit 2, one message per bad field
or row, nothing published), reads what is already on the log so that the same file twice adds
nothing, and writes events that the projector puts in ClickHouse (``label_schemas``,
``annotators``, ``annotator_suspensions``, ``annotator_reinstatements``).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from labeltrail.audit import emit
from labeltrail.cli.common import console, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.models import LabelSchemaPublished
from labeltrail.exceptions import LabeltrailError
from labeltrail.ontology.files import (
    AnnotatorStatus,
    parse_pool,
    parse_schema_file,
    plan_pool,
    plan_schema,
    status_change,
)

__all__ = ["annotators_app", "schema_app"]

schema_app = typer.Typer(
    help="Label schema versions: classes, questions, guideline, migration policy.",
    no_args_is_help=True,
)
annotators_app = typer.Typer(
    help="The annotator registry: register a pool, list, suspend, reinstate.",
    no_args_is_help=True,
)
Parsed = TypeVar("Parsed")
Planned = TypeVar("Planned")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")]
CheckFlag = Annotated[
    bool, typer.Option("--check", help="Only check the file (no broker); publish nothing.")
]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded on the event).")]
Actor = Annotated[
    str | None, typer.Option("--actor", help="Who acts (recorded; default: your user name).")
]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(exc, 2) from exc


def _connected() -> Settings:
    """The settings, once a broker answers and every topic exists (idempotent)."""
    from labeltrail.kafka.admin import ensure_topics

    settings = Settings()
    require_kafka(settings)
    try:
        ensure_topics(settings)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    return settings


def _on_log(settings: Settings, suffixes: Sequence[str], kinds: frozenset[str]) -> list[Event]:
    from labeltrail.events.topics import topic_name
    from labeltrail.kafka.log import read_kinds

    topics = [topic_name(settings.topic_prefix, s) for s in suffixes]
    try:
        return read_kinds(settings, topics, kinds)
    except LabeltrailError as exc:
        raise fail(exc) from exc


def _publish(settings: Settings, events: Sequence[Event]) -> None:
    from labeltrail.kafka.producer import EventProducer

    producer = EventProducer(settings)
    try:
        producer.send_all(list(events))
        producer.flush()
    except LabeltrailError as exc:
        raise fail(exc) from exc


# schema ------------------------------------------------------------------------------------


def _schemas(settings: Settings) -> list[LabelSchemaPublished]:
    events = _on_log(settings, ["schemas"], frozenset({"LabelSchemaPublished"}))
    return [e for e in events if isinstance(e, LabelSchemaPublished)]


def _schema_row(event: LabelSchemaPublished) -> dict[str, Any]:
    return {
        "version": event.version,
        "supersedes": event.supersedes or "",
        "policy": event.old_label_policy,
        "relabel_classes": event.relabel_classes,
        "classes": event.classes,
        "questions": [q.question_id for q in event.questions],
        "guideline_hash": event.guideline_hash,
        "published_at": event.envelope.occurred_at,
        "producer": event.envelope.producer,
        "event_id": event.event_id,
    }


def _planned(
    path: Path,
    check: bool,
    parse: Callable[[str], Parsed],
    valid: Callable[[Parsed], str],
    plan: Callable[[Settings, Parsed], Planned],
) -> tuple[Settings, Planned] | None:
    """Check the file whole (exit 2 on any problem); with ``check``, stop there (no broker);
    else plan it against the log (exit 2 on a conflict). None when only checked."""
    try:
        parsed = parse(_read(path))
    except LabeltrailError as exc:
        raise fail(f"{path}: {exc}", 2) from exc
    if check:
        console.print(f"{path}: {valid(parsed)}, valid (nothing published)")
        return None
    settings = _connected()
    try:
        return settings, plan(settings, parsed)
    except LabeltrailError as exc:
        raise fail(f"{path}: {exc}", 2) from exc


@schema_app.command("publish")
def schema_publish(
    path: Annotated[Path, typer.Argument(help="The ontology file (YAML).")],
    check: CheckFlag = False,
) -> None:
    """Check an ontology file and publish it as a LabelSchemaPublished; all or nothing, and
    the same file twice adds nothing."""
    planned = _planned(
        path,
        check,
        parse_schema_file,
        lambda parsed: f"schema {parsed.event.version}",
        lambda settings, parsed: (parsed.event.version, plan_schema(parsed, _schemas(settings))),
    )
    if planned is None:
        return
    settings, (version, event) = planned
    if event is None:
        console.print(f"schema {version} is already published: nothing to do")
        return
    _publish(settings, [event])
    replaces = f", supersedes {event.supersedes} ({event.old_label_policy})"
    console.print(
        f"published schema {event.version}: {len(event.classes)} classes, "
        f"{len(event.questions)} questions, guideline {event.guideline_hash}"
        + (replaces if event.supersedes else "")
    )


@schema_app.command("list")
def schema_list(as_json: JsonFlag = False) -> None:
    """Every published schema version, oldest first (the last is the current one)."""
    rows = [_schema_row(e) for e in _schemas(_connected())]
    columns = ("version", "supersedes", "policy", "classes", "guideline_hash", "published_at")
    emit(rows, as_json=as_json, title="label schemas", console=console, columns=columns)


@schema_app.command("show")
def schema_show(
    version: Annotated[str, typer.Argument(help="The schema version, e.g. v3.")],
    as_json: JsonFlag = False,
) -> None:
    """One schema version: classes in order, the questions and their answers, the guideline's
    hash and the migration policy."""
    found = [e for e in _schemas(_connected()) if e.version == version]
    if not found:
        raise fail(f"no schema version {version!r} is published", 3)
    event = found[0]
    if as_json:
        console.file.write(event.model_dump_json(indent=1) + "\n")
        return
    row = _schema_row(event)
    for key in ("version", "supersedes", "policy", "relabel_classes", "guideline_hash"):
        console.print(f"{key:<16} {row[key] or '-'}", highlight=False)
    console.print(f"{'classes':<16} {', '.join(event.classes)}", highlight=False)
    for q in event.questions:
        console.print(f"  {q.question_id}: {q.text} [{' / '.join(q.answers)}]", highlight=False)
    console.print(
        f"{'published':<16} {row['published_at']:%Y-%m-%d %H:%M:%S} UTC by {row['producer']} "
        f"(event {row['event_id']})",
        highlight=False,
    )


# annotators --------------------------------------------------------------------------------


def _status(settings: Settings) -> AnnotatorStatus:
    status = AnnotatorStatus()
    for event in _on_log(settings, ["annotators", "annotators.status"], AnnotatorStatus.kinds):
        status.apply(event)
    return status


@annotators_app.command("register")
def annotators_register(
    path: Annotated[Path, typer.Argument(help="The pool file (CSV with a header).")],
    check: CheckFlag = False,
) -> None:
    """Check a pool file and register each annotator (AnnotatorRegistered); all or nothing,
    and the same file twice adds nothing."""
    planned = _planned(
        path,
        check,
        parse_pool,
        lambda rows: f"{len(rows)} annotator(s)",
        lambda settings, rows: (len(rows), plan_pool(rows, _status(settings).registered.values())),
    )
    if planned is None:
        return
    settings, (n_rows, new) = planned
    if new:
        _publish(settings, new)
    pools = {p: sum(1 for e in new if e.pool == p) for p in ("crowd", "expert")}
    console.print(
        f"registered {len(new)} annotator(s) (crowd {pools['crowd']}, expert "
        f"{pools['expert']}); {n_rows - len(new)} already registered as in the file"
    )


@annotators_app.command("list")
def annotators_list(as_json: JsonFlag = False) -> None:
    """Every registered annotator with pool, locale, languages, consent and status."""
    status = _status(_connected())
    rows = []
    for annotator_id in sorted(status.registered):
        event = status.registered[annotator_id]
        suspension = status.suspended.get(annotator_id)
        rows.append(
            {
                "annotator_id": annotator_id,
                "pool": event.pool,
                "locale": event.locale,
                "languages": event.languages,
                "consented": event.consented,
                "demographics": event.demographics,
                "status": "suspended" if suspension else "active",
                "suspended_by": suspension.actor if suspension else "",
                "suspension_reason": suspension.reason if suspension else "",
            }
        )
    columns = ("annotator_id", "pool", "locale", "languages", "consented", "status")
    emit(rows, as_json=as_json, title="annotators", console=console, columns=columns)


def _change(annotator_id: str, *, suspend: bool, reason: str, actor: str | None) -> None:
    settings = _connected()
    try:
        event = status_change(
            _status(settings),
            annotator_id,
            suspend=suspend,
            reason=reason,
            actor=actor if actor is not None else getpass.getuser(),
        )
    except LabeltrailError as exc:
        raise fail(exc, 2) from exc
    state = "suspended" if suspend else "active"
    if event is None:
        console.print(f"{annotator_id} is already {state}: nothing to do")
        return
    _publish(settings, [event])
    console.print(f"{annotator_id} is {state} (event {event.event_id}, by {event.actor})")


@annotators_app.command("suspend")
def annotators_suspend(
    annotator_id: Annotated[str, typer.Argument(help="The annotator id.")],
    reason: Reason,
    actor: Actor = None,
) -> None:
    """Suspend an annotator (AnnotatorSuspended): tasking gives them no new task."""
    _change(annotator_id, suspend=True, reason=reason, actor=actor)


@annotators_app.command("reinstate")
def annotators_reinstate(
    annotator_id: Annotated[str, typer.Argument(help="The annotator id.")],
    reason: Reason,
    actor: Actor = None,
) -> None:
    """Reinstate a suspended annotator (AnnotatorReinstated)."""
    _change(annotator_id, suspend=False, reason=reason, actor=actor)
