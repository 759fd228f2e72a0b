"""Create a versioned export from ClickHouse, and verify one by rebuilding it from the log.

An export names everything it depends on (schema version, ``as_of``, the end offset of every
partition of the labels, votes and adjudications topics, aggregator and parameters), so
``verify`` can replay the log up to those positions through :class:`ExportFold` and get the
same content hash however much the log has grown; :func:`verify_directory` also checks the
files against the manifest and the log (``docs/audit.md``, "Versioned exports").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
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
from labeltrail.events.models import ExportCreated
from labeltrail.events.topics import topic_name
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
    RUN_PARAM,
    ExportFold,
    canonical_from_sql,
    content_hash,
    export_created,
    export_id_for,
    jsonl,
)
from labeltrail.kafka.log import end_positions, read_until
from labeltrail.kafka.producer import EventProducer

__all__ = [
    "EXPORT_FILES",
    "EXPORT_TOPICS",
    "VerifyResult",
    "create_export",
    "export_rows_sql",
    "find_export",
    "read_parquet_rows",
    "rebuild_rows",
    "sql_time",
    "verify_directory",
    "verify_export",
]

EXPORT_TOPICS = ("labels", "votes", "adjudications")
"""The topics an export is built from; its positions name every partition of each."""

PRODUCER = "export"


def sql_time(value: dt.datetime) -> str:
    """A ``DateTime64(3, 'UTC')`` parameter value."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="milliseconds")


def export_rows_sql(
    client: Client,
    schema_version: str,
    as_of: dt.datetime,
    positions: list[LogPosition],
    run: str = "",
) -> list[dict[str, Any]]:
    """Canonical export rows, read from ClickHouse with the ``export_rows`` named query
    (``run``: the labels of that labeling run instead of the live ones)."""
    rows = run_named(
        client,
        "export_rows",
        schema_version=schema_version,
        at=sql_time(as_of),
        positions=json.dumps([[p.topic, p.partition, p.offset] for p in positions]),
        run=run,
    )
    return [canonical_from_sql(r, schema_version) for r in rows]


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
    ]
)


EXPORT_FILES = ("rows.jsonl", "rows.parquet")
"""The files of an export directory besides its manifest."""


def _write_files(directory: Path, rows: list[dict[str, Any]], data: bytes) -> dict[str, str]:
    """Write the rows; the ``sha256`` of each file's bytes by its name."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rows.jsonl").write_bytes(data)
    ordered = sorted(rows, key=lambda r: str(r["comment_id"]))
    flat = [{**r, "method_params": list(r["method_params"].items())} for r in ordered]
    pq.write_table(pa.Table.from_pylist(flat, schema=_PARQUET), directory / "rows.parquet")
    return {name: file_sha256(directory / name) for name in EXPORT_FILES}


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """The canonical rows held in an export's ``rows.parquet``."""
    rows = pq.read_table(path).to_pylist()
    return [{**r, "method_params": dict(r["method_params"] or [])} for r in rows]


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

    The manifest holds no time of writing and no location, so the same export built twice
    (same positions and ``as_of``) gives the same bytes in every file.

    The projection is first brought up to the export's positions if it is behind them.
    """
    as_of = as_of or utc_now()
    suffixes = (*EXPORT_TOPICS, *(("relabels",) if run else ()))
    topics = [topic_name(settings.topic_prefix, s) for s in suffixes]
    positions = end_positions(settings, topics)
    _ensure_projected(client, settings, positions)
    rows = export_rows_sql(client, schema_version, as_of, positions, run)
    if run and not rows:
        raise LabeltrailError(f"no labels of run {run!r} under {schema_version} by {as_of}")
    data = jsonl(rows)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    export_id = export_id_for(schema_version, sql_time(as_of), positions, run)
    directory = (out_dir / export_id).resolve()
    files = _write_files(directory, rows, data)
    event = export_created(
        producer=PRODUCER,
        export_id=export_id,
        schema_version=schema_version,
        as_of=as_of,
        positions=positions,
        digest=digest,
        row_count=len(rows),
        uri=directory.as_uri(),
        run=run,
    )
    manifest = render_manifest(event, files)
    (directory / MANIFEST).write_bytes(manifest)
    # The manifest's own hash goes on the log: with it, a manifest rehashed after its files were
    # changed no longer matches what the export recorded.
    event = event.model_copy(update={"manifest_hash": json.loads(manifest)["manifest_hash"]})
    sink = producer or EventProducer(settings)
    sink.send(event)
    sink.flush()
    return event


@dataclass(frozen=True)
class VerifyResult:
    """The recorded hash, the one rebuilt from the log, the files checked and every problem."""

    export_id: str
    recorded_hash: str
    rebuilt_hash: str
    rebuilt_rows: int
    checked_files: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.rebuilt_hash == self.recorded_hash and not self.problems


def rebuild_rows(settings: Settings, export: ExportCreated | Manifest) -> list[dict[str, Any]]:
    """The export's rows, rebuilt from the log up to its positions (no ClickHouse)."""
    fold = ExportFold(
        export.schema_version, export.as_of, export.aggregator_params.get(RUN_PARAM, "")
    )
    for event, position in read_until(settings, export.log_positions):
        fold.apply(event, position)
    return fold.rows()


def _reproduces(recorded: str, rebuilt: str) -> list[str]:
    if rebuilt == recorded:
        return []
    return [f"the rows rebuilt from the log hash to {rebuilt}, the export records {recorded}"]


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
