"""Create a versioned export from ClickHouse, and verify one by rebuilding it from the log.

An export names everything it depends on (schema version, ``as_of``, the end offset of every
partition of the labels, votes, adjudications and questions topics, aggregator and
parameters), so ``verify`` can replay the log up to those positions through
:class:`ExportFold` and get the same content hash however much the log has grown;
:func:`verify_directory` also checks the files against the manifest and the log
(``docs/audit.md``, "Versioned exports").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from labeltrail.clickhouse.client import Client, run_named
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.clickhouse.writer import BatchWriter
from labeltrail.config import Settings
from labeltrail.events.base import LogPosition, utc_now
from labeltrail.events.models import CommentsErased, ExportCreated, LabelSchemaPublished
from labeltrail.events.topics import WEAK_RUN, topic_name
from labeltrail.exceptions import LabeltrailError
from labeltrail.export.manifest import (
    MANIFEST,
    RECORDED_FIELDS,
    Manifest,
    check_directory,
    file_sha256,
    render_manifest,
)
from labeltrail.folds.export_rows import (
    PRIOR_PARAM,
    RUN_PARAM,
    ExportFold,
    Migration,
    canonical_from_sql,
    content_hash,
    export_created,
    export_id_for,
    jsonl,
    migration_of,
    prior_columns,
)
from labeltrail.kafka.log import end_positions, read_kinds, read_until
from labeltrail.kafka.producer import EventProducer

__all__ = [
    "EXPORT_CHUNK_ROWS",
    "EXPORT_FILES",
    "EXPORT_TOPICS",
    "PARQUET_ROW_GROUP",
    "VerifyResult",
    "comment_ranges",
    "create_export",
    "export_row_chunks",
    "export_rows_sql",
    "find_export",
    "parquet_schema",
    "read_parquet_rows",
    "rebuild_rows",
    "schema_migration",
    "sql_time",
    "verify_directory",
    "verify_export",
    "write_export",
]

EXPORT_TOPICS = ("labels", "votes", "adjudications", "questions")
"""The topics an export is built from; its positions name every partition of each."""

PRODUCER = "export"


def sql_time(value: dt.datetime) -> str:
    """A ``DateTime64(3, 'UTC')`` parameter value."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="milliseconds")


EXPORT_CHUNK_ROWS = 20_000
"""About how many rows of ``labels`` one export query reads (a range of comment ids): the
query, the Python rows of the chunk and its Parquet row groups stay bounded at any scale."""

PARQUET_ROW_GROUP = 65_536
"""Rows per row group of ``rows.parquet``, whatever the chunks: the same export gives the same
bytes however its rows were read (an export of fewer rows has one row group, as before)."""


def comment_ranges(
    client: Client, rows_per_range: int = EXPORT_CHUNK_ROWS
) -> list[tuple[str, str]]:
    """Ranges ``[from, to)`` of comment ids (``""``: that end open) holding about
    ``rows_per_range`` rows of ``labels`` each, in order, read from its primary index
    (named query ``label_key_marks``: ``mergeTreeIndex``, ClickHouse 24.1 and later)."""
    bounds: list[str] = []
    rows = 0
    for mark in run_named(client, "label_key_marks"):
        if rows >= rows_per_range and mark["comment_id"] > (bounds[-1] if bounds else ""):
            bounds.append(mark["comment_id"])
            rows = 0
        rows += mark["rows"]
    edges = ["", *bounds, ""]
    return list(itertools.pairwise(edges))


def export_row_chunks(
    client: Client,
    schema_version: str,
    as_of: dt.datetime,
    positions: list[LogPosition],
    run: str = "",
    rows_per_range: int = EXPORT_CHUNK_ROWS,
    prior: str = "",
) -> Iterator[list[dict[str, Any]]]:
    """Canonical export rows, read from ClickHouse with the ``export_rows`` named query a range
    of comment ids at a time (:func:`comment_ranges`): each chunk sorted by comment id, the
    chunks in order (``run``: the labels of that labeling run instead of the live ones;
    ``prior``: each row also carries that older version's label, ``export_prior_labels``)."""
    at = sql_time(as_of)
    where = json.dumps([[p.topic, p.partition, p.offset] for p in positions])
    for start, end in comment_ranges(client, rows_per_range):
        window = {"at": at, "positions": where, "from_comment": start, "to_comment": end}
        rows = run_named(client, "export_rows", schema_version=schema_version, run=run, **window)
        if prior:  # each comment's latest live label under the older version, same window
            old = {
                r["comment_id"]: r
                for r in run_named(client, "export_prior_labels", prior_version=prior, **window)
            }
            rows = [{**r, **old.get(r["comment_id"], _NO_PRIOR)} for r in rows]
        yield [canonical_from_sql(r, schema_version, prior) for r in rows]


_NO_PRIOR = {"prior_label": None, "prior_confidence": None}


def export_rows_sql(
    client: Client,
    schema_version: str,
    as_of: dt.datetime,
    positions: list[LogPosition],
    run: str = "",
) -> list[dict[str, Any]]:
    """Every canonical export row at once (:func:`export_row_chunks`, joined): for small
    exports and tests; :func:`create_export` writes the chunks as they come."""
    return [
        r
        for chunk in export_row_chunks(client, schema_version, as_of, positions, run)
        for r in chunk
    ]


def _ensure_projected(client: Client, settings: Settings, positions: list[LogPosition]) -> None:
    projector_name = f"{settings.topic_prefix}.projector"
    stored = BatchWriter(client, projector_name).stored_positions()
    behind = [p for p in positions if stored.get((p.topic, p.partition), 0) < p.offset]
    if behind:
        run_until_caught_up(Projector(client, settings))


_PARQUET = pa.schema(
    [
        ("comment_id", pa.string()),
        ("schema_version", pa.string()),
        ("label", pa.string()),
        ("classes", pa.list_(pa.string())),
        ("soft_label", pa.list_(pa.float64())),
        ("confidence", pa.float64()),
        ("route", pa.string()),
        ("method", pa.string()),
        ("method_params", pa.map_(pa.string(), pa.string())),
        ("label_id", pa.string()),
        ("label_event_id", pa.string()),
        ("committed_at", pa.string()),
        ("occurred_at", pa.string()),
        ("source_positions", pa.list_(pa.string())),
        (
            "annotators",
            pa.list_(
                pa.struct(
                    [
                        ("annotator_id", pa.string()),
                        ("label", pa.string()),
                        ("confidence", pa.float64()),
                        ("voted_at", pa.string()),
                        ("vote_id", pa.string()),
                    ]
                )
            ),
        ),
        ("n_votes", pa.int64()),
        ("first_vote_at", pa.string()),
        ("last_vote_at", pa.string()),
        (
            "adjudication",
            pa.struct(
                [
                    ("adjudication_id", pa.string()),
                    ("reviewer_id", pa.string()),
                    ("label", pa.string()),
                    ("confidence", pa.float64()),
                    ("note", pa.string()),
                    ("recorded_at", pa.string()),
                ]
            ),
        ),
        ("gold_label", pa.string()),
        ("gold_agrees", pa.bool_()),
        (
            "questions",
            pa.list_(
                pa.struct(
                    [
                        ("question_id", pa.string()),
                        ("answer", pa.string()),
                        ("answers", pa.list_(pa.string())),
                        ("distribution", pa.list_(pa.float64())),
                        ("agreement", pa.float64()),
                        ("label_id", pa.string()),
                    ]
                )
            ),
        ),
    ]
)


EXPORT_FILES = ("rows.jsonl", "rows.parquet")
"""The files of an export directory besides its manifest."""


def parquet_schema(prior: str = "") -> pa.Schema:
    """The Parquet schema of an export's rows; with ``prior`` (its schema keeps that older
    version's labels as features) two more columns, ``prior_label_<prior>`` and
    ``prior_confidence_<prior>``."""
    if not prior:
        return _PARQUET
    label_column, confidence_column = prior_columns(prior)
    return _PARQUET.append(pa.field(label_column, pa.string())).append(
        pa.field(confidence_column, pa.float64())
    )


def _parquet_table(rows: list[dict[str, Any]], schema: pa.Schema = _PARQUET) -> pa.Table:
    ordered = sorted(rows, key=lambda r: str(r["comment_id"]))
    flat = [{**r, "method_params": list(r["method_params"].items())} for r in ordered]
    return pa.Table.from_pylist(flat, schema=schema)


@dataclass
class _Written:
    """What writing an export's files gave: each file's ``sha256`` by name, the content hash
    (of ``rows.jsonl``) and the row count."""

    files: dict[str, str]
    digest: str
    rows: int


def _write_files(
    directory: Path, chunks: Iterable[list[dict[str, Any]]], schema: pa.Schema = _PARQUET
) -> _Written:
    """Write the rows a chunk at a time (chunks in comment order): ``rows.jsonl`` hashed as it
    is written, ``rows.parquet`` in row groups of :data:`PARQUET_ROW_GROUP` rows."""
    directory.mkdir(parents=True, exist_ok=True)
    content = hashlib.sha256()
    count = 0
    pending = pa.Table.from_pylist([], schema=schema)
    with (
        (directory / "rows.jsonl").open("wb") as lines,
        pq.ParquetWriter(directory / "rows.parquet", schema) as parquet,
    ):
        for rows in chunks:
            data = jsonl(rows)
            lines.write(data)
            content.update(data)
            count += len(rows)
            pending = pa.concat_tables([pending, _parquet_table(rows, schema)])
            full = pending.num_rows - pending.num_rows % PARQUET_ROW_GROUP
            if full:
                parquet.write_table(
                    pending.slice(0, full).combine_chunks(), row_group_size=PARQUET_ROW_GROUP
                )
                pending = pending.slice(full)
        if pending.num_rows or not count:  # an empty export still has its (empty) table
            parquet.write_table(pending.combine_chunks(), row_group_size=PARQUET_ROW_GROUP)
    digest = "sha256:" + content.hexdigest()
    files = {"rows.jsonl": digest, "rows.parquet": file_sha256(directory / "rows.parquet")}
    return _Written(files, digest, count)


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """The canonical rows held in an export's ``rows.parquet``."""
    rows = pq.read_table(path).to_pylist()
    out = []
    for r in rows:
        # A row without per-question labels has no ``questions`` key (the canonical rows).
        questions = r.pop("questions", None)
        extra = {"questions": questions} if questions else {}
        out.append({**r, **extra, "method_params": dict(r["method_params"] or [])})
    return out


def write_export(
    client: Client,
    out_dir: Path,
    *,
    schema_version: str,
    as_of: dt.datetime,
    positions: list[LogPosition],
    run: str = "",
    prior: str = "",
) -> ExportCreated:
    """Write ``<out_dir>/<export_id>/`` (rows.parquet, rows.jsonl, manifest.json) from
    ClickHouse up to ``positions``, a chunk of rows at a time; the ``ExportCreated`` recording
    it (with its manifest hash), not yet sent (:func:`create_export` sends it). ``prior``: the
    rows carry that older version's labels as feature columns (``keep_as_feature``)."""
    export_id = export_id_for(schema_version, sql_time(as_of), positions, run, prior)
    directory = (out_dir / export_id).resolve()
    # Written beside the directory first and moved in whole: an export that fails half way
    # (or a run without labels) leaves no files under the export's name.
    staging = directory.with_name(f".{export_id}.partial")
    try:
        written = _write_files(
            staging,
            export_row_chunks(
                client,
                schema_version,
                as_of,
                positions,
                run,
                rows_per_range=EXPORT_CHUNK_ROWS,
                prior=prior,
            ),
            parquet_schema(prior),
        )
        if run and not written.rows:
            raise LabeltrailError(f"no labels of run {run!r} under {schema_version} by {as_of}")
        directory.mkdir(parents=True, exist_ok=True)
        for name in EXPORT_FILES:
            (staging / name).replace(directory / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    event = export_created(
        producer=PRODUCER,
        export_id=export_id,
        schema_version=schema_version,
        as_of=as_of,
        positions=positions,
        digest=written.digest,
        row_count=written.rows,
        uri=directory.as_uri(),
        run=run,
        prior=prior,
    )
    manifest = render_manifest(event, written.files)
    (directory / MANIFEST).write_bytes(manifest)
    # The manifest's own hash goes on the log: with it, a manifest rehashed after its files were
    # changed no longer matches what the export recorded.
    return event.model_copy(update={"manifest_hash": json.loads(manifest)["manifest_hash"]})


def create_export(
    client: Client,
    settings: Settings,
    *,
    schema_version: str,
    out_dir: Path,
    as_of: dt.datetime | None = None,
    producer: EventProducer | None = None,
    run: str = "",
) -> ExportCreated:
    """Write ``<out_dir>/<export_id>/`` (rows.parquet, rows.jsonl, manifest.json) and record it.

    ``run``: export the labels of that labeling run (``labeltrail relabel``), read from the
    relabels topic too; it is recorded in ``aggregator_params`` so ``verify`` rebuilds them.
    The run ``weak`` is the weak stage's labels (route weak, machine-made, on ``weak.labels``):
    they are never in an export unless it names them so.

    The manifest holds no time of writing and no location, so the same export built twice
    (same positions and ``as_of``) gives the same bytes in every file.

    The projection is first brought up to the export's positions if it is behind them.

    The schema versions on the log decide two things (:func:`schema_migration`): a version
    whose labels a later one discards (policy ``discard``) is refused; a version that kept its
    predecessor's labels as features (``keep_as_feature``) exports them as the columns
    ``prior_label_<old>`` and ``prior_confidence_<old>``.
    """
    as_of = as_of or utc_now()
    prior = schema_migration(settings, schema_version).prior
    suffixes = (*EXPORT_TOPICS, *(("relabels",) if run else ()))
    if run == WEAK_RUN:
        suffixes = (*suffixes, "weak.labels")
    topics = [topic_name(settings.topic_prefix, s) for s in suffixes]
    positions = end_positions(settings, topics)
    _ensure_projected(client, settings, positions)
    event = write_export(
        client,
        out_dir,
        schema_version=schema_version,
        as_of=as_of,
        positions=positions,
        run=run,
        prior=prior,
    )
    sink = producer or EventProducer(settings)
    sink.send(event)
    sink.flush()
    return event


def schema_migration(settings: Settings, schema_version: str) -> Migration:
    """What the schema versions on the log now say about exporting ``schema_version``; raises
    if a later version discarded its labels (``old_label_policy`` ``discard``)."""
    schemas = [
        e
        for e in read_kinds(
            settings,
            [topic_name(settings.topic_prefix, "schemas")],
            frozenset({"LabelSchemaPublished"}),
        )
        if isinstance(e, LabelSchemaPublished)
    ]
    migration = migration_of(schemas, schema_version)
    if migration.discarded_by:
        raise LabeltrailError(
            f"no export under {schema_version}: schema {migration.discarded_by} superseded it "
            f"with the migration policy 'discard', so its labels are no longer exported "
            f"(export under {migration.discarded_by})"
        )
    return migration


@dataclass(frozen=True)
class VerifyResult:
    """The recorded hash, the one rebuilt from the log, the files checked and every problem."""

    export_id: str
    recorded_hash: str
    rebuilt_hash: str
    rebuilt_rows: int
    checked_files: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    erased: tuple[str, ...] = ()
    """Comments of the export erased since (``labeltrail erase``): their labels still verify,
    their text and author read as erased (``docs/erasure.md``)."""

    @property
    def ok(self) -> bool:
        return self.rebuilt_hash == self.recorded_hash and not self.problems


def rebuild_rows(settings: Settings, export: ExportCreated | Manifest) -> list[dict[str, Any]]:
    """The export's rows, rebuilt from the log up to its positions (no ClickHouse)."""
    fold = ExportFold(
        export.schema_version,
        export.as_of,
        export.aggregator_params.get(RUN_PARAM, ""),
        export.aggregator_params.get(PRIOR_PARAM, ""),
    )
    for event, position in read_until(settings, export.log_positions):
        fold.apply(event, position)
    return fold.rows()


def _reproduces(recorded: str, rebuilt: str) -> list[str]:
    if rebuilt == recorded:
        return []
    return [f"the rows rebuilt from the log hash to {rebuilt}, the export records {recorded}"]


def erased_since(settings: Settings, rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The comments of ``rows`` erased by now (``CommentsErased`` on the erasures topic)."""
    topic = topic_name(settings.topic_prefix, "erasures")
    gone = {
        c
        for e in read_kinds(settings, [topic], frozenset({"CommentsErased"}))
        if isinstance(e, CommentsErased)
        for c in e.comment_ids
    }
    return tuple(sorted(gone.intersection(r["comment_id"] for r in rows)))


def verify_export(settings: Settings, export: ExportCreated) -> VerifyResult:
    """Rebuild an export from the log and compare hashes (no file is read)."""
    rows = rebuild_rows(settings, export)
    rebuilt = content_hash(rows)
    return VerifyResult(
        export.export_id,
        export.content_hash,
        rebuilt,
        len(rows),
        problems=tuple(_reproduces(export.content_hash, rebuilt)),
        erased=erased_since(settings, rows),
    )


def _parquet_problems(directory: Path, rows: list[dict[str, Any]]) -> list[str]:
    try:
        held = read_parquet_rows(directory / "rows.parquet")
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError) as exc:
        return [f"rows.parquet cannot be read as export rows: {exc}"]
    rebuilt = {r["comment_id"]: jsonl([r]) for r in rows}
    parquet = {r.get("comment_id"): jsonl([r]) for r in held}
    differ = sorted(
        str(c) for c in rebuilt.keys() | parquet.keys() if rebuilt.get(c) != parquet.get(c)
    )
    if not differ:
        return []
    return [
        f"rows.parquet differs from the rows rebuilt from the log in {len(differ)} of "
        f"{len(rebuilt)} rows (first: comment {differ[0]})"
    ]


def verify_directory(settings: Settings, directory: Path) -> VerifyResult:
    """Check an export directory: every file against its manifest, the manifest against the
    ``ExportCreated`` on the log, and the rows (JSON lines and Parquet) against the log.

    Reads nothing outside ``directory`` (see :func:`~labeltrail.export.manifest.check_directory`).
    """
    check = check_directory(directory)
    manifest = check.manifest
    problems = list(check.problems)
    if sorted(manifest.files) != sorted(EXPORT_FILES):
        problems.append(
            f"{MANIFEST} lists {sorted(manifest.files)}; an export has {list(EXPORT_FILES)}"
        )
    export: ExportCreated | None = None
    try:
        export = find_export(settings, manifest.export_id)
    except LabeltrailError as exc:
        problems.append(f"the log does not record this export: {exc}")
    if export is not None:
        logged = export.model_dump(mode="json", include=set(RECORDED_FIELDS))
        said = manifest.recorded()
        problems.extend(
            f"{MANIFEST} says {name}={said[name]!r}, the ExportCreated on the log says "
            f"{logged[name]!r}"
            for name in RECORDED_FIELDS
            if said[name] != logged[name]
        )
        if export.manifest_hash and manifest.manifest_hash != export.manifest_hash:
            problems.append(
                f"{MANIFEST} hashes to {manifest.manifest_hash}, the ExportCreated on the log "
                f"recorded {export.manifest_hash}: the manifest (and the files it lists) changed"
            )
    source = export or manifest
    rows = rebuild_rows(settings, source)
    rebuilt = content_hash(rows)
    problems.extend(_reproduces(source.content_hash, rebuilt))
    if manifest.files.get("rows.jsonl") != source.content_hash:
        problems.append(
            f"{MANIFEST} lists rows.jsonl as {manifest.files.get('rows.jsonl')}, not the "
            f"export's content hash {source.content_hash}"
        )
    if "rows.parquet" in check.checked:
        problems.extend(_parquet_problems(directory, rows))
    return VerifyResult(
        manifest.export_id,
        source.content_hash,
        rebuilt,
        len(rows),
        check.checked,
        tuple(problems),
        erased_since(settings, rows),
    )


def find_export(settings: Settings, export_id: str) -> ExportCreated:
    """An export's ``ExportCreated``, looked up by id on the exports topic (the first copy)."""
    topic = topic_name(settings.topic_prefix, "exports")
    found: ExportCreated | None = None
    for event, _ in read_until(settings, end_positions(settings, [topic])):
        if isinstance(event, ExportCreated) and event.export_id == export_id:
            found = found or event
    if found is None:
        raise LabeltrailError(f"no export {export_id!r} on {topic}")
    return found
