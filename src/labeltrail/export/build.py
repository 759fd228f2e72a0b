"""Create a versioned export from ClickHouse, and verify one by rebuilding it from the log.

An export names everything it depends on: its schema version, the time it stands at
(``as_of``), the end offset of every partition of the labels, votes and adjudications topics when
it was made, and its aggregator and parameters. ``ExportCreated`` records those and the content
hash; ``verify`` replays the log up to the named positions through :class:`ExportFold` and
checks that the hash comes out the same, however much the log has grown since.
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
from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.client import run_named
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.clickhouse.writer import BatchWriter
from labeltrail.config import Settings
from labeltrail.events.base import LogPosition, utc_now
from labeltrail.events.ids import derive_id
from labeltrail.events.models import ExportCreated
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import LabeltrailError
from labeltrail.export.log import end_positions, read_until
from labeltrail.export.rows import (
    AGGREGATOR,
    AGGREGATOR_PARAMS,
    ExportFold,
    canonical_from_sql,
    content_hash,
    jsonl,
)
from labeltrail.kafka.producer import EventProducer

__all__ = [
    "EXPORT_TOPICS",
    "VerifyResult",
    "create_export",
    "export_rows_sql",
    "find_export",
    "rebuild_rows",
    "sql_time",
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
    client: Client, schema_version: str, as_of: dt.datetime, positions: list[LogPosition]
) -> list[dict[str, Any]]:
    """Canonical export rows, read from ClickHouse with the ``export_rows`` named query."""
    rows = run_named(
        client,
        "export_rows",
        schema_version=schema_version,
        at=sql_time(as_of),
        positions=json.dumps([[p.topic, p.partition, p.offset] for p in positions]),
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


def _write_files(directory: Path, rows: list[dict[str, Any]], data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rows.jsonl").write_bytes(data)
    ordered = sorted(rows, key=lambda r: str(r["comment_id"]))
    flat = [{**r, "method_params": list(r["method_params"].items())} for r in ordered]
    pq.write_table(pa.Table.from_pylist(flat, schema=_PARQUET), directory / "rows.parquet")


def create_export(
    client: Client,
    settings: Settings,
    *,
    schema_version: str,
    out_dir: Path,
    as_of: dt.datetime | None = None,
    producer: EventProducer | None = None,
) -> ExportCreated:
    """Write ``<out_dir>/<export_id>/`` (rows.parquet, rows.jsonl, manifest.json) and record it.

    The projection is first brought up to the export's positions if it is behind them.
    """
    as_of = as_of or utc_now()
    topics = [topic_name(settings.topic_prefix, s) for s in EXPORT_TOPICS]
    positions = end_positions(settings, topics)
    _ensure_projected(client, settings, positions)
    rows = export_rows_sql(client, schema_version, as_of, positions)
    data = jsonl(rows)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    export_id = derive_id(
        "export",
        schema_version,
        sql_time(as_of),
        [f"{p.topic}:{p.partition}:{p.offset}" for p in positions],
        AGGREGATOR,
        [f"{k}={v}" for k, v in AGGREGATOR_PARAMS.items()],
    )
    directory = (out_dir / export_id).resolve()
    _write_files(directory, rows, data)
    event = ExportCreated.create(
        producer=PRODUCER,
        id_parts=(export_id, digest),
        export_id=export_id,
        schema_version=schema_version,
        as_of=as_of,
        log_positions=positions,
        aggregator=AGGREGATOR,
        aggregator_params=AGGREGATOR_PARAMS,
        content_hash=digest,
        row_count=len(rows),
        uri=directory.as_uri(),
    )
    (directory / "manifest.json").write_text(event.model_dump_json(indent=2) + "\n")
    sink = producer or EventProducer(settings)
    sink.send(event)
    sink.flush()
    return event


@dataclass(frozen=True)
class VerifyResult:
    """The recorded hash, the one rebuilt from the log, and the files' own hash if present."""

    export_id: str
    recorded_hash: str
    rebuilt_hash: str
    rebuilt_rows: int
    file_hash: str | None

    @property
    def ok(self) -> bool:
        file_ok = self.file_hash is None or self.file_hash == self.recorded_hash
        return self.rebuilt_hash == self.recorded_hash and file_ok


def rebuild_rows(settings: Settings, export: ExportCreated) -> list[dict[str, Any]]:
    """The export's rows, rebuilt from the log up to its positions (no ClickHouse)."""
    fold = ExportFold(export.schema_version, export.as_of)
    for event, position in read_until(settings, export.log_positions):
        fold.apply(event, position)
    return fold.rows()


def verify_export(settings: Settings, export: ExportCreated) -> VerifyResult:
    """Rebuild an export from the log and compare hashes (and the files, if reachable)."""
    rows = rebuild_rows(settings, export)
    file_hash = None
    if export.uri.startswith("file://"):
        path = Path(export.uri.removeprefix("file://")) / "rows.jsonl"
        if path.is_file():
            file_hash = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return VerifyResult(
        export.export_id, export.content_hash, content_hash(rows), len(rows), file_hash
    )


def find_export(settings: Settings, reference: str) -> ExportCreated:
    """An export by manifest path, export directory, or export id (looked up on the log)."""
    path = Path(reference)
    if path.is_dir():
        path = path / "manifest.json"
    if path.is_file():
        return ExportCreated.model_validate_json(path.read_text())
    topic = topic_name(settings.topic_prefix, "exports")
    found: ExportCreated | None = None
    for event, _ in read_until(settings, end_positions(settings, [topic])):
        if isinstance(event, ExportCreated) and event.export_id == reference:
            found = found or event
    if found is None:
        raise LabeltrailError(f"no export {reference!r} on {topic} and no such manifest")
    return found
