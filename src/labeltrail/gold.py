"""Publish a gold set: expert-labeled comments that tasking turns into honeypots.

Each item becomes its verdict (request id ``gold:<set>``) on ``adjudications`` and ``gold``,
and its comment on ``gold`` (and ``comments`` with ``post=True``); ids derive from the set name
and comment id, and the lines are checked all or nothing as :mod:`labeltrail.ingest` checks
them (``docs/pipeline.md``, "Input").

A gold set also grows from the pipeline's own work: an item an expert adjudicated with a
confident verdict is a gold *candidate* (``labeltrail gold candidates``, read from ClickHouse),
and :func:`promoted` turns a candidate into the same two events, the comment being the one
posted (``labeltrail gold promote``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from labeltrail.events.base import Envelope, utc_now
from labeltrail.events.ids import derive_id
from labeltrail.events.models import GOLD_REQUEST_PREFIX, AdjudicationRecorded, CommentPosted
from labeltrail.ingest import (
    COMMENT_FIELDS,
    InvalidLinesError,
    LineError,
    RecordFits,
    describe,
    json_objects,
    record_problem,
    shorten,
    unknown_fields,
    unlimited,
)

__all__ = ["GoldItem", "InvalidGoldError", "gold_verdict", "parse_gold", "promoted"]

PRODUCER = "gold-cli"
_VERDICT_FIELDS = ("label", "reviewer_id", "schema_version", "confidence", "note")
_GOLD_FIELDS = COMMENT_FIELDS | frozenset(_VERDICT_FIELDS)


class InvalidGoldError(InvalidLinesError):
    """One or more lines are not valid gold items; nothing was produced."""

    what = "gold item"


@dataclass(frozen=True)
class GoldItem:
    comment: CommentPosted
    verdict: AdjudicationRecorded


def parse_gold(
    lines: Iterable[bytes | str], *, gold_set: str, fits: RecordFits = unlimited
) -> list[GoldItem]:
    """Parse JSON lines into gold items, each record encoded and size-checked with ``fits``;
    all or nothing (:class:`InvalidGoldError` lists every bad line).

    Each line is a comment, as ``labeltrail ingest`` reads it (comment_id, video_id,
    author_hash, text, source, optional posted_at, parent_ids, attributes), with its verdict:
    ``label``, ``reviewer_id`` and ``schema_version``, optional ``confidence`` (default 1.0)
    and ``note``. A comment id may appear once.
    """
    items: list[GoldItem] = []
    errors: list[LineError] = []
    seen: set[str] = set()
    for number, fields in json_objects(lines, errors):
        problem = unknown_fields(fields, _GOLD_FIELDS, "gold item")
        if problem is not None:
            errors.append(LineError(number, problem))
            continue
        verdict = {k: fields.pop(k) for k in _VERDICT_FIELDS if k in fields}
        missing = [k for k in ("label", "reviewer_id", "schema_version") if k not in verdict]
        if missing:
            errors.append(LineError(number, f"missing {', '.join(missing)}"))
            continue
        fields.setdefault("posted_at", utc_now().isoformat())
        try:
            item = _item(fields, verdict, gold_set)
        except ValidationError as exc:
            errors.append(LineError(number, describe(exc, "gold item")))
            continue
        cid = item.comment.comment_id
        if cid in seen:
            errors.append(LineError(number, f"comment {shorten(cid)} is already in this gold set"))
            continue
        problem = record_problem(item.verdict, fits) or record_problem(item.comment, fits)
        if problem is not None:
            errors.append(LineError(number, problem))
            continue
        seen.add(cid)
        items.append(item)
    if errors:
        raise InvalidGoldError(errors)
    return items


def _item(fields: dict[str, Any], verdict: dict[str, Any], gold_set: str) -> GoldItem:
    comment = CommentPosted.create(
        producer=PRODUCER,
        occurred_at=None,
        id_parts=("gold", gold_set, fields.get("comment_id")),
        **fields,
    )
    return GoldItem(comment, gold_verdict(comment, gold_set, **verdict))


def gold_verdict(
    comment: CommentPosted, gold_set: str, *, confidence: float = 1.0, **verdict: Any
) -> AdjudicationRecorded:
    """The gold verdict on ``comment`` in ``gold_set`` (``label``, ``reviewer_id``,
    ``schema_version``, optional ``note``): its ids derive from the set and the comment id, so
    the same item twice is the same event."""
    cid = comment.comment_id
    return AdjudicationRecorded.create(
        producer=PRODUCER,
        occurred_at=comment.posted_at,
        id_parts=("gold", gold_set, cid),
        correlation_id=cid,
        adjudication_id=derive_id("gold", gold_set, cid),
        request_id=f"{GOLD_REQUEST_PREFIX}{gold_set}",
        task_id=f"gold:{cid}",
        comment_id=cid,
        confidence=confidence,
        **verdict,
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def promoted(candidate: Mapping[str, Any], gold_set: str) -> GoldItem:
    """A ``gold_candidates`` row as a gold item of ``gold_set``: the comment exactly as it was
    posted (its own event, which tasking takes again without complaint), and a gold verdict
    carrying the expert's label, reviewer and confidence."""
    envelope = Envelope(
        event_id=candidate["comment_event_id"],
        event_type="CommentPosted",
        occurred_at=_utc(candidate["comment_occurred_at"]),
        recorded_at=_utc(candidate["comment_recorded_at"]),
        producer=candidate["comment_producer"],
        causation_id=candidate["comment_causation_id"] or None,
        correlation_id=candidate["comment_correlation_id"] or None,
    )
    comment = CommentPosted.model_validate(
        {**json.loads(candidate["comment_payload"]), "envelope": envelope}
    )
    verdict = gold_verdict(
        comment,
        gold_set,
        label=candidate["label"],
        reviewer_id=candidate["reviewer_id"],
        schema_version=candidate["schema_version"],
        confidence=candidate["confidence"],
        note=f"promoted from adjudication {candidate['adjudication_event_id']}",
    )
    return GoldItem(comment, verdict)
