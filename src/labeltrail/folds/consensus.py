"""Rolling consensus per (comment, schema version), honeypot scoring and the QC gate.

The posterior weights each vote by its annotator's current reliability (the latest
AnnotatorReliabilityUpdated: a Dawid-Skene confusion matrix where one exists, else the
honeypot/gold accuracy as a one-coin model, else ``prior_accuracy``). The weights used are
recorded in the update's ``method_params``, with the estimates behind them by event id and the
prior (``estimates``, ``prior_accuracy``), so every label can be explained and its posterior
made again from the log whatever order the stage read votes and estimates in
(:func:`~labeltrail.folds.consensus_weights.reproduce_posterior`). Per-item
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

The maths is the quality core's per-item rules (:mod:`labeltrail.quality.item`); the weights
come from :class:`~labeltrail.folds.consensus_weights.Reliabilities` and the outputs are the
rows of :mod:`labeltrail.folds.consensus_rows`. The posterior of an item is kept as a running
sum of log-likelihood columns, in vote order (the same additions, in the same order, as a
recomputation), and recomputed from all of the item's votes whenever a reliability estimate or
a schema changed since (``_epoch``).

Calibrated confidence: the latest ``CalibrationFitted`` read for the item's schema version
(:mod:`labeltrail.folds.calibration`) maps the posterior to the confidence a complete item
must reach (``min_confidence``, besides the agreement threshold); the update names the map in
its ``method_params`` (``calibration``, ``temperature``, ``confidence``). The posterior itself
stays uncalibrated, so :func:`~labeltrail.folds.consensus_weights.reproduce_posterior` holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from labeltrail.events.base import Event, LogPosition, from_epoch_millis
from labeltrail.events.columnar import TaskRow, VoteRow
from labeltrail.events.models import (
    AnnotatorReliabilityUpdated,
    CalibrationFitted,
    HoneypotScored,
    LabelSchemaPublished,
    TaskCreated,
    VoteCast,
)
from labeltrail.folds.base import Output, Rejected
from labeltrail.folds.calibration import Calibrations
from labeltrail.folds.consensus_rows import PRODUCER, ConsensusRow, RequestRow
from labeltrail.folds.consensus_weights import Reliabilities, Voted
from labeltrail.quality import TIE_RULE
from labeltrail.quality.item import (
    add_column,
    agreeing_pairs,
    normalise,
    pairwise_agreement,
    share_agreeing,
    vote_shares,
)

__all__ = [
    "BatchOutput",
    "ConsensusConfig",
    "ConsensusFold",
    "ConsensusRow",
    "RequestRow",
    "pairwise_agreement",
]


_Tally = tuple[list[str], list[str], int, int]
"""What an update says of its item's votes, whatever the weights: vote ids and annotator ids in
vote order, the latest vote's time (the consensus exists once its last vote, in event time,
does) and the agreeing ordered vote pairs (:func:`~labeltrail.quality.item.agreeing_pairs`)."""


def _tally(votes: Sequence[VoteRow]) -> _Tally:
    """From all of an item's votes."""
    return (
        [v.vote_id for v in votes],
        [v.annotator_id for v in votes],
        max([v.occurred_ms for v in votes]),
        agreeing_pairs([v.label for v in votes]) if len(votes) > 1 else 0,
    )


def _extended(known: _Running, votes: Sequence[VoteRow], vote: VoteRow) -> _Tally:
    """The tally of all votes but the last, ``vote``, extended by it: the same values as
    :func:`_tally` of all of them (lists in vote order, the same integer pair count)."""
    same = 0
    for v in votes:
        if v.label == vote.label:
            same += 1
    return (
        [*known.vote_ids, vote.vote_id],
        [*known.annotator_ids, vote.annotator_id],
        max(known.occurred_ms, vote.occurred_ms),
        known.pairs + 2 * (same - 1),
    )


class _Running(NamedTuple):
    """An item's state after an update: its tally (the lists are shared with the update,
    never changed) and what the next update extends instead of recomputing."""

    vote_ids: list[str]
    annotator_ids: list[str]
    occurred_ms: int
    pairs: int
    epoch: int
    """the fold's ``_epoch`` when ``weights`` and ``logp`` were made"""
    weights: str
    estimates: str
    """the estimates behind ``weights``, by event id (empty for ``mv``)"""
    logp: list[float]
    """the running log-posterior (empty for ``mv``)"""


BatchOutput = Output | ConsensusRow | RequestRow
"""What :meth:`ConsensusFold.apply_batch` returns: rows where ``apply`` returns events."""
_Internal = HoneypotScored | Rejected | ConsensusRow | RequestRow


@dataclass(frozen=True)
class ConsensusConfig:
    agreement_threshold: float = 0.85
    method: str = "reliability-weighted"
    """``reliability-weighted`` (votes weighted by annotator reliability) or ``mv``."""
    prior_accuracy: float = 0.7
    """Accuracy assumed for an annotator with no reliability estimate yet."""
    min_confidence: float = 0.0
    """A complete item also needs its (calibrated) confidence at or above this to pass."""
    calibrate: bool = True
    """Apply the latest calibration map read (``CalibrationFitted``) to the confidence."""


@dataclass
class ConsensusFold:
    config: ConsensusConfig = field(default_factory=ConsensusConfig)
    name: str = "consensus"
    inputs: tuple[str, ...] = ("schemas", "quality", "tasks", "votes")
    classes: dict[str, list[str]] = field(default_factory=dict)
    retired: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, TaskRow] = field(default_factory=dict)
    seen_votes: set[str] = field(default_factory=set)
    by_task_annotator: dict[tuple[str, str], str] = field(default_factory=dict)
    item_votes: dict[tuple[str, str], list[VoteRow]] = field(
        default_factory=lambda: defaultdict(list)
    )
    waiting: dict[str, list[VoteRow]] = field(default_factory=lambda: defaultdict(list))
    waiting_schema: dict[str, list[VoteRow]] = field(default_factory=lambda: defaultdict(list))
    duplicates: int = 0
    _running: dict[tuple[str, str], _Running] = field(default_factory=dict, repr=False)
    _epoch: int = field(default=0, repr=False)
    reliability: Reliabilities = field(init=False)
    """Every annotator's latest estimates and the vote weights from them."""
    calibrations: Calibrations = field(default_factory=Calibrations)
    """The latest calibration map per schema version."""

    _params: dict[str, str] = field(init=False, repr=False)
    """Every update's ``method_params`` but its weights."""
    _mv: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.reliability = Reliabilities(self.config.prior_accuracy)
        threshold = f"{self.config.agreement_threshold:.2f}"
        self._params = {"tie_rule": TIE_RULE, "agreement": "pairwise", "threshold": threshold}
        self._mv = self.config.method == "mv"
        if not self._mv:
            self._params["prior_accuracy"] = repr(self.config.prior_accuracy)
        if self.config.min_confidence > 0:
            self._params["min_confidence"] = f"{self.config.min_confidence:.2f}"

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
            case CalibrationFitted():
                self._on_calibration(event)
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
            elif isinstance(item, CalibrationFitted):
                self._on_calibration(item)
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
        self.reliability.update(event)
        self._epoch += 1

    def _on_calibration(self, event: CalibrationFitted) -> None:
        if self.config.calibrate:
            self.calibrations.update(event)

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
            _hold(self.waiting[vote.task_id], vote)
            return []
        if task.schema_version not in self.classes:
            # The schema topic is read beside the votes: wait for the version's classes
            # rather than guess them (a guess would give one event id two contents).
            _hold(self.waiting_schema[task.schema_version], vote)
            return []
        self.seen_votes.add(vote.vote_id)
        if vote.annotator_id not in task.annotators:
            return [Rejected(f"annotator {vote.annotator_id} is not assigned task {task.task_id}")]
        if vote.schema_version != task.schema_version:
            return [Rejected(_mixed_versions(task, vote))]
        if task.schema_version in self.retired:
            successor = self.retired[task.schema_version]
            reason = f"schema {task.schema_version} is retired ({successor} discards its labels)"
            return [Rejected(reason)]
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

    def _posterior(self, votes: Sequence[Voted], classes: list[str]) -> list[float]:
        """P(truth = c | the item's votes), uniform prior: (n_classes,)."""
        if self.config.method == "mv":
            return vote_shares([v.label for v in votes], classes)
        return normalise(self.reliability.log_posterior(votes, classes))

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
        """A crowd vote accepted: the item's new ``ConsensusUpdated`` (and a request for
        adjudication when it completes the item below the agreement threshold)."""
        item = (task.comment_id, task.schema_version)
        votes = self.item_votes[item]
        votes.append(vote)
        classes = classes or sorted({v.label for v in votes})
        known = self._running.get(item)
        if known is not None and len(known.vote_ids) != len(votes) - 1:
            known = None
        tally = _tally(votes) if known is None else _extended(known, votes, vote)
        weights, used, logp = self._weights_and_logp(known, votes, vote, classes)
        state = _Running(*tally, self._epoch, weights, used, logp)
        posterior = (
            self._posterior(votes, classes) if self._mv else self.reliability.posterior(logp)
        )
        update = self._row(task, vote, classes, state, posterior)
        if update.status == "collecting":
            self._running[item] = state
        else:
            # A complete item rarely gets another vote (a second task on the same comment):
            # that one is computed from all the item's votes, and the state is not kept.
            self._running.pop(item, None)
        if update.status != "adjudication":
            return [update]
        return [update, self._request(update)]

    def _weights_and_logp(
        self, known: _Running | None, votes: list[VoteRow], vote: VoteRow, classes: list[str]
    ) -> tuple[str, str, list[float]]:
        """The weights text, the estimates behind them and the running log-posterior: the
        previous update's extended by ``vote`` unless a reliability or a schema came since,
        else from all the votes."""
        weight_text = self.reliability.weight_text
        if known is None or known.epoch != self._epoch:
            weights = ",".join([weight_text(v.annotator_id) for v in votes])
            if self._mv:
                return weights, "", []
            used = ",".join([self.reliability.estimate_text(v.annotator_id) for v in votes])
            return weights, used, self.reliability.log_posterior(votes, classes)
        weights = f"{known.weights},{weight_text(vote.annotator_id)}"
        if self._mv:
            return weights, "", known.logp
        used = f"{known.estimates},{self.reliability.estimate_text(vote.annotator_id)}"
        column = self.reliability.columns(vote.annotator_id, classes)[vote.label]
        return weights, used, add_column(known.logp, column)

    def _row(
        self,
        task: TaskRow,
        vote: VoteRow,
        classes: list[str],
        state: _Running,
        posterior: list[float],
    ) -> ConsensusRow:
        # The tie rule: the first class in schema order with the top value. The values are
        # rounded to 6 places (or are count fractions), so "close to the top" is "equal to it".
        label = classes[posterior.index(max(posterior))]
        n = len(state.vote_ids)
        agreement = share_agreeing(state.pairs, n)
        calibration: dict[str, str] = {}
        status = "collecting"
        if n >= task.redundancy:
            calibration = self.calibrations.params(task.schema_version, classes, posterior)
            passed = agreement >= self.config.agreement_threshold
            if passed and self.config.min_confidence > 0:
                passed = _confidence(posterior, calibration) >= self.config.min_confidence
            status = "passed" if passed else "adjudication"
        return ConsensusRow(
            None,
            state.occurred_ms,
            vote.event_id,
            task.comment_id,
            task.schema_version,
            self.config.method,
            {
                "tie_rule": TIE_RULE,
                "agreement": "pairwise",
                **self._params,
                "weights": state.weights,
                **({"estimates": state.estimates} if state.estimates else {}),
                **calibration,
            },
            classes,
            posterior,
            label,
            agreement,
            state.vote_ids,
            state.annotator_ids,
            task.redundancy,
            status,
        )

    def _request(self, update: ConsensusRow) -> RequestRow:
        reason = None
        if update.agreement >= self.config.agreement_threshold:
            # Agreement passed: the confidence gate sent it (docs/quality.md).
            confidence = _confidence(update.posterior, update.method_params)
            which = (
                "calibrated confidence" if "calibration" in update.method_params else "confidence"
            )
            reason = f"{which} {confidence:.2f} below {self.config.min_confidence:.2f}"
        return RequestRow(
            None,
            update.occurred_ms,
            update,
            update.comment_id,
            update.schema_version,
            reason,
            update.agreement,
            self.config.agreement_threshold,
            update.vote_ids,
        )


def _confidence(posterior: list[float], calibration: Mapping[str, str]) -> float:
    """The confidence the gate compares: the calibrated one where a map was applied."""
    return float(calibration["confidence"]) if "calibration" in calibration else max(posterior)


def _hold(held: list[VoteRow], vote: VoteRow) -> None:
    """Keep a vote until what it waits for is read (once, however often it is redelivered)."""
    if all(v.vote_id != vote.vote_id for v in held):
        held.append(vote)


def _mixed_versions(task: TaskRow, vote: VoteRow) -> str:
    return (
        f"vote under schema {vote.schema_version} for a {task.schema_version} task {task.task_id}"
    )
