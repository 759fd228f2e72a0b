"""Validate comments from producers before they enter the log, all or nothing.

Every line is decoded, parsed, validated, encoded and checked against the producer's record
size limit before anything is produced; any problem is a :class:`LineError` and the whole
input is refused. A comment's event id derives from its content, so running a file again after
a broker failure completes it without duplicates. What is and is not detected:
``docs/pipeline.md`` ("Input").
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from labeltrail.events.base import Event, to_utc_millis, utc_now
from labeltrail.events.ids import derive_id
from labeltrail.events.models import COMMENT_TEXT_MAX, CommentPosted
from labeltrail.events.serde import encode
from labeltrail.exceptions import InvalidLinesError, LabeltrailError, LineError

__all__ = [
    "COMMENT_FIELDS",
    "InvalidCommentError",
    "InvalidLinesError",
    "LineError",
    "RecordFits",
    "aware_time",
    "describe",
    "ingested_comment",
    "json_objects",
    "parse_comments",
    "parse_lines",
    "record_problem",
    "shorten",
    "unknown_fields",
    "unlimited",
]

E = TypeVar("E", bound=Event)

RecordFits = Callable[[bytes, bytes], bool]
"""Whether a record of this key and value is within the producer's size limit
(``EventProducer.fits``: the limit is the producer's own)."""

COMMENT_FIELDS = frozenset(CommentPosted.model_fields) - {"envelope"}
"""The fields a comment line may have."""


class InvalidCommentError(InvalidLinesError):
    """One or more input lines are not valid comments; nothing was produced."""

    what = "comment"


def shorten(text: str, limit: int = 40) -> str:
    """Text for an error message, cut to ``limit`` characters (a key can be megabytes)."""
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


def _short(value: object) -> str:
    return shorten(repr(value))


def json_objects(
    lines: Iterable[bytes | str], errors: list[LineError]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; a line that is not UTF-8, not JSON, nested
    too deeply or not an object is recorded in ``errors`` instead."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            errors.append(LineError(number, f"not UTF-8: {exc.reason} at byte {exc.start + 1}"))
            continue
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(LineError(number, f"not JSON: {exc.msg} at column {exc.colno}"))
            continue
        except RecursionError:
            errors.append(LineError(number, "not accepted: JSON nested too deeply"))
            continue
        except ValueError as exc:  # an integer of more digits than Python converts
            errors.append(LineError(number, f"not accepted: {exc}"))
            continue
        if not isinstance(fields, dict):
            errors.append(LineError(number, "expected a JSON object"))
            continue
        yield number, fields


def unknown_fields(fields: dict[str, Any], allowed: frozenset[str], what: str) -> str | None:
    """The error for fields outside ``allowed``, if any (checked before anything is built, so
    a field such as ``id_parts`` or ``producer`` can never reach ``Event.create``)."""
    unknown = sorted(k for k in fields if k not in allowed)
    if not unknown:
        return None
    shown = ", ".join(_short(k) for k in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
    return f"{shown}: not a field of a {what}"


def describe(exc: ValidationError, what: str) -> str:
    """A validation error as one line: each field's path and message."""
    return "; ".join(
        f"{'.'.join(shorten(str(p)) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()
    )


def record_problem(event: Event, fits: RecordFits) -> str | None:
    """Why ``event`` cannot be produced (it does not encode, or its record is over the
    producer's size limit), or None."""
    try:
        key = event.key.encode()
        value = encode(event)
    except (LabeltrailError, UnicodeEncodeError) as exc:
        return f"cannot encode {type(event).__name__}: {exc}"
    if fits(key, value):
        return None
    sizes = {
        name: len(json.dumps(field))
        for name, field in event.model_dump(mode="json", exclude={"envelope"}).items()
    }
    largest = max(sizes, key=sizes.__getitem__)
    return (
        f"{largest}: too large: the {type(event).__name__} record would be "
        f"{len(key) + len(value):,} bytes, over the producer's limit "
        "(LABELTRAIL_KAFKA_MESSAGE_MAX_BYTES)"
    )


class _Posted(BaseModel):
    """What a producer may post beyond the contract: the contract's text bound leaves room for
    the sealed form (``events.crypto``), the posted text is held to ``COMMENT_TEXT_MAX``."""

    text: str = Field(max_length=COMMENT_TEXT_MAX)


def ingested_comment(fields: dict[str, Any], *, producer: str) -> CommentPosted:
    """A comment line as a CommentPosted whose id is derived from its content (see the module
    docstring); ``posted_at`` defaults to now. Raises ValidationError."""
    defaulted = "posted_at" not in fields
    event = CommentPosted.create(
        producer=producer, occurred_at=None, **({"posted_at": utc_now()} | fields)
    )
    _Posted(text=event.text)
    content = event.model_dump(
        mode="json", exclude={"envelope", "posted_at"} if defaulted else {"envelope"}
    )
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    event_id = derive_id(CommentPosted.__name__, "ingest", event.comment_id, canonical)
    envelope = event.envelope.model_copy(update={"event_id": event_id})
    return event.model_copy(update={"envelope": envelope})


def unlimited(key: bytes, value: bytes) -> bool:
    """A :data:`RecordFits` that accepts any size (records are still encoded)."""
    return True


def aware_time(value: object, name: str) -> dt.datetime:
    """An input field's ISO 8601 time with a zone, as UTC milliseconds; ValueError names the
    field (``name``) when it is missing, unparsable or has no zone."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: required (ISO 8601 with a zone)")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: {shorten(value)!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name}: {shorten(value)!r} has no time zone")
    return to_utc_millis(parsed)


def parse_lines(
    lines: Iterable[bytes | str],
    *,
    allowed: frozenset[str],
    what: str,
    build: Callable[[dict[str, Any]], E],
    key: str,
    error: type[InvalidLinesError],
    fits: RecordFits = unlimited,
    once: str = "",
) -> list[E]:
    """JSON lines into events, each encoded and size-checked with ``fits``; all or nothing
    (``error`` lists every bad line). A line may have only the ``allowed`` fields; ``build``
    makes its event (a ValidationError or ValueError is the line's error); the same ``key``
    field again with the same event id is returned once, with another content it is an error
    (``once`` says why, in that message)."""
    events: list[E] = []
    errors: list[LineError] = []
    first: dict[str, tuple[int, str]] = {}
    for number, fields in json_objects(lines, errors):
        problem = unknown_fields(fields, allowed, what)
        if problem is not None:
            errors.append(LineError(number, problem))
            continue
        try:
            event = build(fields)
        except ValidationError as exc:
            errors.append(LineError(number, describe(exc, what)))
            continue
        except ValueError as exc:
            errors.append(LineError(number, str(exc)))
            continue
        value = str(getattr(event, key))
        earlier = first.get(value)
        if earlier is not None:
            line, event_id = earlier
            if event_id != event.event_id:
                errors.append(
                    LineError(
                        number,
                        f"{key}: {_short(value)} is on line {line} with another content{once}",
                    )
                )
            continue  # the same event again: produced once
        problem = record_problem(event, fits)
        if problem is not None:
            errors.append(LineError(number, problem))
            continue
        first[value] = (number, event.event_id)
        events.append(event)
    if errors:
        raise error(errors)
    return events


def parse_comments(
    lines: Iterable[bytes | str], *, producer: str = "ingest-cli", fits: RecordFits = unlimited
) -> list[CommentPosted]:
    """Parse JSON lines into CommentPosted events, each encoded and size-checked with ``fits``;
    all or nothing (:class:`InvalidCommentError` lists every bad line).

    Each line is an object with comment_id, video_id, author_hash, text, source and optional
    posted_at (ISO 8601 with a zone), parent_ids and attributes. A repeated identical comment
    is returned once; a comment id repeated with another content is an error.
    """
    return parse_lines(
        lines,
        allowed=COMMENT_FIELDS,
        what="comment",
        build=partial(ingested_comment, producer=producer),
        key="comment_id",
        error=InvalidCommentError,
        fits=fits,
        once=" (a comment is posted once)",
    )
