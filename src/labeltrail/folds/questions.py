"""Per-question consensus: each atomic question of the schema committed with its own agreement.

A vote carries, besides its class, the answers to the schema's atomic questions
(``VoteCast.answers``: targets a group? implies a threat? needs context? ...). Once an item's
crowd consensus is complete (a ``ConsensusUpdated`` with status ``passed`` or
``adjudication``), this fold commits one :class:`~labeltrail.events.models.
QuestionLabelCommitted` per question the counted votes answered: the majority answer (ties:
the first answer in the schema's order, the quality core's tie rule), each answer's share and
the share of agreeing vote pairs (:mod:`labeltrail.quality.item`, the same per-item rules as
the class consensus).

It counts exactly the votes the consensus counted (``ConsensusUpdated.vote_ids``), so every
rule the consensus fold applies to a vote (assignment, duplicates, schema versions, retired
versions) holds here without a second implementation: a vote the consensus rejected is never
named by an update. An update whose votes (or schema) have not been read yet is held until
they are; still held when the input is drained: rejected.

Routing: when the needs-context question (``needs_context_question``, ``q4_needs_context`` in
schema v3) has a majority ``yes`` (a share above ``context_majority``) on an item that passed
the agreement gate, the fold requests adjudication with reason ``needs_context``: tasking
sends it to an expert with the thread context and the crowd's votes, and the expert's verdict
supersedes the crowd label (``LabelsFold``). An item already sent to adjudication for
disagreement is not asked for twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    AdjudicationRequested,
    ConsensusUpdated,
    LabelSchemaPublished,
    Question,
    QuestionLabelCommitted,
    VoteCast,
)
from labeltrail.folds.base import Output, Rejected, adjudication_request, build_event
from labeltrail.quality.item import pairwise_agreement, vote_shares

__all__ = ["NEEDS_CONTEXT", "PRODUCER", "QuestionsConfig", "QuestionsFold"]

PRODUCER = "questions"
NEEDS_CONTEXT = "needs_context"
"""The reason of an adjudication request the needs-context majority makes."""


@dataclass(frozen=True)
class QuestionsConfig:
    needs_context_question: str | None = "q4_needs_context"
    """The question whose ``yes`` majority sends an item to an expert (None: never)."""
    context_answer: str = "yes"
    context_majority: float = 0.5
    """The share of votes answering ``context_answer`` above which the item is routed."""


@dataclass
class QuestionsFold:
    config: QuestionsConfig = field(default_factory=QuestionsConfig)
    name: str = "questions"
    inputs: tuple[str, ...] = ("schemas", "votes", "consensus")
    questions: dict[str, list[Question]] = field(default_factory=dict)
    answers: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    """vote id -> (annotator, answers)"""
    held: dict[str, ConsensusUpdated] = field(default_factory=dict)
    """complete updates waiting for a vote or their schema, by event id"""
    awaiting: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """a vote id or ``schema:<version>`` -> the held updates that wait for it"""
    done: set[str] = field(default_factory=set)
    """updates already committed (a redelivered one commits nothing new)"""

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case LabelSchemaPublished():
                self.questions[event.version] = list(event.questions)
                return self._retry(f"schema:{event.version}")
            case VoteCast():
                self.answers[event.vote_id] = (event.annotator_id, dict(event.answers))
                return self._retry(event.vote_id)
            case ConsensusUpdated() if event.status != "collecting":
                if event.event_id in self.done:
                    return []
                return self._on_complete(event)
        return []

    def drain(self) -> list[Output]:
        """Reject the updates still held once every input has been read."""
        out: list[Output] = []
        for event_id in sorted(self.held):
            c = self.held.pop(event_id)
            missing = ", ".join(sorted(self._missing(c)))
            out.append(Rejected(f"consensus {event_id} of {c.comment_id} lacks {missing}"))
        self.awaiting.clear()
        return out

    def _missing(self, c: ConsensusUpdated) -> list[str]:
        keys = [] if c.schema_version in self.questions else [f"schema:{c.schema_version}"]
        return keys + [v for v in c.vote_ids if v not in self.answers]

    def _retry(self, key: str) -> list[Output]:
        out: list[Output] = []
        for event_id in sorted(self.awaiting.pop(key, ())):
            c = self.held.get(event_id)
            if c is not None and not self._missing(c):
                del self.held[event_id]
                out += self._on_complete(c)
        return out

    def _on_complete(self, c: ConsensusUpdated) -> list[Output]:
        missing = self._missing(c)
        if missing:
            # Topics are read concurrently: a vote (or the schema) may come after the update.
            self.held[c.event_id] = c
            for key in missing:
                self.awaiting[key].add(c.event_id)
            return []
        self.done.add(c.event_id)
        out: list[Output] = []
        for question in self.questions[c.schema_version]:
            label = self._label(c, question)
            if label is None:
                continue
            out.append(label)
            if self._needs_context(c, label):
                out.append(self._request(c, label))
        return out

    def _label(self, c: ConsensusUpdated, question: Question) -> QuestionLabelCommitted | None:
        """The question's consensus among the update's votes that answered it (None if none)."""
        counted = [
            (vote_id, self.answers[vote_id][0], self.answers[vote_id][1][question.question_id])
            for vote_id in c.vote_ids
            if self.answers[vote_id][1].get(question.question_id) in question.answers
        ]
        if not counted:
            return None
        given = [answer for _, _, answer in counted]
        shares = vote_shares(given, question.answers)
        vote_ids = [v for v, _, _ in counted]
        qid = question.question_id
        label_id = derive_id("question-label", c.comment_id, c.schema_version, qid, vote_ids)
        return build_event(
            QuestionLabelCommitted,
            event_id=derive_id("QuestionLabelCommitted", label_id),
            producer=PRODUCER,
            occurred_at=c.envelope.occurred_at,
            causation_id=c.event_id,
            correlation_id=c.comment_id,
            label_id=label_id,
            comment_id=c.comment_id,
            schema_version=c.schema_version,
            question_id=qid,
            # The tie rule of the class consensus: the first answer with the top share.
            answer=question.answers[shares.index(max(shares))],
            answers=list(question.answers),
            distribution=shares,
            agreement=pairwise_agreement(given),
            method="mv",
            vote_ids=vote_ids,
            annotator_ids=[a for _, a, _ in counted],
            consensus_id=c.event_id,
        )

    def _needs_context(self, c: ConsensusUpdated, label: QuestionLabelCommitted) -> bool:
        cfg = self.config
        if label.question_id != cfg.needs_context_question or c.status != "passed":
            return False
        if cfg.context_answer not in label.answers:
            return False
        share = label.distribution[label.answers.index(cfg.context_answer)]
        return share > cfg.context_majority

    def _request(self, c: ConsensusUpdated, label: QuestionLabelCommitted) -> AdjudicationRequested:
        return adjudication_request(
            request_id=derive_id(
                "adjudication-request", NEEDS_CONTEXT, c.comment_id, c.schema_version, c.vote_ids
            ),
            producer=PRODUCER,
            cause=label,
            comment_id=c.comment_id,
            schema_version=c.schema_version,
            reason=NEEDS_CONTEXT,
            agreement=label.agreement,
            threshold=self.config.context_majority,
            vote_ids=list(c.vote_ids),
        )
