"""Bulk decoding of Avro single-object records into light rows, for replays and rebuilds.

A replay needs only a few fields of the two hot event types, so :func:`decode_rows` reads
``VoteCast`` and ``TaskCreated`` into :class:`VoteRow` / :class:`TaskRow` without building
pydantic models (about 5x the cost of the Avro read), checking by hand every rule the model
enforces. It never accepts what :func:`~labeltrail.events.serde.decode` rejects: any record it
cannot vouch for goes to ``decode`` itself (``docs/replay.md``, "Columnar decoding and what it
rejects").
"""

from __future__ import annotations

import io
import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

from fastavro import schemaless_reader
from fastavro.schema import parse_schema

from labeltrail.events.avro import accepted_writers, committed_schemas, schema_dir
from labeltrail.events.base import EPOCH, Event, epoch_millis
from labeltrail.events.models import LabelCommitted, TaskCreated, TaskKind, TaskReason, VoteCast
from labeltrail.events.native import native as labeltrail_native
from labeltrail.events.plan import Plan, contract
from labeltrail.events.serde import MAGIC, decode
from labeltrail.exceptions import SerializationError

__all__ = [
    "DecodedRows",
    "LabelCommittedRow",
    "TaskRow",
    "VoteRow",
    "decode_label_rows",
    "decode_rows",
]

_HEADER = len(MAGIC) + 8
_MAX_MS = 221845392000000
"""Year 9000: later timestamps go through the per-event decode, whatever it decides."""
_KINDS = frozenset(typing.get_args(TaskKind))
_REASONS = frozenset(typing.get_args(TaskReason))


class VoteRow(NamedTuple):
    """What the folds read of a ``VoteCast``."""

    vote_id: str
    task_id: str
    comment_id: str
    annotator_id: str
    schema_version: str
    label: str
    event_id: str
    occurred_ms: int

    @classmethod
    def of(cls, vote: VoteCast) -> VoteRow:
        return cls(
            vote.vote_id,
            vote.task_id,
            vote.comment_id,
            vote.annotator_id,
            vote.schema_version,
            vote.label,
            vote.envelope.event_id,
            epoch_millis(vote.envelope.occurred_at),
        )


class TaskRow(NamedTuple):
    """What the folds read of a ``TaskCreated``."""

    task_id: str
    comment_id: str
    schema_version: str
    kind: str
    redundancy: int
    annotators: tuple[str, ...]
    expected_label: str | None

    @classmethod
    def of(cls, task: TaskCreated) -> TaskRow:
        return cls(
            task.task_id,
            task.comment_id,
            task.schema_version,
            task.kind,
            task.redundancy,
            tuple(task.annotators),
            task.expected_label,
        )


class LabelCommittedRow(NamedTuple):
    """A ``LabelCommitted`` without its model: every field but ``source_positions`` (where the
    label's own inputs were read), and of the envelope its id and times (integer
    milliseconds). What a bulk reader of committed labels needs (``labeltrail relabel``)."""

    label_id: str
    comment_id: str
    schema_version: str
    label: str
    classes: list[str]
    distribution: list[float]
    confidence: float
    route: str
    method: str
    method_params: dict[str, str]
    vote_ids: list[str]
    annotator_ids: list[str]
    adjudication_id: str | None
    machine_made: bool
    gold_label: str | None
    run_id: str | None
    event_id: str
    occurred_ms: int
    recorded_ms: int

    @classmethod
    def of(cls, label: LabelCommitted) -> LabelCommittedRow:
        env = label.envelope
        return cls._make(
            [
                *(getattr(label, f) for f in cls._fields[:16]),
                env.event_id,
                epoch_millis(env.occurred_at),
                epoch_millis(env.recorded_at),
            ]
        )


Decoded = VoteRow | TaskRow | LabelCommittedRow | Event


@dataclass
class DecodedRows:
    """One batch, decoded: ``rows[i]`` came from input ``indices[i]``; ``errors`` are the
    inputs the per-event decode rejects, with its error (``reason_code`` for the dead letter).
    """

    rows: list[Decoded] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    errors: list[tuple[int, SerializationError]] = field(default_factory=list)
    fast: int = 0
    """How many records the fast path decoded (the rest went through ``decode``)."""


def _plain(schema: Any) -> Any:
    """The schema without logical types: same bytes, timestamps read as integers."""
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_plain(s) for s in schema]
    return schema


@cache
def _fast_schemas() -> dict[bytes, tuple[str, Any]]:
    """Current header -> (event type, plain parsed schema), for the two hot types (both byte
    orders of the fingerprint: :func:`~labeltrail.events.avro.accepted_writers`)."""
    out: dict[bytes, tuple[str, Any]] = {}
    current = committed_schemas()
    for writer in {w.fingerprint: w for w in accepted_writers().values()}.values():
        if writer.name in ("VoteCast", "TaskCreated") and writer.schema is current[writer.name]:
            raw = json.loads((schema_dir() / f"{writer.name}.avsc").read_text())
            entry = (writer.name, parse_schema(_plain(raw)))
            out.update(dict.fromkeys(_headers(writer.fingerprint), entry))
    return out


def _headers(fingerprint: bytes) -> list[bytes]:
    """Every header a reader accepts for the writer with this fingerprint."""
    return [h for h, w in accepted_writers().items() if w.fingerprint == fingerprint]


def _envelope_ok(env: dict[str, Any], name: str) -> bool:
    return bool(
        env["event_type"] == name
        and 0 <= env["occurred_at"] <= _MAX_MS
        and 0 <= env["recorded_at"] <= _MAX_MS
    )


def _vote(rec: dict[str, Any]) -> VoteRow | None:
    env = rec["envelope"]
    confidence = rec["confidence"]
    if (
        not _envelope_ok(env, "VoteCast")
        or rec["time_spent_ms"] < 0
        or (confidence is not None and not 0.0 <= confidence <= 1.0)
    ):
        return None
    return VoteRow(
        rec["vote_id"],
        rec["task_id"],
        rec["comment_id"],
        rec["annotator_id"],
        rec["schema_version"],
        rec["label"],
        env["event_id"],
        env["occurred_at"],
    )


def _task(rec: dict[str, Any]) -> TaskRow | None:
    env = rec["envelope"]
    confidence = rec["prelabel_confidence"]
    if (
        not _envelope_ok(env, "TaskCreated")
        or rec["kind"] not in _KINDS
        or rec["reason"] not in _REASONS
        or rec["redundancy"] < 1
        or not rec["cost_usd"] >= 0.0
        or (confidence is not None and not 0.0 <= confidence <= 1.0)
    ):
        return None
    return TaskRow(
        rec["task_id"],
        rec["comment_id"],
        rec["schema_version"],
        rec["kind"],
        rec["redundancy"],
        tuple(rec["annotators"]),
        rec["expected_label"],
    )


def _fast(data: bytes, fast: dict[bytes, tuple[str, Any]]) -> VoteRow | TaskRow | None:
    if len(data) < _HEADER or data[:2] != MAGIC:
        return None
    entry = fast.get(data[2:_HEADER])
    if entry is None:
        return None
    name, schema = entry
    buf = io.BytesIO(data)
    buf.seek(_HEADER)
    try:
        rec = schemaless_reader(buf, schema, None)
    except Exception:  # a corrupt body: decode() says how, with its own error
        return None
    if buf.tell() != len(data) or not isinstance(rec, dict):
        return None
    return _vote(rec) if name == "VoteCast" else _task(rec)


_ROWS: dict[str, tuple[type[VoteRow] | type[TaskRow], dict[str, tuple[str, ...]]]] = {
    "VoteCast": (
        VoteRow,
        {
            **{f: (f,) for f in VoteRow._fields[:6]},
            "event_id": ("envelope", "event_id"),
            "occurred_ms": ("envelope", "occurred_at"),
        },
    ),
    "TaskCreated": (TaskRow, {f: (f,) for f in TaskRow._fields}),
}
"""Per hot type, its row and where each row field comes from in the record."""

_ENVELOPE_FIELDS = {
    "event_id": ("envelope", "event_id"),
    "occurred_ms": ("envelope", "occurred_at"),
    "recorded_ms": ("envelope", "recorded_at"),
}
_LABEL_ROWS: dict[str, tuple[type[LabelCommittedRow], dict[str, tuple[str, ...]]]] = {
    "LabelCommitted": (
        LabelCommittedRow,
        {**{f: (f,) for f in LabelCommittedRow._fields[:16]}, **_ENVELOPE_FIELDS},
    ),
}
"""The committed labels' row (read by :func:`decode_label_rows`)."""


def _row_plan(plan: Plan, name: str, where: dict[tuple[str, ...], int]) -> Plan:
    """A record plan for the native rows reader: no models; the row slot of each picked field;
    the envelope's event type must be ``name`` and its timestamps integers in 0.._MAX_MS, as
    :func:`_envelope_ok` requires."""

    def walk(node: Plan, path: tuple[str, ...]) -> Plan:
        kind = node[0]
        if kind == "record":
            names, nodes = node[2], node[3]
            inner = tuple(walk(n, (*path, f)) for f, n in zip(names, nodes, strict=True))
            picks = tuple(
                (where[(*path, f)], f == "annotators") if (*path, f) in where else None
                for f in names
            )
            return ("record", None, names, inner, picks)
        if path == ("envelope", "event_type"):
            return ("string", (("in", (name,)),))
        if kind == "millis" and path[:1] == ("envelope",):
            return ("millis_int", 0, _MAX_MS)
        if kind in ("optional", "array", "map"):
            return (kind, walk(node[1], path), *node[2:])
        return node

    return walk(plan, ())


@cache
def _native_rows() -> Any:
    """The native batch reader of the hot types' rows, or None (the fastavro path)."""
    return _native_reader(_ROWS)


@cache
def _native_label_rows() -> Any:
    """The native batch reader of :class:`LabelCommittedRow`, or None (the per-event path)."""
    return _native_reader(_LABEL_ROWS)


def _native_reader(types: dict[str, tuple[Any, dict[str, tuple[str, ...]]]]) -> Any:
    if labeltrail_native is None:
        return None
    kinds = []
    for name, (row, fields) in types.items():
        found = contract(name)
        if found is None:
            return None
        plan, fingerprint = found
        where = {path: row._fields.index(f) for f, path in fields.items()}
        rows_plan = _row_plan(plan, name, where)
        for header in _headers(fingerprint):
            kinds.append((header, rows_plan, row, len(row._fields)))
    try:
        return labeltrail_native.Rows(MAGIC, kinds, EPOCH.tzinfo)
    except (ValueError, TypeError):
        return None


def decode_rows(values: Sequence[bytes]) -> DecodedRows:
    """Decode a batch of record values: a row for each record the fast path vouches for, else
    what :func:`~labeltrail.events.serde.decode` gives (the event, or its error)."""
    fast = _fast_schemas()
    out = DecodedRows()
    rows, indices = out.rows, out.indices
    native = _native_rows()
    # The native reader accepts a subset of what _fast accepts (the Python compiled reader's
    # rules), with the same rows; whatever it leaves (None) goes the fastavro way.
    pre: list[Any] = native.rows(values) if native is not None else [None] * len(values)
    for i, data in enumerate(values):
        row = pre[i] or _fast(data, fast)
        if row is not None:
            rows.append(row)
            indices.append(i)
            out.fast += 1
            continue
        try:
            event = decode(data)
        except SerializationError as exc:
            out.errors.append((i, exc))
            continue
        rows.append(event)
        indices.append(i)
    return out


def decode_label_rows(values: Sequence[bytes]) -> DecodedRows:
    """Decode a batch of the labels topic: a :class:`LabelCommittedRow` for each
    ``LabelCommitted``, anything else as :func:`~labeltrail.events.serde.decode` gives it (the
    event, or its error). The native reader checks every constraint of the model by its plan,
    as the native codec does; a record it does not vouch for (or every record, without the
    native codec) goes through ``decode``, and a ``LabelCommitted`` from there becomes its row.
    """
    native = _native_label_rows()
    pre: list[Any] = native.rows(values) if native is not None else [None] * len(values)
    out = DecodedRows()
    for i, data in enumerate(values):
        row = pre[i]
        if row is not None:
            out.fast += 1
        else:
            try:
                row = decode(data)
            except SerializationError as exc:
                out.errors.append((i, exc))
                continue
            if isinstance(row, LabelCommitted):
                row = LabelCommittedRow.of(row)
        out.rows.append(row)
        out.indices.append(i)
    return out
