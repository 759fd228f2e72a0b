"""Production feedback: appeals and moderator overrides that contradict a label go to an expert.

Reads comments, the live labels and ``FeedbackReceived`` (``labeltrail feedback ingest``).
An appeal or a moderator override whose label differs from the comment's committed label (or
an appeal that names no label: it contests the decision itself) becomes an
``AdjudicationRequested`` with reason ``production_feedback`` and the request id
``feedback:<feedback_id>``; tasking turns it into an expert task (reason
``production_feedback``) for the label's schema version, with the votes behind the label, and
the labels stage commits the expert's verdict on route ``adjudication``, naming the feedback
(``method_params["feedback"]``), so it supersedes the label with its provenance.

Policy (each ``Rejected`` is dead-lettered by the runner, with its reason):

- feedback on a comment not read yet is held until it is; still unknown when the input is
  drained: rejected (``feedback ... for unknown comment ...``);
- an appeal or override on a comment with no live label yet waits for its first label (there
  is nothing to contradict before; ``held_reason`` counts them);
- a label that is not a class of the contested label's schema version: rejected;
- an appeal or override that agrees with the label, and every user flag, opens nothing: they
  are on the log and in ClickHouse (``feedback``), where ``audit trace`` and ``audit overturns``
  read them; flags are kept here per comment and class (:attr:`FeedbackFold.flags`) as the weak
  source a joint label model reads (``docs/learning.md``).

Each feedback id is decided once, so a redelivered or re-ingested feedback adds nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import (
    AdjudicationRequested,
    CommentPosted,
    FeedbackReceived,
    LabelCommitted,
)
from labeltrail.folds.base import Output, Rejected, adjudication_request

__all__ = [
    "FEEDBACK_REQUEST_PREFIX",
    "PRODUCTION_FEEDBACK",
    "FeedbackFold",
    "contradicts",
    "feedback_request_id",
]

PRODUCER = "feedback"
PRODUCTION_FEEDBACK = "production_feedback"
"""The reason of the adjudication requests (and expert tasks) production feedback opens."""
FEEDBACK_REQUEST_PREFIX = "feedback:"
"""An ``AdjudicationRequested`` whose request id starts with this answers production feedback;
the rest of the id is the feedback's id."""


def feedback_request_id(feedback_id: str) -> str:
    """The id of the review request a feedback opens (one per feedback, whatever replays)."""
    return f"{FEEDBACK_REQUEST_PREFIX}{feedback_id}"


def contradicts(feedback: FeedbackReceived, label: LabelCommitted) -> bool:
    """Whether an appeal or override disputes ``label``: it names another class, or (an appeal
    without a label) the decision itself. User flags never do: they are a weak signal."""
    if feedback.kind == "user_flag":
        return False
    return feedback.label is None or feedback.label != label.label


@dataclass
class FeedbackFold:
    """State: the comments read, each comment's latest live label, feedback held, flags."""

    accepts: ClassVar[frozenset[str]] = frozenset(
        {"CommentPosted", "LabelCommitted", "FeedbackReceived"}
    )
    name: str = "feedback"
    inputs: tuple[str, ...] = ("comments", "labels", "feedback")
    comments: set[str] = field(default_factory=set)
    labels: dict[str, LabelCommitted] = field(default_factory=dict)
    """The latest live label read per comment (a labeling run's labels are not live)."""
    unknown: dict[str, list[FeedbackReceived]] = field(default_factory=dict)
    """Feedback waiting for its comment, by comment id."""
    unlabeled: dict[str, list[FeedbackReceived]] = field(default_factory=dict)
    """Appeals and overrides waiting for their comment's first label, by comment id."""
    decided: set[str] = field(default_factory=set)
    """Feedback ids read and settled (held ones are not yet)."""
    flags: dict[str, Counter[str]] = field(default_factory=dict)
    """User flags per comment, by the class flagged ('' when a flag names none)."""

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case CommentPosted():
                if event.comment_id in self.comments:
                    return []
                self.comments.add(event.comment_id)
                out: list[Output] = []
                for held in self.unknown.pop(event.comment_id, []):
                    out += self._on_feedback(held)
                return out
            case LabelCommitted():
                if event.run_id is not None:
                    return []
                self.labels[event.comment_id] = event
                out = []
                for held in self.unlabeled.pop(event.comment_id, []):
                    out += self._on_feedback(held)
                return out
            case FeedbackReceived():
                if event.feedback_id in self.decided or self._held(event):
                    return []
                return self._on_feedback(event)
        return []

    def drain(self) -> list[Output]:
        """Once every input is read, feedback on a comment never posted cannot be served."""
        out: list[Output] = []
        for comment_id in sorted(self.unknown):
            for held in self.unknown.pop(comment_id):
                self.decided.add(held.feedback_id)
                out.append(
                    Rejected(f"feedback {held.feedback_id} for unknown comment {comment_id}")
                )
        return out

    def held_reason(self) -> str | None:
        waiting = sum(map(len, self.unknown.values()))
        unlabeled = sum(map(len, self.unlabeled.values()))
        if not waiting and not unlabeled:
            return None
        return (
            f"{waiting} feedback(s) wait for their comment, "
            f"{unlabeled} appeal(s) or override(s) for a first label"
        )

    def _held(self, feedback: FeedbackReceived) -> bool:
        held = [*self.unknown.get(feedback.comment_id, ())]
        held += self.unlabeled.get(feedback.comment_id, ())
        return any(h.feedback_id == feedback.feedback_id for h in held)

    def _on_feedback(self, feedback: FeedbackReceived) -> list[Output]:
        comment_id = feedback.comment_id
        if comment_id not in self.comments:
            self.unknown.setdefault(comment_id, []).append(feedback)
            return []
        if feedback.kind == "user_flag":
            self.decided.add(feedback.feedback_id)
            self.flags.setdefault(comment_id, Counter())[feedback.label or ""] += 1
            return []
        label = self.labels.get(comment_id)
        if label is None:
            self.unlabeled.setdefault(comment_id, []).append(feedback)
            return []
        self.decided.add(feedback.feedback_id)
        if feedback.label is not None and feedback.label not in label.classes:
            return [
                Rejected(
                    f"feedback {feedback.feedback_id}: label {feedback.label!r} is not a class "
                    f"of {label.schema_version}"
                )
            ]
        if not contradicts(feedback, label):
            return []
        return [_review(feedback, label)]


def _review(feedback: FeedbackReceived, label: LabelCommitted) -> AdjudicationRequested:
    """The expert review of ``label`` that ``feedback`` asks for. ``agreement`` carries the
    contested label's confidence and ``threshold`` 1.0: any contradiction is reviewed."""
    return adjudication_request(
        request_id=feedback_request_id(feedback.feedback_id),
        producer=PRODUCER,
        cause=feedback,
        comment_id=feedback.comment_id,
        schema_version=label.schema_version,
        reason=PRODUCTION_FEEDBACK,
        agreement=label.confidence,
        threshold=1.0,
        vote_ids=list(label.vote_ids),
    )
