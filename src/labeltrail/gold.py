"""Publish a gold set: expert-labeled comments that tasking turns into honeypots.

Each item becomes its verdict (request id ``gold:<set>``) on ``adjudications`` and ``gold``,
and its comment on ``gold`` (and ``comments`` with ``post=True``); ids derive from the set name
and comment id, and the lines are checked all or nothing as :mod:`labeltrail.ingest` checks
them (``docs/pipeline.md``, "Input").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from labeltrail.events.base import utc_now
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

__all__ = ["GoldItem", "InvalidGoldError", "parse_gold"]

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
    cid = comment.comment_id
    recorded = AdjudicationRecorded.create(
        producer=PRODUCER,
        occurred_at=comment.posted_at,
        id_parts=("gold", gold_set, cid),
        correlation_id=cid,
        adjudication_id=derive_id("gold", gold_set, cid),
        request_id=f"{GOLD_REQUEST_PREFIX}{gold_set}",
        task_id=f"gold:{cid}",
        comment_id=cid,
        confidence=verdict.pop("confidence", 1.0),
        **verdict,
    )
    return GoldItem(comment, recorded)
