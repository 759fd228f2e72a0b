"""Export rows in canonical form, their content hash, and the pure fold that rebuilds them.

A row is one comment's training example as of the export (latest label, soft label, votes,
adjudication, gold verdict). ClickHouse makes the rows of an export
(``projections/queries/export_rows.sql``) and :class:`ExportFold` rebuilds them from the log
to verify it; both reduce to the same canonical JSON lines, whose SHA-256 is the export's
content hash. Pure: no Kafka, no ClickHouse.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    GOLD_REQUEST_PREFIX,
    AdjudicationRecorded,
    ExportCreated,
    LabelCommitted,
    LabelSchemaPublished,
    QuestionLabelCommitted,
    VoteCast,
)

__all__ = [
    "AGGREGATOR",
    "AGGREGATOR_PARAMS",
    "PRIOR_PARAM",
    "RUN_PARAM",
    "ExportFold",
    "Migration",
    "aggregator_params",
    "canonical_from_sql",
    "content_hash",
    "export_created",
    "export_id_for",
    "iso",
    "jsonl",
    "migration_of",
    "prior_columns",
]

AGGREGATOR = "latest-committed-label"
"""How an export picks each comment's label: the committed label, not a re-aggregation."""

AGGREGATOR_PARAMS: dict[str, str] = {
    "order": "recorded_at,occurred_at,event_id",
    "time_axis": "recorded_at",
    "gold": "adjudications with request_id gold:*",
    "votes": "the label's vote_ids",
}
"""The selection rule, recorded in every ExportCreated."""

RUN_PARAM = "run"
"""The aggregator parameter naming the labeling run an export takes its labels from
(``labeltrail export create --run``); absent: the live pipeline's labels."""


PRIOR_PARAM = "prior_labels"
"""The aggregator parameter naming the older schema version whose labels an export carries as
feature columns (its schema superseded that version with ``keep_as_feature``); absent: none."""


def aggregator_params(run: str = "", prior: str = "") -> dict[str, str]:
    """:data:`AGGREGATOR_PARAMS`, with the run and the prior version when they are named."""
    params = dict(AGGREGATOR_PARAMS)
    if run:
        params[RUN_PARAM] = run
    if prior:
        params[PRIOR_PARAM] = prior
    return params


def prior_columns(prior: str) -> tuple[str, str]:
    """The feature columns an export carries for the labels of ``prior``:
    ``prior_label_<prior>`` and ``prior_confidence_<prior>``."""
    return f"prior_label_{prior}", f"prior_confidence_{prior}"


@dataclass(frozen=True)
class Migration:
    """What the schema versions on the log say about exporting under one version.

    ``prior``: the version it superseded with ``keep_as_feature`` (its labels travel as
    feature columns), else ``""``. ``discarded_by``: a later version that superseded it with
    ``discard`` (its labels are not to be exported any more), else ``""``."""

    prior: str = ""
    discarded_by: str = ""


def migration_of(schemas: Iterable[LabelSchemaPublished], version: str) -> Migration:
    """:class:`Migration` of ``version`` from the ``LabelSchemaPublished`` read so far."""
    prior = discarded_by = ""
    for schema in schemas:
        if schema.version == version and schema.old_label_policy == "keep_as_feature":
            prior = schema.supersedes or ""
        if schema.supersedes == version and schema.old_label_policy == "discard":
            discarded_by = discarded_by or schema.version
    return Migration(prior, discarded_by)


_ORDER = tuple[dt.datetime, dt.datetime, str]


def iso(value: dt.datetime | None) -> str | None:
    """UTC time with milliseconds and a ``Z`` (naive datetimes are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def _vote(annotator: str, label: str, confidence: float | None, at: Any, vote_id: str) -> Any:
    return {
        "annotator_id": annotator,
        "label": label,
        "confidence": confidence,
        "voted_at": iso(at),
        "vote_id": vote_id,
    }


def _question(
    question_id: str,
    answer: str,
    answers: Sequence[str],
    distribution: Sequence[float],
    agreement: float,
    label_id: str,
) -> dict[str, Any]:
    """One question's committed consensus as an export row holds it."""
    return {
        "question_id": question_id,
        "answer": answer,
        "answers": list(answers),
        "distribution": [float(p) for p in distribution],
        "agreement": float(agreement),
        "label_id": label_id,
    }


def _row(
    *,
    comment_id: str,
    schema_version: str,
    label: Mapping[str, Any],
    votes: Sequence[dict[str, Any]],
    adjudication: dict[str, Any] | None,
    gold_label: str | None,
    questions: Sequence[dict[str, Any]] = (),
    prior: tuple[str, str | None, float | None] | None = None,
) -> dict[str, Any]:
    """A canonical row. ``questions`` (the latest committed consensus of each atomic question,
    :class:`~labeltrail.events.models.QuestionLabelCommitted`) is a key only when there is
    one: a row without any keeps the shape, and so the hash, it had before questions were
    committed (an export made then verifies as it did). ``prior``: (older version, its latest
    label of the comment, that label's confidence), the feature columns of
    :func:`prior_columns`, only in an export whose schema keeps the older labels as features."""
    ordered = sorted(
        votes, key=lambda v: (v["voted_at"], v["annotator_id"], v["vote_id"], json.dumps(v))
    )
    times = [v["voted_at"] for v in ordered]
    extra: dict[str, Any] = {}
    if questions:
        extra["questions"] = sorted(questions, key=lambda q: q["question_id"])
    if prior is not None:
        version, prior_label, prior_confidence = prior
        label_column, confidence_column = prior_columns(version)
        extra[label_column] = prior_label
        extra[confidence_column] = None if prior_confidence is None else float(prior_confidence)
    return {
        "comment_id": comment_id,
        "schema_version": schema_version,
        **extra,
        **label,
        "annotators": ordered,
        "n_votes": len(ordered),
        "first_vote_at": min(times) if times else None,
        "last_vote_at": max(times) if times else None,
        "adjudication": adjudication,
        "gold_label": gold_label,
        "gold_agrees": None if gold_label is None else gold_label == label["label"],
    }


def _label_fields(**f: Any) -> dict[str, Any]:
    return {
        "label": f["label"],
        "classes": list(f["classes"]),
        "soft_label": [float(p) for p in f["soft_label"]],
        "confidence": float(f["confidence"]),
        "route": f["route"],
        "method": f["method"],
        "method_params": dict(sorted(dict(f["method_params"]).items())),
        "label_id": f["label_id"],
        "label_event_id": f["label_event_id"],
        "committed_at": iso(f["committed_at"]),
        "occurred_at": iso(f["occurred_at"]),
        "source_positions": [
            f"{p['topic']}:{p['partition']}:{p['offset']}" for p in f["source_positions"]
        ],
    }


def canonical_from_sql(
    row: Mapping[str, Any], schema_version: str, prior: str = ""
) -> dict[str, Any]:
    """A canonical row from one ``export_rows`` result row (with ``prior``, the row also holds
    ``prior_label`` and ``prior_confidence``: the latest label of that version)."""
    label = _label_fields(**{k: row[k] for k in _LABEL_KEYS})
    adjudication = None
    if row["adjudication_id"] is not None:
        adjudication = {
            "adjudication_id": row["adjudication_id"],
            "reviewer_id": row["reviewer_id"],
            "label": row["adjudicated_label"],
            "confidence": row["adjudicated_confidence"],
            "note": row["adjudication_note"],
            "recorded_at": iso(row["adjudicated_at"]),
        }
    votes = [_vote(*v) for v in (row["votes"] or [])]
    return _row(
        comment_id=row["comment_id"],
        schema_version=schema_version,
        label=label,
        votes=votes,
        adjudication=adjudication,
        gold_label=row["gold_label"],
        questions=[_question(*q) for q in (row.get("questions") or [])],
        prior=(prior, row["prior_label"], row["prior_confidence"]) if prior else None,
    )


_LABEL_KEYS = (
    "label",
    "classes",
    "soft_label",
    "confidence",
    "route",
    "method",
    "method_params",
    "label_id",
    "label_event_id",
    "committed_at",
    "occurred_at",
    "source_positions",
)


def jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Canonical JSON lines: sorted keys, no spaces, one row per line, rows by comment id."""
    ordered = sorted(rows, key=lambda r: str(r["comment_id"]))
    return b"".join(
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        for r in ordered
    )


def content_hash(rows: Iterable[Mapping[str, Any]]) -> str:
    """``sha256:<hex>`` of the canonical JSON lines."""
    return "sha256:" + hashlib.sha256(jsonl(rows)).hexdigest()


def _key(event: Event) -> _ORDER:
    env = event.envelope
    return (env.recorded_at, env.occurred_at, env.event_id)


@dataclass
class ExportFold:
    """Rebuilds export rows from the events of the labels, votes, adjudications and questions
    topics.

    Feed it every record before the export's positions, in log order per partition; events
    recorded after ``as_of`` are ignored, and a repeated event id keeps its first copy (as the
    ClickHouse tables do). ``run``: take the labels of that labeling run (``run_id``), not the
    live pipeline's. ``prior``: an older version whose latest live label of each comment the
    rows carry as feature columns (:func:`prior_columns`).
    """

    schema_version: str
    as_of: dt.datetime
    run: str = ""
    prior: str = ""
    seen: set[str] = field(default_factory=set)
    labels: dict[str, LabelCommitted] = field(default_factory=dict)
    prior_labels: dict[str, LabelCommitted] = field(default_factory=dict)
    votes: dict[str, list[VoteCast]] = field(default_factory=dict)
    adjudications: dict[str, AdjudicationRecorded] = field(default_factory=dict)
    gold: dict[str, AdjudicationRecorded] = field(default_factory=dict)
    questions: dict[str, dict[str, QuestionLabelCommitted]] = field(default_factory=dict)
    """comment -> question -> the latest committed consensus of the question"""

    def apply(self, event: Event, position: LogPosition | None = None) -> None:
        if event.event_id in self.seen:
            return
        self.seen.add(event.event_id)
        if event.envelope.recorded_at > self.as_of:
            return
        match event:
            case LabelCommitted() if (
                event.schema_version == self.schema_version and (event.run_id or "") == self.run
            ):
                current = self.labels.get(event.comment_id)
                if current is None or _key(event) > _key(current):
                    self.labels[event.comment_id] = event
            case LabelCommitted() if (
                self.prior and event.schema_version == self.prior and not event.run_id
            ):
                current = self.prior_labels.get(event.comment_id)
                if current is None or _key(event) > _key(current):
                    self.prior_labels[event.comment_id] = event
            case VoteCast():
                self.votes.setdefault(event.vote_id, []).append(event)
            case QuestionLabelCommitted() if event.schema_version == self.schema_version:
                asked = self.questions.setdefault(event.comment_id, {})
                known = asked.get(event.question_id)
                if known is None or _key(event) > _key(known):
                    asked[event.question_id] = event
            case AdjudicationRecorded() if event.schema_version == self.schema_version:
                self._keep_latest(self.adjudications, event.adjudication_id, event)
                if event.request_id.startswith(GOLD_REQUEST_PREFIX):
                    self._keep_latest(self.gold, event.comment_id, event)

    @staticmethod
    def _keep_latest(
        table: dict[str, AdjudicationRecorded], key: str, event: AdjudicationRecorded
    ) -> None:
        current = table.get(key)
        if current is None or _key(event) > _key(current):
            table[key] = event

    def rows(self) -> list[dict[str, Any]]:
        """The canonical rows, one per comment with a label."""
        out: list[dict[str, Any]] = []
        for comment_id in sorted(self.labels):
            lab = self.labels[comment_id]
            label = _label_fields(
                label=lab.label,
                classes=lab.classes,
                soft_label=lab.distribution,
                confidence=lab.confidence,
                route=lab.route,
                method=lab.method,
                method_params=lab.method_params,
                label_id=lab.label_id,
                label_event_id=lab.event_id,
                committed_at=lab.envelope.recorded_at,
                occurred_at=lab.envelope.occurred_at,
                source_positions=[p.model_dump() for p in lab.source_positions],
            )
            votes = [
                _vote(v.annotator_id, v.label, v.confidence, v.envelope.occurred_at, v.vote_id)
                for vote_id in lab.vote_ids
                for v in self.votes.get(vote_id, [])
            ]
            adj = self.adjudications.get(lab.adjudication_id or "")
            adjudication = None
            if adj is not None:
                adjudication = {
                    "adjudication_id": adj.adjudication_id,
                    "reviewer_id": adj.reviewer_id,
                    "label": adj.label,
                    "confidence": adj.confidence,
                    "note": adj.note,
                    "recorded_at": iso(adj.envelope.recorded_at),
                }
            gold = self.gold.get(comment_id)
            old = self.prior_labels.get(comment_id)
            prior = (
                (self.prior, old.label if old else None, old.confidence if old else None)
                if self.prior
                else None
            )
            out.append(
                _row(
                    comment_id=comment_id,
                    schema_version=self.schema_version,
                    label=label,
                    votes=votes,
                    adjudication=adjudication,
                    gold_label=gold.label if gold is not None else None,
                    questions=[
                        _question(
                            q.question_id,
                            q.answer,
                            q.answers,
                            q.distribution,
                            q.agreement,
                            q.label_id,
                        )
                        for q in self.questions.get(comment_id, {}).values()
                    ],
                    prior=prior,
                )
            )
        return out


def export_id_for(
    schema_version: str,
    as_of_key: str,
    positions: Sequence[LogPosition],
    run: str = "",
    prior: str = "",
) -> str:
    """An export's id, derived from what it covers (``as_of_key``: the time as the caller has
    always written it into the id), so an export made again has the same id."""
    return derive_id(
        "export",
        schema_version,
        as_of_key,
        [f"{p.topic}:{p.partition}:{p.offset}" for p in positions],
        AGGREGATOR,
        [f"{k}={v}" for k, v in aggregator_params(run, prior).items()],
    )


def export_created(
    *,
    producer: str,
    export_id: str,
    schema_version: str,
    as_of: dt.datetime,
    positions: Sequence[LogPosition],
    digest: str,
    row_count: int,
    uri: str,
    occurred_at: dt.datetime | None = None,
    run: str = "",
    prior: str = "",
) -> ExportCreated:
    """The ``ExportCreated`` of an export; its event id follows from the export id and the
    content hash."""
    return ExportCreated.create(
        producer=producer,
        occurred_at=occurred_at,
        id_parts=(export_id, digest),
        export_id=export_id,
        schema_version=schema_version,
        as_of=as_of,
        log_positions=list(positions),
        aggregator=AGGREGATOR,
        aggregator_params=aggregator_params(run, prior),
        content_hash=digest,
        row_count=row_count,
        uri=uri,
    )
