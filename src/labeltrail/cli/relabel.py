"""``labeltrail relabel``: what would the labels be under another consensus method?

Reads the schemas, the committed labels and the votes from the log (every topic's end taken
first: the positions the run covers), or with ``--source clickhouse`` from the ClickHouse
projection up to the log positions it records (``clickhouse.relabel``: columnar, joined in
ClickHouse), recomputes the labels of record with a method of the
quality core's registry (``quality.methods``, the one ``labeltrail aggregate`` uses) on the
batch path (``folds.relabel``), and either reports the difference (``--dry-run``) or commits
the run's labels to the relabels topic, each naming the run, the method and its parameters
(``docs/replay.md``, "What-if relabeling").
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape

from labeltrail.cli.common import console, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.events.base import LogPosition
from labeltrail.events.columnar import LabelCommittedRow
from labeltrail.events.models import AnnotatorReliabilityUpdated, LabelCommitted
from labeltrail.exceptions import LabeltrailError, QualityError
from labeltrail.folds.relabel import RELIABILITY_WEIGHTED, ItemLabel, Relabeling

__all__ = ["History", "read_history", "register", "relabel"]

BAD_INPUT = 2


class Source(StrEnum):
    """Where a run reads the history: the log itself, or its ClickHouse projection."""

    log = "log"
    clickhouse = "clickhouse"


@dataclass
class History:
    """What a run reads from the log, and the positions it read up to."""

    positions: list[LogPosition]
    classes: dict[str, list[str]]
    labels: list[tuple[LabelCommittedRow, tuple[str, int, int]]]
    """each committed label (the columnar reader's row) and (topic, partition, offset)"""
    votes: list[Any]
    slices: dict[str, str]
    estimates: dict[str, AnnotatorReliabilityUpdated]
    """the reliability estimates by event id (read only when asked for)"""


def read_history(settings: Settings, *, slices: bool = True, estimates: bool = False) -> History:
    """Schemas, labels and votes (and the comments' slices, the reliability estimates) up to
    the topics' current ends."""
    from labeltrail.events.topics import topic_for, topic_name
    from labeltrail.kafka.log import end_positions, read_records

    quality = topic_for("AnnotatorReliabilityUpdated", settings.topic_prefix)
    suffixes = ["schemas", "labels", "votes", *(["comments"] if slices else [])]
    names = {s: topic_name(settings.topic_prefix, s) for s in suffixes}
    ends = end_positions(settings, [*names.values(), *([quality] if estimates else [])])

    def at(*topics: str) -> list[LogPosition]:
        return [p for p in ends if p.topic in topics]

    # Two reads, not one per topic, side by side: a consumer's start and its last fetch cost
    # about a second of waiting each. Schemas, labels and estimates with their positions (a
    # run's label points at its label of record), labels as columnar rows, in a thread; votes
    # and comments as values, decoded columnar, here.
    classes: dict[str, list[str]] = {}
    labels: list[tuple[LabelCommittedRow, tuple[str, int, int]]] = []
    found: dict[str, AnnotatorReliabilityUpdated] = {}
    first = at(names["schemas"], names["labels"], *([quality] if estimates else []))

    def read_labels() -> None:
        for values, where in read_records(settings, first):
            _labels_batch(values, where, quality, names["labels"], classes, labels, found)

    with ThreadPoolExecutor(max_workers=1) as pool:
        reading = pool.submit(read_labels)
        votes, by_comment = _read_votes(settings, at(names["votes"], names.get("comments", "")))
        reading.result()
    covered = [p for p in ends if p.topic != names.get("comments")]
    return History(covered, classes, labels, votes, by_comment, found)


def _labels_batch(
    values: list[bytes],
    where: list[tuple[str, int, int]],
    quality: str,
    labels_topic: str,
    classes: dict[str, list[str]],
    labels: list[tuple[LabelCommittedRow, tuple[str, int, int]]],
    found: dict[str, AnnotatorReliabilityUpdated],
) -> None:
    """One fetched batch of the schemas, labels and quality topics, into the three."""
    from labeltrail.events.columnar import decode_label_rows
    from labeltrail.events.models import LabelSchemaPublished

    keep = [i for i, w in enumerate(where) if w[0] != quality]
    decoded = decode_label_rows([values[i] for i in keep])
    for i, row in zip(decoded.indices, decoded.rows, strict=True):
        if isinstance(row, LabelSchemaPublished):
            classes[row.version] = list(row.classes)
        elif type(row) is LabelCommittedRow and where[keep[i]][0] == labels_topic:
            labels.append((row, where[keep[i]]))
    for i in sorted(set(range(len(values))) - set(keep)):
        # of the quality topic only the estimates are decoded, not the honeypot results
        estimate = _decoded(values[i], "AnnotatorReliabilityUpdated")
        if isinstance(estimate, AnnotatorReliabilityUpdated):
            found[estimate.envelope.event_id] = estimate


def _read_votes(
    settings: Settings, positions: list[LogPosition]
) -> tuple[list[Any], dict[str, str]]:
    """The votes as rows and each comment's slice, up to ``positions``."""
    from labeltrail.events.columnar import VoteRow, decode_rows
    from labeltrail.events.models import CommentPosted, VoteCast
    from labeltrail.kafka.log import read_values

    votes: list[VoteRow] = []
    by_comment: dict[str, str] = {}
    for values in read_values(settings, positions):
        for row in decode_rows(values).rows:
            if type(row) is VoteRow:
                votes.append(row)
            elif isinstance(row, VoteCast):
                votes.append(VoteRow.of(row))
            elif isinstance(row, CommentPosted):
                by_comment.setdefault(row.comment_id, row.attributes.get("slice", ""))
    return votes, by_comment


def _decoded(value: bytes, event_type: str) -> object:
    """The event if the record claims ``event_type`` and decodes, else None (undecodable
    records are skipped, as every log reader does)."""
    from labeltrail.events.serde import decode, event_type_of
    from labeltrail.exceptions import SerializationError

    try:
        return decode(value) if event_type_of(value) == event_type else None
    except SerializationError:
        return None


def _sample(item: ItemLabel) -> dict[str, Any]:
    return {
        "comment_id": item.comment_id,
        "schema_version": item.schema_version,
        "route": item.route,
        "slice": item.slice,
        "classes": item.classes,
        "committed": {"label": item.old_label, "posterior": item.old_posterior},
        "relabeled": {"label": item.new_label, "posterior": item.new_posterior},
        "votes": [{"annotator_id": a, "label": lab} for a, lab in item.votes],
    }


def _print(run: Relabeling, samples: list[ItemLabel], run_id: str, dry_run: bool) -> None:
    s = run.summary()
    params = ",".join(f"{k}={v}" for k, v in sorted(run.params.items())) or "-"
    console.print(
        f"{'dry run' if dry_run else 'run ' + run_id}: method {run.method} ({params}) on "
        f"{s['items']} labels, {s['votes']} votes; committed with "
        f"{s['committed_methods']}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"changed {s['changed']} of {s['items']}", highlight=False)
    for key in ("by_class", "by_slice", "by_schema_version", "by_route"):
        console.print(f"  {key}: {json.dumps(s[key])}", highlight=False, soft_wrap=True)
    console.print(
        f"  adjudicated items whose crowd label under {run.method} is the expert's: "
        f"{s['agrees_with_expert']} of {s['adjudicated']}",
        highlight=False,
    )
    for item in samples:
        votes = " ".join(f"{a}:{lab}" for a, lab in item.votes)
        console.print(
            escape(
                f"  {item.comment_id} {item.schema_version} ({item.route}, slice "
                f"{item.slice or '-'}): {item.old_label} {item.old_posterior} -> "
                f"{item.new_label} {item.new_posterior}; votes {votes}"
            ),
            highlight=False,
            soft_wrap=True,
        )


def relabel(
    method: Annotated[
        str,
        typer.Option(
            help="consensus method: pds, mv, wmv, ds, ods, mace, glad, or reliability-weighted "
            "(the live stage's: each label made again from the estimates it records)"
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="a method parameter key=value (repeatable)"),
    ] = None,
    schema_version: Annotated[
        str, typer.Option("--schema-version", help="only this schema version ('' for all)")
    ] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report the difference, commit nothing")
    ] = False,
    samples: Annotated[int, typer.Option(help="changed items to show at most", min=0)] = 5,
    source: Annotated[
        Source,
        typer.Option(
            help="read the history from the log, or from its ClickHouse projection (up to the "
            "log positions the projection records; not for reliability-weighted)"
        ),
    ] = Source.log,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recompute the committed labels under another method: the difference, or a new run.

    With --dry-run: how many labels change, by class, slice, schema version and route, and
    sample items with both posteriors and their votes. Without: commits the run's labels to
    the relabels topic (each names the run id, method and parameters) and prints the run id,
    for 'audit label-as-of --run' and 'export create --run'. Bad input (unknown method, a
    parameter it does not take, a schema version with no votes): exit 2, nothing committed.
    """
    from labeltrail.folds.relabel import check_method, run_id_for, run_labels
    from labeltrail.quality.methods import parse_params

    try:
        params = parse_params(param or [])
        check_method(method, params)
        if source is Source.clickhouse and method == RELIABILITY_WEIGHTED:
            raise QualityError(
                f"{RELIABILITY_WEIGHTED} reads the reliability estimates each label names "
                "from the log: use --source log"
            )
    except QualityError as exc:
        raise fail(exc, BAD_INPUT) from exc
    settings = Settings()
    if not dry_run or source is Source.log:
        require_kafka(settings)
    try:
        if source is Source.clickhouse:
            positions, run = _from_projection(settings, method, params, schema_version)
        else:
            positions, run = _from_log(settings, method, params, schema_version)
    except QualityError as exc:
        raise fail(exc, BAD_INPUT) from exc
    except LabeltrailError as exc:
        raise fail(exc) from exc
    run_id = run_id_for(method, run.params, schema_version, positions)
    shown = run.changed[:samples]
    if not dry_run:
        _commit(settings, run_labels(run, run_id))
    if as_json:
        body = {
            **run.summary(),
            "dry_run": dry_run,
            "run_id": None if dry_run else run_id,
            "source": source.value,
            "positions": [p.model_dump() for p in positions],
            "samples": [_sample(i) for i in shown],
        }
        typer.echo(json.dumps(body))
    else:
        _print(run, shown, run_id, dry_run)
        if not dry_run:
            console.print(f"committed run {run_id}: {len(run.items)} labels", highlight=False)


def _from_log(
    settings: Settings, method: str, params: dict[str, str], schema_version: str
) -> tuple[list[LogPosition], Relabeling]:
    """The run computed from the log (rows), and the positions read up to."""
    from labeltrail.folds.relabel import labels_of_record
    from labeltrail.folds.relabel import relabel as compute

    history = read_history(settings, slices=True, estimates=method == RELIABILITY_WEIGHTED)
    run = compute(
        labels_of_record(history.labels),
        history.votes,
        history.classes,
        method,
        params,
        schema_version=schema_version,
        slices=history.slices,
        estimates=history.estimates,
    )
    return history.positions, run


def _from_projection(
    settings: Settings, method: str, params: dict[str, str], schema_version: str
) -> tuple[list[LogPosition], Relabeling]:
    """The run computed from the ClickHouse projection (columns), and the log positions the
    projection covers."""
    from labeltrail.clickhouse.client import client_from
    from labeltrail.clickhouse.relabel import read_projected
    from labeltrail.folds.relabel import relabel_columns

    client = client_from(settings)
    try:
        history = read_projected(client, settings, slices=True)
    finally:
        client.close()
    run = relabel_columns(
        history.versions,
        history.classes,
        method,
        params,
        schema_version=schema_version,
        slices=history.slices,
    )
    return history.positions, run


def _commit(settings: Settings, labels: list[LabelCommitted]) -> None:
    from labeltrail.events.topics import topic_name
    from labeltrail.kafka.admin import ensure_topics
    from labeltrail.kafka.producer import EventProducer

    ensure_topics(settings)
    topic = topic_name(settings.topic_prefix, "relabels")
    producer = EventProducer(settings)
    for label in labels:
        producer.send(label, topic=topic)
    producer.flush()


def register(app: typer.Typer) -> None:
    """Add ``labeltrail relabel`` to the main app."""
    app.command("relabel")(relabel)
