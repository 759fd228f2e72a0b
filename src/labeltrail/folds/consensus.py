"""Rolling consensus per (comment, schema version), honeypot scoring and the QC gate.

The posterior weights each vote by its annotator's current reliability (the latest
AnnotatorReliabilityUpdated: a Dawid-Skene confusion matrix where one exists, else the
honeypot/gold accuracy as a one-coin model, else ``prior_accuracy``). The weights used are
recorded in the update's ``method_params``, so every label can be explained. Per-item
agreement is the share of agreeing vote pairs (Fleiss' per-item P_i); below the threshold a
complete item goes to adjudication.

Policy for bad votes (each is counted; the runner dead-letters every ``Rejected``):

- a vote whose task is unknown is held until the task arrives (topics are read concurrently,
  so a vote may overtake its task); still unknown when the input is drained: rejected;
- a vote from an annotator the task was not assigned to: rejected;
- the same vote id again (a producer retry or a replay): ignored, counted as a duplicate;
- a second, different vote by one annotator on one task: rejected;
- a vote whose schema version differs from its task's: rejected (versions never mix);
- a vote under a version retired by a successor whose policy is ``discard``: rejected.

Two entry points share every rule: :meth:`ConsensusFold.apply` (one event, outputs as events)
and :meth:`ConsensusFold.apply_batch` (many inputs, including the light rows of
:mod:`labeltrail.events.columnar`; outputs as :class:`ConsensusRow` / :class:`RequestRow`,
which :meth:`~ConsensusRow.to_event` turns into the very events ``apply`` returns). Both run
the same private methods on :class:`~labeltrail.events.columnar.VoteRow` and
:class:`~labeltrail.events.columnar.TaskRow`.

The posterior of an item is kept as a running sum of log-likelihood columns, in vote order (the
same additions, in the same order, as a recomputation), and recomputed from all of the item's
votes whenever a reliability estimate or a schema changed since (``_epoch``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from labeltrail.events.base import Event, LogPosition, epoch_millis, from_epoch_millis
from labeltrail.events.columnar import TaskRow, VoteRow
from labeltrail.events.models import (
    AdjudicationRequested,
    AnnotatorReliabilityUpdated,
    ConsensusUpdated,
    HoneypotScored,
    LabelSchemaPublished,
    TaskCreated,
    VoteCast,
)
from labeltrail.folds.base import Output, Rejected, build_event, stable_id
from labeltrail.quality import TIE_RULE

__all__ = [
    "BatchOutput",
    "ConsensusConfig",
    "ConsensusFold",
    "ConsensusRow",
    "RequestRow",
    "pairwise_agreement",
]

PRODUCER = "consensus"
_EPS = 1e-10
_NORMALISED_MAX = 200_000


def pairwise_agreement(labels: list[str]) -> float:
    """Share of agreeing vote pairs (Fleiss' per-item P_i); 1.0 for a single vote.

    Equal to ``quality.agreement_items.item_agreement(...).observed``, in plain Python.
    """
    return _share_agreeing(_agreeing_pairs(labels), len(labels))


def _agreeing_pairs(labels: Iterable[str]) -> int:
    """Ordered pairs of distinct votes with the same label: sum of c * (c - 1) per class."""
    return sum(c * (c - 1) for c in Counter(labels).values())


def _share_agreeing(pairs: int, n: int) -> float:
    return pairs / (n * (n - 1)) if n >= 2 else 1.0


class ConsensusRow(NamedTuple):
    """A ``ConsensusUpdated`` as a plain tuple.

    Its event id is a function of its fields (:attr:`event_id`), derived when read: a replay
    that never writes the intermediate updates of an item does not pay for their ids.
    ``stored_id`` holds the id of an update read from the log instead.
    """

    stored_id: str | None
    occurred_ms: int
    causation_id: str | None
    comment_id: str
    schema_version: str
    method: str
    method_params: dict[str, str]
    classes: list[str]
    posterior: list[float]
    label: str
    agreement: float
    vote_ids: list[str]
    annotator_ids: list[str]
    votes_expected: int
    status: str

    @classmethod
    def of(cls, event: ConsensusUpdated) -> ConsensusRow:
        return cls(
            event.envelope.event_id,
            epoch_millis(event.envelope.occurred_at),
            event.envelope.causation_id,
            event.comment_id,
            event.schema_version,
            event.method,
            dict(event.method_params),
            list(event.classes),
            list(event.posterior),
            event.label,
            event.agreement,
            list(event.vote_ids),
            list(event.annotator_ids),
            event.votes_expected,
            event.status,
        )

    @property
    def event_id(self) -> str:
        if self.stored_id is not None:
            return self.stored_id
        return stable_id(
            "ConsensusUpdated",
            "consensus",
            self.comment_id,
            self.schema_version,
            self.vote_ids,
            self.method,
        )

    def to_event(self) -> ConsensusUpdated:
        return build_event(
            ConsensusUpdated,
            event_id=self.event_id,
            producer=PRODUCER,
            occurred_at=from_epoch_millis(self.occurred_ms),
            causation_id=self.causation_id,
            correlation_id=self.comment_id,
            comment_id=self.comment_id,
            schema_version=self.schema_version,
            method=self.method,
            method_params=self.method_params,
            classes=self.classes,
            posterior=self.posterior,
            label=self.label,
            agreement=self.agreement,
            vote_ids=self.vote_ids,
            annotator_ids=self.annotator_ids,
            votes_expected=self.votes_expected,
            status=self.status,
        )


class RequestRow(NamedTuple):
    """An ``AdjudicationRequested`` as a plain tuple.

    Like a :class:`ConsensusRow`, its ids (:attr:`request_id`, :attr:`event_id`), its
    :attr:`causation_id` (the id of the update that raised it) and its :attr:`reason` are
    derived when read; ``stored_ids`` (event id, request id), ``cause`` as a string and
    ``stored_reason`` hold those of a request read from the log instead.
    """

    stored_ids: tuple[str, str] | None
    occurred_ms: int
    cause: ConsensusRow | str | None
    comment_id: str
    schema_version: str
    stored_reason: str | None
    agreement: float
    threshold: float
    vote_ids: list[str]

    @classmethod
    def of(cls, event: AdjudicationRequested) -> RequestRow:
        return cls(
            (event.envelope.event_id, event.request_id),
            epoch_millis(event.envelope.occurred_at),
            event.envelope.causation_id,
            event.comment_id,
            event.schema_version,
            event.reason,
            event.agreement,
            event.threshold,
            list(event.vote_ids),
        )

    @property
    def request_id(self) -> str:
        if self.stored_ids is not None:
            return self.stored_ids[1]
        return stable_id(
            "adjudication-request", self.comment_id, self.schema_version, self.vote_ids
        )

    @property
    def event_id(self) -> str:
        if self.stored_ids is not None:
            return self.stored_ids[0]
        return stable_id("AdjudicationRequested", self.request_id)

    @property
    def causation_id(self) -> str | None:
        cause = self.cause
        return cause.event_id if isinstance(cause, ConsensusRow) else cause

    @property
    def reason(self) -> str:
        if self.stored_reason is not None:
            return self.stored_reason
        return f"per-item agreement {self.agreement:.2f} below {self.threshold:.2f}"

    def to_event(self) -> AdjudicationRequested:
        return build_event(
            AdjudicationRequested,
            event_id=self.event_id,
            producer=PRODUCER,
            occurred_at=from_epoch_millis(self.occurred_ms),
            causation_id=self.causation_id,
            correlation_id=self.comment_id,
            request_id=self.request_id,
            comment_id=self.comment_id,
            schema_version=self.schema_version,
            reason=self.reason,
            agreement=self.agreement,
            threshold=self.threshold,
            vote_ids=self.vote_ids,
        )


class _Running(NamedTuple):
    """What an item's next update extends instead of recomputing from all its votes."""

    vote_ids: list[str]
    annotator_ids: list[str]
    occurred_ms: int
    """the item's latest update's (the lists are shared with it, never changed)"""
    pairs: int
    """agreeing ordered vote pairs (see :func:`_agreeing_pairs`)"""
    epoch: int
    """the fold's ``_epoch`` when ``weights`` and ``logp`` were made"""
    weights: str
    logp: list[float]
    """the running log-posterior (empty for ``mv``)"""


BatchOutput = Output | ConsensusRow | RequestRow
"""What :meth:`ConsensusFold.apply_batch` returns: rows where ``apply`` returns events."""
_Internal = HoneypotScored | Rejected | ConsensusRow | RequestRow


class _Voted(Protocol):
    @property
    def annotator_id(self) -> str: ...
    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class ConsensusConfig:
    agreement_threshold: float = 0.85
    method: str = "reliability-weighted"
    """``reliability-weighted`` (votes weighted by annotator reliability) or ``mv``."""
    prior_accuracy: float = 0.7
    """Accuracy assumed for an annotator with no reliability estimate yet."""


@dataclass
class ConsensusFold:
    config: ConsensusConfig = field(default_factory=ConsensusConfig)
    name: str = "consensus"
    inputs: tuple[str, ...] = ("schemas", "quality", "tasks", "votes")
    classes: dict[str, list[str]] = field(default_factory=dict)
    retired: dict[str, str] = field(default_factory=dict)
    reliability: dict[tuple[str, str], AnnotatorReliabilityUpdated] = field(default_factory=dict)
    """(annotator, method) -> the latest estimate by that method."""
    tasks: dict[str, TaskRow] = field(default_factory=dict)
    seen_votes: set[str] = field(default_factory=set)
    by_task_annotator: dict[tuple[str, str], str] = field(default_factory=dict)
    item_votes: dict[tuple[str, str], list[VoteRow]] = field(
        default_factory=lambda: defaultdict(list)
    )
    waiting: dict[str, list[VoteRow]] = field(default_factory=lambda: defaultdict(list))
    waiting_schema: dict[str, list[VoteRow]] = field(default_factory=lambda: defaultdict(list))
    duplicates: int = 0
    _loglik: dict[str, dict[tuple[str, ...], dict[str, list[float]]]] = field(
        default_factory=dict, repr=False
    )
    _weight: dict[str, str] = field(default_factory=dict, repr=False)
    """annotator -> ``"<id>=<accuracy:.3f>"``, until its reliability changes."""
    _running: dict[tuple[str, str], _Running] = field(default_factory=dict, repr=False)
    _epoch: int = field(default=0, repr=False)
    _threshold_text: dict[float, str] = field(default_factory=dict, repr=False)
    _normalised: dict[tuple[float, ...], list[float]] = field(default_factory=dict, repr=False)
    """log-posterior -> posterior: items with the same votes' columns share one (a pure
    function of the key, so a hit returns what a recomputation would)."""

    # entry points ------------------------------------------------------------------------

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case VoteCast():
                out = self._on_vote(VoteRow.of(event))
            case TaskCreated():
                out = self._on_task(TaskRow.of(event))
            case LabelSchemaPublished():
                out = self._on_schema(event)
            case AnnotatorReliabilityUpdated():
                self._on_reliability(event)
                return []
            case _:
                return []
        return [o.to_event() if isinstance(o, ConsensusRow | RequestRow) else o for o in out]

    def apply_batch(self, inputs: Iterable[VoteRow | TaskRow | Event]) -> list[BatchOutput]:
        """Every input in order, as :meth:`apply` would see it; outputs in the same order, with
        :class:`ConsensusRow` / :class:`RequestRow` in place of the events they stand for."""
        out: list[BatchOutput] = []
        on_vote, on_task = self._on_vote, self._on_task
        for item in inputs:
            if type(item) is VoteRow:
                out.extend(on_vote(item))
            elif type(item) is TaskRow:
                out.extend(on_task(item))
            elif isinstance(item, VoteCast):
                out.extend(on_vote(VoteRow.of(item)))
            elif isinstance(item, TaskCreated):
                out.extend(on_task(TaskRow.of(item)))
            elif isinstance(item, LabelSchemaPublished):
                out.extend(self._on_schema(item))
            elif isinstance(item, AnnotatorReliabilityUpdated):
                self._on_reliability(item)
        return out

    def drain(self) -> list[Output]:
        """Reject the votes still held once every input has been read."""
        out: list[Output] = []
        for task_id in sorted(self.waiting):
            for vote in self.waiting.pop(task_id):
                out.append(Rejected(f"vote {vote.vote_id} for unknown task {task_id}"))
        for version in sorted(self.waiting_schema):
            for vote in self.waiting_schema.pop(version):
                out.append(Rejected(f"vote {vote.vote_id} under unpublished schema {version}"))
        return out

    # the rules ---------------------------------------------------------------------------

    def _on_schema(self, event: LabelSchemaPublished) -> list[_Internal]:
        self.classes[event.version] = list(event.classes)
        if event.supersedes and event.old_label_policy == "discard":
            self.retired[event.supersedes] = event.version
        self._epoch += 1
        out: list[_Internal] = []
        for vote in self.waiting_schema.pop(event.version, []):
            out += self._on_vote(vote)
        return out

    def _on_reliability(self, event: AnnotatorReliabilityUpdated) -> None:
        self.reliability[(event.annotator_id, event.method)] = event
        self._loglik.pop(event.annotator_id, None)
        self._weight.pop(event.annotator_id, None)
        self._epoch += 1

    def _on_task(self, task: TaskRow) -> list[_Internal]:
        self.tasks[task.task_id] = task
        out: list[_Internal] = []
        for vote in self.waiting.pop(task.task_id, []):
            out += self._on_vote(vote)
        return out

    def _on_vote(self, vote: VoteRow) -> list[_Internal]:
        if vote.vote_id in self.seen_votes:
            self.duplicates += 1
            return []
        task = self.tasks.get(vote.task_id)
        if task is None:
            # The task may not have been read yet: hold the vote.
            held = self.waiting[vote.task_id]
            if all(v.vote_id != vote.vote_id for v in held):
                held.append(vote)
            return []
        if task.schema_version not in self.classes:
            # The schema topic is read beside the votes: wait for the version's classes
            # rather than guess them (a guess would give one event id two contents).
            held = self.waiting_schema[task.schema_version]
            if all(v.vote_id != vote.vote_id for v in held):
                held.append(vote)
            return []
        self.seen_votes.add(vote.vote_id)
        if vote.annotator_id not in task.annotators:
            return [Rejected(f"annotator {vote.annotator_id} is not assigned task {task.task_id}")]
        if vote.schema_version != task.schema_version:
            return [
                Rejected(
                    f"vote under schema {vote.schema_version} for a "
                    f"{task.schema_version} task {task.task_id}"
                )
            ]
        if task.schema_version in self.retired:
            successor = self.retired[task.schema_version]
            return [
                Rejected(
                    f"schema {task.schema_version} is retired ({successor} discards its labels)"
                )
            ]
        classes = self.classes[task.schema_version]
        if vote.label not in classes:
            return [Rejected(f"label {vote.label!r} is not a class of {task.schema_version}")]
        key = (vote.task_id, vote.annotator_id)
        if key in self.by_task_annotator:
            return [Rejected(f"annotator {vote.annotator_id} already voted on {vote.task_id}")]
        self.by_task_annotator[key] = vote.vote_id
        if task.kind == "honeypot":
            return [self._score_honeypot(task, vote)]
        if task.kind == "crowd":
            return self._update(task, vote, classes)
        return [Rejected(f"votes on {task.kind} tasks go through adjudication")]

    # the posterior -----------------------------------------------------------------------

    def _estimate(self, annotator: str) -> AnnotatorReliabilityUpdated | None:
        """Dawid-Skene's estimate first (it has a confusion matrix), then gold/honeypots."""
        for method in ("dawid_skene", "beta_gold", "adjudication"):
            known = self.reliability.get((annotator, method))
            if known is not None:
                return known
        return None

    def _accuracy(self, annotator: str) -> float:
        known = self._estimate(annotator)
        return known.accuracy if known is not None else self.config.prior_accuracy

    def _weight_of(self, annotator: str) -> str:
        text = self._weight.get(annotator)
        if text is None:
            text = self._weight[annotator] = f"{annotator}={self._accuracy(annotator):.3f}"
        return text

    def _log_likelihood(self, annotator: str, classes: list[str]) -> dict[str, list[float]]:
        """answer -> [log P(answer | truth = c) for c in classes], cached per annotator.

        From the Dawid-Skene confusion matrix where one is known for these classes, else a
        one-coin model at the annotator's accuracy.
        """
        per_classes = self._loglik.setdefault(annotator, {})
        key = tuple(classes)
        cached = per_classes.get(key)
        if cached is not None:
            return cached
        k = len(classes)
        known = self.reliability.get((annotator, "dawid_skene"))
        if known is not None and known.confusion and known.classes == classes:
            rows = known.confusion
            columns = {
                answer: [math.log(max(rows[c][j], _EPS)) for c in range(k)]
                for j, answer in enumerate(classes)
            }
        else:
            acc = min(max(self._accuracy(annotator), 1e-3), 1 - 1e-3)
            hit, miss = math.log(acc), math.log((1.0 - acc) / max(k - 1, 1))
            columns = {
                answer: [hit if c == j else miss for c in range(k)]
                for j, answer in enumerate(classes)
            }
        per_classes[key] = columns
        return columns

    def _log_posterior(self, votes: Sequence[_Voted], classes: list[str]) -> list[float]:
        """The unnormalised log-posterior: log-likelihood columns summed in vote order."""
        logp = [0.0] * len(classes)
        for vote in votes:
            column = self._log_likelihood(vote.annotator_id, classes)[vote.label]
            logp = [a + b for a, b in zip(logp, column, strict=True)]
        return logp

    def _posterior(self, votes: Sequence[_Voted], classes: list[str]) -> list[float]:
        """P(truth = c | the item's votes), uniform prior: (n_classes,).

        Plain Python on purpose: for the three to five votes of one item it is an order of
        magnitude cheaper than numpy, and ``tests/folds/test_folds.py`` checks it equals
        :func:`labeltrail.quality.incremental.item_posterior`.
        """
        if self.config.method == "mv":
            counts = Counter(v.label for v in votes)
            return [counts.get(c, 0) / len(votes) for c in classes]
        return _normalise(self._log_posterior(votes, classes))

    def _score_honeypot(self, task: TaskRow, vote: VoteRow) -> HoneypotScored:
        expected = task.expected_label or ""
        return HoneypotScored.create(
            producer=PRODUCER,
            id_parts=("honeypot", vote.vote_id),
            occurred_at=from_epoch_millis(vote.occurred_ms),
            causation_id=vote.event_id,
            correlation_id=vote.comment_id,
            annotator_id=vote.annotator_id,
            task_id=task.task_id,
            vote_id=vote.vote_id,
            comment_id=vote.comment_id,
            schema_version=task.schema_version,
            source="honeypot",
            expected_label=expected,
            given_label=vote.label,
            correct=vote.label == expected,
        )

    def _update(self, task: TaskRow, vote: VoteRow, classes: list[str]) -> list[_Internal]:
        item = (task.comment_id, task.schema_version)
        votes = self.item_votes[item]
        votes.append(vote)
        n = len(votes)
        classes = classes or sorted({v.label for v in votes})
        method = self.config.method
        # The item's previous update is extended by the new vote (the same values as from all
        # its votes: lists in vote order, the latest time, the same integer pair count); the
        # weights and the log-posterior too, unless a reliability or a schema came since.
        known = self._running.get(item)
        if known is None or len(known.vote_ids) != n - 1:
            known = None
            vote_ids = [v.vote_id for v in votes]
            annotator_ids = [v.annotator_id for v in votes]
            # The consensus exists once its last vote (in event time) does.
            occurred = max([v.occurred_ms for v in votes])
            pairs = _agreeing_pairs([v.label for v in votes]) if n > 1 else 0
        else:
            vote_ids = [*known.vote_ids, vote.vote_id]
            annotator_ids = [*known.annotator_ids, vote.annotator_id]
            occurred = max(known.occurred_ms, vote.occurred_ms)
            same = 0
            for v in votes:
                if v.label == vote.label:
                    same += 1
            pairs = known.pairs + 2 * (same - 1)
        if known is not None and known.epoch == self._epoch:
            weights = f"{known.weights},{self._weight_of(vote.annotator_id)}"
            logp = known.logp
            if method != "mv":
                column = self._log_likelihood(vote.annotator_id, classes)[vote.label]
                logp = [a + b for a, b in zip(logp, column, strict=True)]
        else:
            weights = ",".join([self._weight_of(v.annotator_id) for v in votes])
            logp = [] if method == "mv" else self._log_posterior(votes, classes)
        if method == "mv":
            posterior = self._posterior(votes, classes)
        else:
            key = tuple(logp)
            shared = self._normalised.get(key)
            if shared is None:
                if len(self._normalised) >= _NORMALISED_MAX:
                    self._normalised.clear()
                shared = self._normalised[key] = _normalise(logp)
            posterior = list(shared)
        # The tie rule: the first class in schema order with the top value. The values are
        # rounded to 6 places (or are count fractions), so "close to the top" is "equal to it".
        label = classes[posterior.index(max(posterior))]
        agreement = _share_agreeing(pairs, n)
        threshold = self.config.agreement_threshold
        threshold_text = self._threshold_text.get(threshold)
        if threshold_text is None:
            threshold_text = self._threshold_text[threshold] = f"{threshold:.2f}"
        status = "collecting"
        if n >= task.redundancy:
            status = "passed" if agreement >= threshold else "adjudication"
        update = ConsensusRow(
            None,
            occurred,
            vote.event_id,
            task.comment_id,
            task.schema_version,
            method,
            {
                "tie_rule": TIE_RULE,
                "agreement": "pairwise",
                "threshold": threshold_text,
                "weights": weights,
            },
            classes,
            posterior,
            label,
            agreement,
            vote_ids,
            annotator_ids,
            task.redundancy,
            status,
        )
        if status == "collecting":
            self._running[item] = _Running(
                vote_ids, annotator_ids, occurred, pairs, self._epoch, weights, logp
            )
        else:
            # A complete item rarely gets another vote (a second task on the same comment):
            # that one is computed from all the item's votes, and the state is not kept.
            self._running.pop(item, None)
        if status != "adjudication":
            return [update]
        request = RequestRow(
            None,
            occurred,
            update,
            task.comment_id,
            task.schema_version,
            None,
            agreement,
            threshold,
            vote_ids,
        )
        return [update, request]


def _normalise(logp: list[float]) -> list[float]:
    top = max(logp)
    weights = [math.exp(x - top) for x in logp]
    total = sum(weights)
    return [round(w / total, 6) for w in weights]
