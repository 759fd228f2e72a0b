"""The typed ClickHouse tables, one per event type, and how an event becomes their rows.

Every row carries the event's envelope and its log position, so it traces back to its record;
tables are ``ReplacingMergeTree(replace_rank)`` keyed on ``event_id``, so a replayed event
replaces its copy and a live run and a rebuild keep the same (earliest) row; read them with
``FINAL`` (``docs/audit.md``, "Projections"). The DDL lives in ``projections/ddl/``, and
``tests/clickhouse/test_tables.py`` keeps the column lists here and there in step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from labeltrail.events.base import Event
from labeltrail.events.models import GOLD_REQUEST_PREFIX

__all__ = [
    "ENVELOPE_COLUMNS",
    "RAW_TABLE",
    "TABLES",
    "Column",
    "Projection",
    "TypedTable",
    "replace_rank",
]

Getter = Callable[[dict[str, Any]], Any]

_STR = pa.string()
_F64 = pa.float64()
_TS = pa.timestamp("ms", tz="UTC")
_STRS = pa.list_(pa.string())
_F64S = pa.list_(pa.float64())
_MAP = pa.map_(pa.string(), pa.string())
_FMAP = pa.map_(pa.string(), pa.float64())
_POSITIONS = pa.list_(
    pa.struct([("topic", pa.string()), ("partition", pa.uint32()), ("offset", pa.uint64())])
)
_MAX_U64 = 2**64 - 1


def replace_rank(offset: int) -> int:
    """The ReplacingMergeTree version of a row: the earliest copy on the log ranks highest."""
    return _MAX_U64 - offset


@dataclass(frozen=True)
class Column:
    """One column: its name, Arrow type and how to read it from an event's fields."""

    name: str
    arrow: pa.DataType
    get: Getter


def _field(name: str, arrow: pa.DataType, source: str | None = None) -> Column:
    key = source or name
    if arrow in (_MAP, _FMAP):
        return Column(name, arrow, lambda f: list((f.get(key) or {}).items()))
    if arrow == _POSITIONS:
        return Column(name, arrow, lambda f: [dict(p.__dict__) for p in f[key]])
    return Column(name, arrow, lambda f: f.get(key))


def _text(name: str) -> Column:
    return Column(name, _STR, lambda f: f.get(name) or "")


@dataclass(frozen=True)
class TypedTable:
    """A table holding the events of one type, with the envelope and position columns first."""

    name: str
    event_type: str
    columns: tuple[Column, ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [(c.name, c.arrow) for c in ENVELOPE_COLUMNS]
            + [(c.name, c.arrow) for c in self.columns]
        )


ENVELOPE_COLUMNS: tuple[Column, ...] = (
    Column("event_id", _STR, lambda f: f["envelope"].event_id),
    Column("topic", _STR, lambda f: f["_pos"][0]),
    Column("partition", pa.uint32(), lambda f: f["_pos"][1]),
    Column("offset", pa.uint64(), lambda f: f["_pos"][2]),
    Column("replace_rank", pa.uint64(), lambda f: replace_rank(f["_pos"][2])),
    Column("occurred_at", _TS, lambda f: f["envelope"].occurred_at),
    Column("recorded_at", _TS, lambda f: f["envelope"].recorded_at),
    Column("producer", _STR, lambda f: f["envelope"].producer),
    Column("causation_id", _STR, lambda f: f["envelope"].causation_id or ""),
    Column("correlation_id", _STR, lambda f: f["envelope"].correlation_id or ""),
)
"""Columns every typed table starts with."""


def _table(name: str, event_type: str, *columns: Column) -> TypedTable:
    return TypedTable(name, event_type, columns)


TABLES: tuple[TypedTable, ...] = (
    _table(
        "comments",
        "CommentPosted",
        _field("comment_id", _STR),
        _field("video_id", _STR),
        _field("author_hash", _STR),
        _field("text", _STR),
        _field("posted_at", _TS),
        _field("source", _STR),
        _field("parent_ids", _STRS),
        _field("attributes", _MAP),
    ),
    _table(
        "label_schemas",
        "LabelSchemaPublished",
        _field("version", _STR),
        _field("classes", _STRS),
        Column("question_ids", _STRS, lambda f: [q.question_id for q in f["questions"]]),
        Column("question_texts", _STRS, lambda f: [q.text for q in f["questions"]]),
        _field("guideline_hash", _STR),
        _field("supersedes", _STR),
        _field("old_label_policy", _STR),
        _field("relabel_classes", _STRS),
    ),
    _table(
        "scores",
        "CommentScored",
        _field("comment_id", _STR),
        _field("model_version", _STR),
        _field("classes", _STRS),
        _field("probabilities", _F64S),
        _field("margin", _F64),
        _field("route", _STR),
        _field("threshold", _F64),
        _field("temperature", _F64),
        _field("confidence", _F64),
    ),
    _table(
        "tasks",
        "TaskCreated",
        _field("task_id", _STR),
        _field("comment_id", _STR),
        _field("schema_version", _STR),
        _field("kind", _STR),
        _field("reason", _STR),
        _field("questions", _STRS),
        _field("redundancy", pa.uint32()),
        _field("prelabel", _STR),
        _field("prelabel_confidence", _F64),
        _field("expected_label", _STR),
        _field("request_id", _STR),
    ),
    _table(
        "task_requests",
        "TaskRequested",
        _field("request_id", _STR),
        _field("comment_id", _STR),
        _field("reason", _STR),
        _field("strategy", _STR),
        _field("score", _F64),
        _field("rank", pa.uint32()),
        _field("batch_id", _STR),
        _field("batch_size", pa.uint32()),
        _field("trigger", _STR),
        _field("model_versions", _STRS),
        _field("diversity", _F64),
        _field("cost_usd", _F64),
    ),
    _table(
        "assignments",
        "TaskAssigned",
        _field("assignment_id", _STR),
        _field("task_id", _STR),
        _field("comment_id", _STR),
        _field("annotator_id", _STR),
        _field("pool", _STR),
        _field("schema_version", _STR),
        _field("questions", _STRS),
        _field("context", _STRS),
        _field("prelabel", _STR),
        _field("prelabel_confidence", _F64),
        Column("prior_votes", _STRS, lambda f: [v.label for v in f["prior_votes"]]),
        _field("request_id", _STR),
        _field("cost_usd", _F64),
    ),
    _table(
        "votes",
        "VoteCast",
        _field("vote_id", _STR),
        _field("task_id", _STR),
        _field("comment_id", _STR),
        _field("annotator_id", _STR),
        _field("schema_version", _STR),
        _field("label", _STR),
        _field("answers", _MAP),
        _field("confidence", _F64),
        _field("time_spent_ms", pa.uint64()),
        _field("prelabel_shown", pa.bool_()),
    ),
    _table(
        "consensus",
        "ConsensusUpdated",
        _field("comment_id", _STR),
        _field("schema_version", _STR),
        _field("method", _STR),
        _field("method_params", _MAP),
        _field("classes", _STRS),
        _field("posterior", _F64S),
        _field("label", _STR),
        _field("agreement", _F64),
        _field("vote_ids", _STRS),
        _field("annotator_ids", _STRS),
        _field("votes_expected", pa.uint32()),
        _field("status", _STR),
    ),
    _table(
        "adjudication_requests",
        "AdjudicationRequested",
        _field("request_id", _STR),
        _field("comment_id", _STR),
        _field("schema_version", _STR),
        _field("reason", _STR),
        _field("agreement", _F64),
        _field("threshold", _F64),
        _field("vote_ids", _STRS),
    ),
    _table(
        "adjudications",
        "AdjudicationRecorded",
        _field("adjudication_id", _STR),
        _field("request_id", _STR),
        _field("task_id", _STR),
        _field("comment_id", _STR),
        _field("schema_version", _STR),
        _field("reviewer_id", _STR),
        _field("label", _STR),
        _field("confidence", _F64),
        _field("note", _STR),
        _field("context_seen", _STRS),
        Column("is_gold", pa.bool_(), lambda f: f["request_id"].startswith(GOLD_REQUEST_PREFIX)),
    ),
    _table(
        "labels",
        "LabelCommitted",
        _field("label_id", _STR),
        _field("comment_id", _STR),
        _field("schema_version", _STR),
        _field("label", _STR),
        _field("classes", _STRS),
        _field("distribution", _F64S),
        _field("confidence", _F64),
        _field("route", _STR),
        _field("method", _STR),
        _field("method_params", _MAP),
        _field("vote_ids", _STRS),
        _field("annotator_ids", _STRS),
        _field("adjudication_id", _STR),
        _field("machine_made", pa.bool_()),
        _field("gold_label", _STR),
        _field("source_positions", _POSITIONS),
        _text("run_id"),
    ),
    _table(
        "question_labels",
        "QuestionLabelCommitted",
        _field("label_id", _STR),
        _field("comment_id", _STR),
        _field("schema_version", _STR),
        _field("question_id", _STR),
        _field("answer", _STR),
        _field("answers", _STRS),
        _field("distribution", _F64S),
        _field("agreement", _F64),
        _field("method", _STR),
        _field("vote_ids", _STRS),
        _field("annotator_ids", _STRS),
        _field("consensus_id", _STR),
    ),
    _table(
        "weak_votes",
        "WeakVoteCast",
        _field("vote_id", _STR),
        _field("comment_id", _STR),
        _field("schema_version", _STR),
        _field("source", _STR),
        _field("source_name", _STR),
        _field("source_version", _STR),
        _field("label", _STR),
    ),
    _table(
        "honeypot_results",
        "HoneypotScored",
        _field("annotator_id", _STR),
        _field("task_id", _STR),
        _field("vote_id", _STR),
        _field("comment_id", _STR),
        _field("schema_version", _STR),
        _field("source", _STR),
        _field("expected_label", _STR),
        _field("given_label", _STR),
        _field("correct", pa.bool_()),
    ),
    _table(
        "reliability",
        "AnnotatorReliabilityUpdated",
        _field("annotator_id", _STR),
        _field("schema_version", _STR),
        _field("method", _STR),
        _field("accuracy", _F64),
        _field("accuracy_lower", _F64),
        _field("accuracy_upper", _F64),
        _field("previous_accuracy", _F64),
        _field("n_observations", pa.uint64()),
        _field("classes", _STRS),
        _field("confusion", pa.list_(_F64S)),
        _field("window_start", _TS),
        _field("window_end", _TS),
    ),
    _table(
        "calibrations",
        "CalibrationFitted",
        _field("schema_version", _STR),
        _field("method", _STR),
        _field("temperature", _F64),
        _field("classes", _STRS),
        _field("n_gold", pa.uint64()),
        _field("ece_before", _F64),
        _field("ece_after", _F64),
        _field("bin_count_before", pa.list_(pa.uint64())),
        _field("bin_confidence_before", _F64S),
        _field("bin_accuracy_before", _F64S),
        _field("bin_count_after", pa.list_(pa.uint64())),
        _field("bin_confidence_after", _F64S),
        _field("bin_accuracy_after", _F64S),
        _field("consensus_ids", _STRS),
        _field("window_end", _TS),
    ),
    _table(
        "iaa_windows",
        "IaaWindowClosed",
        _field("window", _STR),
        _field("window_start", _TS),
        _field("window_end", _TS),
        _field("schema_version", _STR),
        _field("question", _STR),
        _field("slice", _STR),
        _field("metric", _STR),
        _field("agreement", _F64),
        _field("gold_accuracy", _F64),
        _field("n_items", pa.uint64()),
        _field("n_gold_items", pa.uint64()),
        _field("blind_spot", pa.bool_()),
    ),
    _table(
        "feedback",
        "FeedbackReceived",
        _field("feedback_id", _STR),
        _field("comment_id", _STR),
        _field("kind", _STR),
        _field("label", _STR),
        _field("actor_hash", _STR),
        _field("actor_kind", _STR),
        _text("note"),
    ),
    _table(
        "models",
        "ModelPublished",
        _field("model_version", _STR),
        _field("artifact_uri", _STR),
        _field("artifact_sha256", _STR),
        _field("classes", _STRS),
        _field("export_id", _STR),
        _field("export_hash", _STR),
        _field("metrics", _FMAP),
        _field("schema_version", _STR),
        _field("baseline_version", _STR),
        _field("forced", pa.bool_()),
        _text("force_reason"),
        _field("temperature", _F64),
    ),
    _table(
        "model_refusals",
        "ModelRefused",
        _field("model_version", _STR),
        _field("artifact_sha256", _STR),
        _field("classes", _STRS),
        _field("schema_version", _STR),
        _field("export_id", _STR),
        _field("baseline_version", _STR),
        _field("tolerance", _F64),
        _field("worse_slices", _STRS),
        _field("reason", _STR),
        _field("metrics", _FMAP),
    ),
    _table(
        "exports",
        "ExportCreated",
        _field("export_id", _STR),
        _field("schema_version", _STR),
        _field("as_of", _TS),
        _field("log_positions", _POSITIONS),
        _field("aggregator", _STR),
        _field("aggregator_params", _MAP),
        _field("content_hash", _STR),
        _field("row_count", pa.uint64()),
        _field("uri", _STR),
        _field("manifest_hash", _STR),
    ),
    _table(
        "annotators",
        "AnnotatorRegistered",
        _field("annotator_id", _STR),
        _field("pool", _STR),
        _field("locale", _STR),
        _field("languages", _STRS),
        _field("consented", pa.bool_()),
        Column(
            "demographics",
            _MAP,
            lambda f: list(f["demographics"].items()) if f["consented"] else [],
        ),
    ),
    _table(
        "annotator_suspensions",
        "AnnotatorSuspended",
        _field("annotator_id", _STR),
        _field("reason", _STR),
        _field("actor", _STR),
        _field("evidence", _MAP),
    ),
    _table(
        "annotator_reinstatements",
        "AnnotatorReinstated",
        _field("annotator_id", _STR),
        _field("reason", _STR),
        _field("actor", _STR),
        _field("evidence", _MAP),
    ),
    _table(
        "erasures",
        "CommentsErased",
        _field("erasure_id", _STR),
        _field("subject", _STR),
        _field("comment_ids", _STRS),
        _field("key_ids", _STRS),
        _field("actor", _STR),
        _field("reason", _STR),
    ),
    _table(
        "dead_letters",
        "DeadLettered",
        _field("source_topic", _STR),
        _field("source_partition", pa.int64()),
        _field("source_offset", pa.int64()),
        _field("reason_code", _STR),
        _field("reason", _STR),
        _field("stage", _STR),
        Column("source_key_hex", _STR, lambda f: (f.get("source_key") or b"").hex()),
        Column("payload_hex", _STR, lambda f: f["payload"].hex()),
        _field("payload_size", pa.int64()),
        _field("payload_sha256", _STR),
        _field("payload_truncated", pa.bool_()),
    ),
)
"""Every typed table; each event type has exactly one."""

RAW_TABLE = _table(
    "events",
    "*",
    Column("event_type", _STR, lambda f: f["envelope"].event_type),
    Column("message_key", _STR, lambda f: f["_key"]),
    _text("comment_id"),
    Column("annotator_id", _STR, lambda f: f.get("annotator_id") or f.get("reviewer_id") or ""),
    Column("schema_version", _STR, lambda f: f.get("schema_version") or f.get("version") or ""),
    Column("payload", _STR, lambda f: f["_json"]),
)
"""The raw log: every event with its JSON payload (fields without the envelope)."""

_BY_TYPE = {t.event_type: t for t in TABLES}
_COLUMNS = {t.name: ENVELOPE_COLUMNS + t.columns for t in (*TABLES, RAW_TABLE)}


@dataclass
class Projection:
    """Column buffers for the raw table and every typed table, filled one event at a time."""

    buffers: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, event: Event, topic: str, partition: int, offset: int) -> None:
        # The model's own attributes (nested records stay objects): no dump needed per event.
        fields: dict[str, Any] = dict(event.__dict__)
        fields["_pos"] = (topic, partition, offset)
        fields["_key"] = event.key
        fields["_json"] = event.model_dump_json(exclude={"envelope"})
        self._append(RAW_TABLE, fields)
        typed = _BY_TYPE.get(event.envelope.event_type)
        if typed is not None:
            self._append(typed, fields)

    def extend(self, items: Iterable[tuple[Event, str, int, int]]) -> None:
        for item in items:
            self.add(*item)

    def _append(self, table: TypedTable, fields: dict[str, Any]) -> None:
        columns = _COLUMNS[table.name]
        buf = self.buffers.get(table.name)
        if buf is None:
            buf = self.buffers[table.name] = {c.name: [] for c in columns}
        for column in columns:
            buf[column.name].append(column.get(fields))
        self.counts[table.name] = self.counts.get(table.name, 0) + 1

    def arrow_tables(self) -> dict[str, pa.Table]:
        """One Arrow table per table that received rows; the raw ``events`` table last."""
        by_name = {t.name: t for t in (*TABLES, RAW_TABLE)}
        out: dict[str, pa.Table] = {}
        for name in sorted(self.buffers, key=lambda n: (n == RAW_TABLE.name, n)):
            table = by_name[name]
            out[name] = pa.Table.from_pydict(self.buffers[name], schema=table.schema)
        return out
