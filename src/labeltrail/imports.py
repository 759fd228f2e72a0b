"""Past annotation campaigns as events: ``labeltrail import votes``, all or nothing.

A team's history (items, annotators, labels, times) becomes the events the live pipeline would
have written, so reliability, agreement over time and labels start from it; the live stages
then fold them as usual (consensus commits the items whose agreement passes the gate and asks
an expert for the others, like any crowd item):

- ``CommentPosted`` for an item whose text is given (source ``pool``, posted at its first
  annotation; attributes ``import_source``, ``original_id`` and any ``attr.*`` columns);
- ``AnnotatorRegistered`` per annotator: pool ``crowd``, locale ``und``, consent unknown, so no
  demographics; the id is ``<source>:<original id>`` so it never collides with a live one;
- ``TaskCreated`` per item: kind ``crowd``, reason ``import``, redundancy its number of
  annotators, assigned to them (what consensus checks votes against);
- ``VoteCast`` per annotation, at its original time; the vote id is
  ``<source>:<original annotation id>`` (or ``<source>:<item>:<annotator>``).

No ``TaskAssigned``: nothing reads it for agreement, reliability or labels, and an annotation
frontend would list it as open work. Every event's producer is ``import:<source>``, and every
id is derived from the source and the original ids, so importing a file again adds nothing.

Two formats (:data:`FORMATS`): a CSV of one annotation per row, and Label Studio's JSON export
(a list of tasks, each with several annotations). Problems are
:class:`~labeltrail.exceptions.LineError` (CSV: the file's line; Label Studio: the task's place
in the list) and the whole input is refused: a missing or unparsable field, a label that is
not a class of the schema, an annotator given in an unknown format, the same item and
annotator with two different labels (a conflicting duplicate; an identical repeat is one
annotation). Which schema version the labels are in is the caller's choice.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from labeltrail.events.base import Event
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    AnnotatorRegistered,
    TaskCreated,
    VoteCast,
)
from labeltrail.exceptions import InvalidLinesError, LineError
from labeltrail.ingest import (
    RecordFits,
    aware_time,
    describe,
    ingested_comment,
    record_problem,
    shorten,
    unlimited,
)

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "Annotation",
    "ImportPlan",
    "InvalidImportError",
    "plan_import",
    "read_annotations",
    "read_csv",
    "read_label_studio",
]

Format = Literal["csv", "label-studio"]
FORMATS: tuple[str, ...] = ("csv", "label-studio")

CSV_COLUMNS = ("item_id", "annotator_id", "label", "annotated_at")
"""Required CSV columns; optional: text, annotation_id, confidence, time_spent_ms, and
``attr.<name>`` columns (the comment's attributes, e.g. ``attr.slice``)."""


class InvalidImportError(InvalidLinesError):
    """One or more annotations of a past campaign are invalid; nothing was produced."""

    what = "import record"


@dataclass(frozen=True)
class Annotation:
    """One annotation of a past campaign, as read (``line``: where it was read)."""

    line: int
    item_id: str
    annotator_id: str
    label: str
    at: dt.datetime
    text: str | None = None
    annotation_id: str | None = None
    confidence: float | None = None
    time_spent_ms: int = 0
    attributes: dict[str, str] = field(default_factory=dict)


def read_csv(text: str, errors: list[LineError]) -> list[Annotation]:
    """The annotations of a CSV (:data:`CSV_COLUMNS`); problems go to ``errors``."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        errors.append(LineError(1, f"missing column(s): {', '.join(missing)}"))
        return []
    out: list[Annotation] = []
    for row in reader:
        line = reader.line_num
        try:
            confidence = row.get("confidence") or None
            spent = row.get("time_spent_ms") or "0"
            out.append(
                Annotation(
                    line=line,
                    item_id=_required(row, "item_id"),
                    annotator_id=_required(row, "annotator_id"),
                    label=_required(row, "label"),
                    at=aware_time(row.get("annotated_at"), "annotated_at"),
                    text=row.get("text") or None,
                    annotation_id=row.get("annotation_id") or None,
                    confidence=None if confidence is None else float(confidence),
                    time_spent_ms=int(spent),
                    attributes={
                        k.removeprefix("attr."): v
                        for k, v in row.items()
                        if k and k.startswith("attr.") and v
                    },
                )
            )
        except ValueError as exc:
            errors.append(LineError(line, str(exc)))
    return out


def _required(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: required")
    return value.strip()


def _annotator(value: object) -> str:
    """Label Studio's ``completed_by``: a user id, or an object with one (never an email)."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise ValueError(
            f"completed_by: unknown annotator format {shorten(repr(value))} (a user id, or an "
            "object with an id)"
        )
    return str(value)


def _choice(results: object, from_name: str | None) -> str:
    """The one choice of the annotation's ``choices`` result (named ``from_name`` when the
    labeling config has several)."""
    if not isinstance(results, list):
        raise ValueError("result: expected a list")
    choices = [
        r
        for r in results
        if isinstance(r, dict)
        and r.get("type") == "choices"
        and (from_name is None or r.get("from_name") == from_name)
    ]
    names = sorted({str(r.get("from_name")) for r in choices})
    if len(choices) != 1:
        hint = f" (from_name: {', '.join(names)}; choose one with --from-name)" if names else ""
        raise ValueError(f"result: expected one choices result, found {len(choices)}{hint}")
    picked = choices[0].get("value", {}).get("choices")
    if not isinstance(picked, list) or len(picked) != 1 or not isinstance(picked[0], str):
        raise ValueError("result: expected exactly one chosen class")
    return picked[0]


def read_label_studio(
    text: str, errors: list[LineError], *, from_name: str | None = None, text_field: str = "text"
) -> list[Annotation]:
    """The annotations of a Label Studio JSON export: a list of tasks, each with ``id``,
    ``data`` (the item: ``text_field`` its text, ``comment_id`` its id if given, other scalar
    fields its attributes) and ``annotations`` (``id``, ``completed_by``, ``result``,
    ``created_at``, optional ``lead_time`` in seconds; cancelled ones are skipped). An error's
    line is the task's place in the list."""
    try:
        tasks = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        errors.append(LineError(1, f"not a Label Studio JSON export: {exc}"))
        return []
    if not isinstance(tasks, list):
        errors.append(LineError(1, "not a Label Studio JSON export: expected a list of tasks"))
        return []
    out: list[Annotation] = []
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            errors.append(LineError(number, "task: expected an object with data"))
            continue
        data: dict[str, Any] = task["data"]
        item = data.get("comment_id") or f"label-studio-task-{task.get('id')}"
        attributes = {
            k: str(v)
            for k, v in data.items()
            if k not in (text_field, "comment_id") and isinstance(v, str | int | float)
        }
        body = data.get(text_field)
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            where = f"task {shorten(str(task.get('id')))}, annotation "
            where += shorten(str(annotation.get("id")))
            try:
                lead = annotation.get("lead_time")
                out.append(
                    Annotation(
                        line=number,
                        item_id=str(item),
                        annotator_id=_annotator(annotation.get("completed_by")),
                        label=_choice(annotation.get("result"), from_name),
                        at=aware_time(annotation.get("created_at"), "created_at"),
                        text=body if isinstance(body, str) and body else None,
                        annotation_id=str(annotation["id"]) if "id" in annotation else None,
                        time_spent_ms=round(float(lead) * 1000) if lead is not None else 0,
                        attributes=attributes,
                    )
                )
            except (ValueError, TypeError) as exc:
                errors.append(LineError(number, f"{where}: {exc}"))
    return out


def read_annotations(
    text: str, fmt: str, errors: list[LineError], **options: Any
) -> list[Annotation]:
    """The annotations of ``text`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "csv":
        return read_csv(text, errors)
    if fmt == "label-studio":
        return read_label_studio(text, errors, **options)
    raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")


@dataclass(frozen=True)
class ImportPlan:
    """The events of an import, in the order they are produced, with what they hold."""

    events: list[Event]
    items: int
    annotators: int
    votes: int
    comments: int
    repeats: int
    """Identical repeated annotations (the same item, annotator and label), imported once."""


def plan_import(
    annotations: Sequence[Annotation],
    *,
    source: str,
    schema_version: str,
    classes: Iterable[str],
    errors: list[LineError],
    fits: RecordFits = unlimited,
) -> ImportPlan:
    """The events of ``annotations``, each encoded and size-checked with ``fits``; problems
    go to ``errors`` (raises :class:`InvalidImportError` with them all, so nothing is
    produced)."""
    known = set(classes)
    producer = f"import:{source}"
    first: dict[tuple[str, str], Annotation] = {}
    by_item: dict[str, list[Annotation]] = {}
    repeats = 0
    for a in annotations:
        if a.label not in known:
            errors.append(
                LineError(a.line, f"label {shorten(a.label)!r} is not a class of {schema_version}")
            )
            continue
        earlier = first.get((a.item_id, a.annotator_id))
        if earlier is not None:
            if earlier.label != a.label:
                errors.append(
                    LineError(
                        a.line,
                        f"item {shorten(a.item_id)!r}, annotator {shorten(a.annotator_id)!r}: "
                        f"labelled {earlier.label!r} on line {earlier.line} and {a.label!r} "
                        "here (conflicting duplicate)",
                    )
                )
            else:
                repeats += 1
            continue
        first[(a.item_id, a.annotator_id)] = a
        by_item.setdefault(a.item_id, []).append(a)
    events: list[Event] = []
    annotators = sorted({a.annotator_id for a in first.values()})
    for original in annotators:
        annotator_id = f"{source}:{original}"
        events.append(
            AnnotatorRegistered.create(
                producer=producer,
                id_parts=("import", annotator_id),
                occurred_at=min(a.at for a in first.values() if a.annotator_id == original),
                annotator_id=annotator_id,
                pool="crowd",
                locale="und",
                languages=[],
            )
        )
    comments = votes = 0
    vote_lines: dict[str, int] = {}
    for item, rows in by_item.items():
        rows.sort(key=lambda a: (a.at, a.annotator_id))
        start = rows[0].at
        text = next((a.text for a in rows if a.text), None)
        if text is not None:
            attributes = {"import_source": source, "original_id": item}
            for a in rows:
                attributes.update(a.attributes)
            fields = {
                "comment_id": item,
                "video_id": attributes.get("video_id", producer),
                "author_hash": "",
                "text": text,
                "source": "pool",
                "posted_at": start.isoformat(),
                "attributes": attributes,
            }
            try:
                events.append(ingested_comment(fields, producer=producer))
                comments += 1
            except ValidationError as exc:
                errors.append(LineError(rows[0].line, describe(exc, "comment")))
                continue
        task_id = derive_id("task", "import", source, item, schema_version)
        task_annotators = [f"{source}:{a.annotator_id}" for a in rows]
        events.append(
            TaskCreated.create(
                producer=producer,
                id_parts=(task_id,),
                occurred_at=start,
                correlation_id=item,
                task_id=task_id,
                comment_id=item,
                schema_version=schema_version,
                kind="crowd",
                reason="import",
                questions=[],
                redundancy=len(rows),
                annotators=task_annotators,
            )
        )
        for a, annotator_id in zip(rows, task_annotators, strict=True):
            vote_id = f"{source}:{a.annotation_id or f'{item}:{a.annotator_id}'}"
            if vote_id in vote_lines:
                errors.append(
                    LineError(
                        a.line,
                        f"annotation id {shorten(vote_id)!r} is on line {vote_lines[vote_id]} too",
                    )
                )
                continue
            vote_lines[vote_id] = a.line
            try:
                events.append(
                    VoteCast.create(
                        producer=producer,
                        id_parts=("import", vote_id),
                        occurred_at=a.at,
                        correlation_id=item,
                        vote_id=vote_id,
                        task_id=task_id,
                        comment_id=item,
                        annotator_id=annotator_id,
                        schema_version=schema_version,
                        label=a.label,
                        confidence=a.confidence,
                        time_spent_ms=a.time_spent_ms,
                    )
                )
                votes += 1
            except ValidationError as exc:
                errors.append(LineError(a.line, describe(exc, "vote")))
    for event in events:
        problem = record_problem(event, fits)
        if problem is not None:
            errors.append(LineError(0, f"{type(event).__name__} {event.key}: {problem}"))
    if errors:
        raise InvalidImportError(sorted(errors, key=lambda e: e.line))
    return ImportPlan(events, len(by_item), len(annotators), votes, comments, repeats)


# ConvAbuse ------------------------------------------------------------------------------

CONVABUSE_CLASSES = (
    "not_abusive",
    "ambiguous",
    "mildly_abusive",
    "strongly_abusive",
    "very_strongly_abusive",
)
"""ConvAbuse's five-level abuse scale (``is_abuse.1`` ... ``is_abuse.-3``), in order."""
_CONVABUSE_LEVELS = dict(zip(("1", "0", "-1", "-2", "-3"), CONVABUSE_CLASSES, strict=True))


def convabuse_csv(
    text: str, *, start: dt.datetime, items_per_day: int = 100, limit: int | None = None
) -> str:
    """A ConvAbuse split (``ConvAbuseEMNLP{train,valid,test}.csv``: one row per utterance,
    ``AnnotatorN_is_abuse.<level>`` one-hot columns) as the import CSV: one row per
    annotation, the user's utterance as the text, the bot as the slice.

    ConvAbuse records no annotation times: rows are given days in file order,
    ``items_per_day`` utterances a day from ``start`` (annotator N a minute after N-1), so
    agreement over time reads as the order the file lists the items in, not as when they were
    annotated. ``limit``: only the first that many utterances.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    out = io.StringIO()
    columns = [*CSV_COLUMNS, "text", "attr.slice", "attr.conv_id"]
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for index, row in enumerate(reader):
        if limit is not None and index >= limit:
            break
        day = start + dt.timedelta(days=index // items_per_day, seconds=index % items_per_day)
        item = f"convabuse-{row['example_id'].removesuffix('.0')}"
        for n in range(1, 9):
            levels = [
                cls
                for level, cls in _CONVABUSE_LEVELS.items()
                if row.get(f"Annotator{n}_is_abuse.{level}", "") in ("1", "1.0")
            ]
            if len(levels) != 1:
                continue  # not annotated by this annotator (or not one level)
            writer.writerow(
                {
                    "item_id": item,
                    "annotator_id": f"Annotator{n}",
                    "label": levels[0],
                    "annotated_at": (day + dt.timedelta(minutes=n)).isoformat(),
                    "text": (row.get("user") or "").strip(),
                    "attr.slice": row.get("bot", ""),
                    "attr.conv_id": row.get("conv_id", "").removesuffix(".0"),
                }
            )
    return out.getvalue()


if __name__ == "__main__":  # python -m labeltrail.imports SPLIT.csv [START] > convabuse.csv
    import sys

    begin = dt.datetime.fromisoformat(sys.argv[2] if len(sys.argv) > 2 else "2021-01-04T00:00Z")
    with open(sys.argv[1], encoding="utf-8") as fh:
        sys.stdout.write(convabuse_csv(fh.read(), start=begin))
