"""Validate comments from producers before they enter the log."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from labeltrail.events.base import utc_now
from labeltrail.events.models import CommentPosted
from labeltrail.exceptions import LabeltrailError

__all__ = ["InvalidCommentError", "parse_comments"]


@dataclass(frozen=True)
class LineError:
    line: int
    message: str


class InvalidCommentError(LabeltrailError):
    """One or more input lines are not valid comments; nothing was produced."""

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        shown = "\n".join(f"  line {e.line}: {e.message}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} invalid comment(s), nothing produced:\n{shown}{more}")


def parse_comments(lines: Iterable[str], *, producer: str = "ingest-cli") -> list[CommentPosted]:
    """Parse JSON lines into CommentPosted events; all or nothing.

    Each line is an object with comment_id, video_id, author_hash, text, source and optional
    posted_at (ISO 8601 with a zone), parent_ids and attributes.
    """
    events: list[CommentPosted] = []
    errors: list[LineError] = []
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
        fields.setdefault("posted_at", utc_now().isoformat())
        try:
            events.append(CommentPosted.create(producer=producer, occurred_at=None, **fields))
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'comment'}: {e['msg']}"
                for e in exc.errors()
            )
            errors.append(LineError(number, detail))
        except TypeError as exc:
            errors.append(LineError(number, str(exc)))
    if errors:
        raise InvalidCommentError(errors)
    return events
