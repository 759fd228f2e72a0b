"""Validate comments from producers before they enter the log."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ValidationError

from labeltrail.events.base import utc_now
from labeltrail.events.models import CommentPosted
from labeltrail.exceptions import LabeltrailError

__all__ = [
    "InvalidCommentError",
    "InvalidLinesError",
    "LineError",
    "describe",
    "json_objects",
    "parse_comments",
]


@dataclass(frozen=True)
class LineError:
    line: int
    message: str


class InvalidLinesError(LabeltrailError):
    """One or more input lines are not valid; nothing was produced."""

    what: ClassVar[str] = "line"

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        shown = "\n".join(f"  line {e.line}: {e.message}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} invalid {self.what}(s), nothing produced:\n{shown}{more}")


class InvalidCommentError(InvalidLinesError):
    """One or more input lines are not valid comments; nothing was produced."""

    what = "comment"


def json_objects(
    lines: Iterable[str], errors: list[LineError]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; lines that are not a JSON object are
    recorded in ``errors`` instead."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            fields = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(LineError(number, f"not JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(fields, dict):
            errors.append(LineError(number, "expected a JSON object"))
            continue
        yield number, fields


def describe(exc: ValidationError, what: str) -> str:
    """A validation error as one line: each field's path and message."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()
    )


def parse_comments(lines: Iterable[str], *, producer: str = "ingest-cli") -> list[CommentPosted]:
    """Parse JSON lines into CommentPosted events; all or nothing.

    Each line is an object with comment_id, video_id, author_hash, text, source and optional
    posted_at (ISO 8601 with a zone), parent_ids and attributes.
    """
    events: list[CommentPosted] = []
    errors: list[LineError] = []
    for number, fields in json_objects(lines, errors):
        fields.setdefault("posted_at", utc_now().isoformat())
        try:
            events.append(CommentPosted.create(producer=producer, occurred_at=None, **fields))
        except ValidationError as exc:
            errors.append(LineError(number, describe(exc, "comment")))
        except TypeError as exc:
            errors.append(LineError(number, str(exc)))
    if errors:
        raise InvalidCommentError(errors)
    return events
