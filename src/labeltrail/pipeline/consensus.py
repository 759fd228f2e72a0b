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
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    AdjudicationRequested,
    AnnotatorReliabilityUpdated,
    ConsensusUpdated,
    HoneypotScored,
    LabelSchemaPublished,
    TaskCreated,
    VoteCast,
)
from labeltrail.pipeline.base import Output, Rejected
from labeltrail.quality import TIE_RULE

__all__ = ["ConsensusConfig", "ConsensusFold", "pairwise_agreement"]

PRODUCER = "consensus"
_EPS = 1e-10


def pairwise_agreement(labels: list[str]) -> float:
    """Share of agreeing vote pairs (Fleiss' per-item P_i); 1.0 for a single vote.

    Equal to ``quality.agreement_items.item_agreement(...).observed``, in plain Python.
    """
    n = len(labels)
    if n < 2:
        return 1.0
    return sum(c * (c - 1) for c in Counter(labels).values()) / (n * (n - 1))


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
    tasks: dict[str, TaskCreated] = field(default_factory=dict)
    seen_votes: set[str] = field(default_factory=set)
    by_task_annotator: dict[tuple[str, str], str] = field(default_factory=dict)
    item_votes: dict[tuple[str, str], list[VoteCast]] = field(
        default_factory=lambda: defaultdict(list)
    )
    waiting: dict[str, list[VoteCast]] = field(default_factory=lambda: defaultdict(list))
    waiting_schema: dict[str, list[VoteCast]] = field(default_factory=lambda: defaultdict(list))
    duplicates: int = 0
    _loglik: dict[str, dict[tuple[str, ...], dict[str, list[float]]]] = field(
        default_factory=dict, repr=False
    )

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case LabelSchemaPublished():
                self.classes[event.version] = list(event.classes)
                if event.supersedes and event.old_label_policy == "discard":
                    self.retired[event.supersedes] = event.version
                out: list[Output] = []
                for vote in self.waiting_schema.pop(event.version, []):
                    out += self._on_vote(vote)
                return out
            case AnnotatorReliabilityUpdated():
                self.reliability[(event.annotator_id, event.method)] = event
                self._loglik.pop(event.annotator_id, None)
            case TaskCreated():
                self.tasks[event.task_id] = event
                return self._release(event.task_id)
            case VoteCast():
                return self._on_vote(event)
        return []

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

    def _release(self, task_id: str) -> list[Output]:
        out: list[Output] = []
        for vote in self.waiting.pop(task_id, []):
            out += self._on_vote(vote)
        return out

    def _on_vote(self, vote: VoteCast) -> list[Output]:
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

    def _posterior(self, votes: list[VoteCast], classes: list[str]) -> list[float]:
        """P(truth = c | the item's votes), uniform prior: (n_classes,).

        Plain Python on purpose: for the three to five votes of one item it is an order of
        magnitude cheaper than numpy, and ``tests/pipeline/test_folds.py`` checks it equals
        :func:`labeltrail.quality.incremental.item_posterior`.
        """
        k = len(classes)
        if self.config.method == "mv":
            counts = Counter(v.label for v in votes)
            return [counts.get(c, 0) / len(votes) for c in classes]
        logp = [0.0] * k
        for vote in votes:
            column = self._log_likelihood(vote.annotator_id, classes)[vote.label]
            logp = [a + b for a, b in zip(logp, column, strict=True)]
        top = max(logp)
        weights = [math.exp(x - top) for x in logp]
        total = sum(weights)
        return [round(w / total, 6) for w in weights]

    def _score_honeypot(self, task: TaskCreated, vote: VoteCast) -> HoneypotScored:
        expected = task.expected_label or ""
        return HoneypotScored.create(
            producer=PRODUCER,
            id_parts=("honeypot", vote.vote_id),
            occurred_at=vote.envelope.occurred_at,
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

    def _update(self, task: TaskCreated, vote: VoteCast, classes: list[str]) -> list[Output]:
        item = (task.comment_id, task.schema_version)
        votes = self.item_votes[item]
        votes.append(vote)
        classes = classes or sorted({v.label for v in votes})
        posterior = self._posterior(votes, classes)
        best = max(posterior)
        label = classes[next(i for i, p in enumerate(posterior) if math.isclose(p, best))]
        agreement = pairwise_agreement([v.label for v in votes])
        threshold = self.config.agreement_threshold
        complete = len(votes) >= task.redundancy
        status = "collecting"
        if complete:
            status = "passed" if agreement >= threshold else "adjudication"
        vote_ids = [v.vote_id for v in votes]
        # The consensus exists once its last vote (in event time) does.
        occurred = max(v.envelope.occurred_at for v in votes)
        update = ConsensusUpdated.create(
            producer=PRODUCER,
            id_parts=("consensus", *item, vote_ids, self.config.method),
            occurred_at=occurred,
            causation_id=vote.event_id,
            correlation_id=task.comment_id,
            comment_id=task.comment_id,
            schema_version=task.schema_version,
            method=self.config.method,
            method_params={
                "tie_rule": TIE_RULE,
                "agreement": "pairwise",
                "threshold": f"{threshold:.2f}",
                "weights": ",".join(
                    f"{v.annotator_id}={self._accuracy(v.annotator_id):.3f}" for v in votes
                ),
            },
            classes=classes,
            posterior=posterior,
            label=label,
            agreement=agreement,
            vote_ids=vote_ids,
            annotator_ids=[v.annotator_id for v in votes],
            votes_expected=task.redundancy,
            status=status,
        )
        out: list[Output] = [update]
        if status == "adjudication":
            request_id = derive_id("adjudication-request", *item, vote_ids)
            out.append(
                AdjudicationRequested.create(
                    producer=PRODUCER,
                    id_parts=(request_id,),
                    occurred_at=occurred,
                    causation_id=update.event_id,
                    correlation_id=task.comment_id,
                    request_id=request_id,
                    comment_id=task.comment_id,
                    schema_version=task.schema_version,
                    reason=f"per-item agreement {agreement:.2f} below {threshold:.2f}",
                    agreement=agreement,
                    threshold=threshold,
                    vote_ids=vote_ids,
                )
            )
        return out
