"""The lf stage as a fold: CommentPosted -> one ``WeakVoteCast`` per labeling function.

The LFs are discovered from entry points and the settings (:mod:`labeltrail.learning.lf_registry`)
and handed to the fold, which stays pure: it runs them on each comment's text (opened with the
key store, like the scorer: an erased text is seen as erased) under the configured schema
version, whose classes it reads from the schemas topic. Comments read before that schema is
published are held, and rejected if still held at drain, never dropped.

Policy: an LF that raises, or returns something that is not one of the schema's classes, votes
nothing on that comment; the comment is dead-lettered with a reason naming each such LF and its
version (:attr:`LfFold.errors` counts them per LF), and the other LFs' votes on it are still
emitted. An LF that abstains votes ``label=None``: its silence is an observation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.crypto import Keyring, reveal
from labeltrail.events.ids import derive_id
from labeltrail.events.models import CommentPosted, LabelSchemaPublished, WeakVoteCast
from labeltrail.folds.base import Output, Rejected, build_event
from labeltrail.learning.lf import Example
from labeltrail.learning.lf_registry import LFError, VersionedLF, vote

__all__ = ["LfFold", "lf_vote_id"]

PRODUCER = "lf"


def lf_vote_id(comment_id: str, lf: VersionedLF, schema_version: str) -> str:
    """The id of ``lf``'s vote on a comment: fixed by the comment, the LF and its version."""
    return derive_id("lf-vote", comment_id, lf.name, lf.version, schema_version)


@dataclass
class LfFold:
    """State: the schema's classes once read, comments held until then, errors per LF."""

    accepts: ClassVar[frozenset[str]] = frozenset({"LabelSchemaPublished", "CommentPosted"})
    lfs: tuple[VersionedLF, ...] = ()
    schema_version: str = "v3"
    keyring: Keyring | None = None
    """Opens sealed comment text (``docs/erasure.md``)."""
    name: str = "lf"
    inputs: tuple[str, ...] = ("schemas", "comments")
    classes: tuple[str, ...] | None = None
    held: dict[str, CommentPosted] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    """Comments an LF failed on, by ``name@version``."""

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case LabelSchemaPublished():
                if event.version != self.schema_version or self.classes is not None:
                    return []
                self.classes = tuple(event.classes)
                out: list[Output] = []
                for comment_id in sorted(self.held):
                    out += self.votes(self.held.pop(comment_id))
                return out
            case CommentPosted():
                if self.classes is None:
                    self.held[event.comment_id] = event
                    return []
                return self.votes(event)
        return []

    def drain(self) -> list[Output]:
        out: list[Output] = []
        for comment_id in sorted(self.held):
            del self.held[comment_id]
            out.append(
                Rejected(
                    f"comment {comment_id}: schema {self.schema_version} not published, "
                    "no LF ran on it"
                )
            )
        return out

    def held_reason(self) -> str | None:
        if not self.held:
            return None
        return f"{len(self.held)} comment(s) wait for schema {self.schema_version}"

    def votes(self, comment: CommentPosted) -> list[Output]:
        """Every LF's vote on ``comment``, then one rejection naming the LFs that failed."""
        assert self.classes is not None
        text = comment.text if self.keyring is None else reveal(comment.text, self.keyring)
        example = Example(
            comment.comment_id, text, tuple(comment.parent_ids), dict(comment.attributes)
        )
        out: list[Output] = []
        failed: list[str] = []
        for lf in self.lfs:
            try:
                label = vote(lf, example, self.classes)
            except LFError as exc:
                self.errors[lf.key] += 1
                failed.append(str(exc))
                continue
            vote_id = lf_vote_id(comment.comment_id, lf, self.schema_version)
            out.append(
                build_event(
                    WeakVoteCast,
                    event_id=derive_id("WeakVoteCast", vote_id),
                    producer=PRODUCER,
                    occurred_at=comment.posted_at,
                    causation_id=comment.event_id,
                    correlation_id=comment.comment_id,
                    vote_id=vote_id,
                    comment_id=comment.comment_id,
                    schema_version=self.schema_version,
                    source="lf",
                    source_name=lf.name,
                    source_version=lf.version,
                    label=label,
                )
            )
        if failed:
            out.append(Rejected(f"comment {comment.comment_id}: " + "; ".join(failed)))
        return out
