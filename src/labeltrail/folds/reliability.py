"""Annotator reliability: gold results as they arrive, adjudication feedback, weekly Dawid-Skene.

Honeypot and gold results and expert verdicts (each crowd vote scored against them) update a
Beta posterior per annotator and schema version; every week of event time a gold-fixed
Dawid-Skene refit gives confusion matrices. Event time only and ids from the inputs, so a
replay emits the same events. The three sources in detail: ``docs/pipeline.md`` ("Annotator
reliability").

Quality control acts here too: an annotator whose honeypot and gold results (adjudication
feedback excluded: the items experts see are the hard ones) put their accuracy below the floor
with high posterior probability is suspended (``AnnotatorSuspended``, actor ``qc``, with the
evidence); a reinstatement starts their evidence afresh (``docs/quality.md``, "Quality control
that acts").

With a :class:`~labeltrail.folds.calibration.CalibrationConfig`, each refit also fits the
consensus confidence's calibration map on the complete crowd consensus of gold items
(``CalibrationFitted``, :mod:`labeltrail.folds.calibration`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    GOLD_REQUEST_PREFIX,
    AdjudicationRecorded,
    AnnotatorReinstated,
    AnnotatorReliabilityUpdated,
    AnnotatorSuspended,
    ConsensusUpdated,
    HoneypotScored,
    LabelSchemaPublished,
    VoteCast,
)
from labeltrail.folds.base import Output
from labeltrail.folds.calibration import CalibrationConfig, GoldPairs
from labeltrail.quality import DawidSkene, PooledDawidSkene, Votes
from labeltrail.quality.methods import DEFAULT_METHOD
from labeltrail.quality.reliability import BetaReliability, update_reliability

__all__ = ["WEEK_ORIGIN", "ReliabilityConfig", "ReliabilityFold", "boundary_after"]

PRODUCER = "reliability"
QC_ACTOR = "qc"
"""The actor of the suspensions quality control makes (a person's id marks a manual one)."""
WEEK_ORIGIN = dt.datetime(1970, 1, 5, tzinfo=dt.UTC)
"""A Monday: weekly boundaries (refits here, week windows in :mod:`.iaa`) are aligned to it."""

Item = tuple[str, str]
"""(comment id, schema version)."""


def boundary_after(t: dt.datetime, every: dt.timedelta) -> dt.datetime:
    """The first boundary strictly after ``t`` on the grid ``WEEK_ORIGIN + k * every``."""
    steps = (t - WEEK_ORIGIN) // every
    return WEEK_ORIGIN + (steps + 1) * every


@dataclass(frozen=True)
class ReliabilityConfig:
    """prior: Beta prior (alpha, beta); level: credible interval; refit_*: the Dawid-Skene step.

    ``refit_on_drain`` runs the pending refit early when the input is drained: right for a
    finite replay, wrong for a live service (the runner drains whenever it is caught up).
    """

    prior: tuple[float, float] = (1.0, 1.0)
    level: float = 0.95
    refit_every: dt.timedelta = dt.timedelta(days=7)
    refit_window: dt.timedelta = dt.timedelta(days=7)
    refit_lateness: dt.timedelta = dt.timedelta(days=1)
    min_votes: int = 5
    max_iter: int = 100
    refit_method: str = DEFAULT_METHOD
    """The refit's model: ``pds`` (pooled-prior Bayesian Dawid-Skene, the project's default
    method, as ``labeltrail aggregate`` uses) or ``ds`` (plain Dawid-Skene); setting
    ``LABELTRAIL_RELIABILITY_REFIT_METHOD``. The reliability-weighted consensus weighs votes by
    the confusion matrices the refit publishes (docs/quality.md, "Default method")."""
    retention: dt.timedelta = dt.timedelta(days=28)
    refit_on_drain: bool = False
    suspend: bool = True
    """Suspend an annotator whose honeypot and gold accuracy falls below the floor."""
    suspend_floor: float = 0.7
    """The accuracy floor."""
    suspend_probability: float = 0.95
    """Suspend when P(accuracy < floor) exceeds this, under the Beta posterior (``prior``
    plus the honeypot and gold results since registration or the last reinstatement)."""
    suspend_min_results: int = 10
    """Never on fewer honeypot and gold results than this."""


@dataclass
class ReliabilityFold:
    """State: Beta posteriors, the last estimate per method, votes kept for scoring and refits."""

    config: ReliabilityConfig = field(default_factory=ReliabilityConfig)
    name: str = "reliability"
    inputs: tuple[str, ...] = (
        "schemas",
        "votes",
        "adjudications",
        "quality",
        "annotators.status",
        "consensus",
    )
    accepts: ClassVar[frozenset[str]] = frozenset(
        {
            "ConsensusUpdated",
            "LabelSchemaPublished",
            "VoteCast",
            "AdjudicationRecorded",
            "HoneypotScored",
            "AnnotatorSuspended",
            "AnnotatorReinstated",
        }
    )
    """The event types ``apply`` handles; the runner skips others' bodies undecoded."""
    classes: dict[str, list[str]] = field(default_factory=dict)
    beta: dict[Item, BetaReliability] = field(default_factory=dict)
    last: dict[tuple[str, str, str], float] = field(default_factory=dict)
    votes: dict[Item, dict[str, VoteCast]] = field(default_factory=lambda: defaultdict(dict))
    gold: dict[Item, str] = field(default_factory=dict)
    verdicts: dict[Item, list[AdjudicationRecorded]] = field(
        default_factory=lambda: defaultdict(list)
    )
    scored: set[tuple[str, str]] = field(default_factory=set)
    clock: dt.datetime | None = None
    next_refit: dt.datetime | None = None
    qc: dict[str, BetaReliability] = field(default_factory=dict)
    """Per annotator, the Beta posterior over honeypot and gold results since registration or
    the last reinstatement (all schema versions): what suspension decides on."""
    suspended: set[str] = field(default_factory=set)
    """Annotators suspended (by quality control or by a person) and not reinstated since."""
    calibration: CalibrationConfig | None = None
    """Fit the consensus confidence's calibration at each refit; None: never."""
    pairs: GoldPairs = field(default_factory=GoldPairs)
    """Complete consensus and gold classes, what the calibration is fitted on."""

    def __post_init__(self) -> None:
        if self.calibration is None:
            # The consensus topic is read only to fit the calibration (the stage's ACLs,
            # from the class's inputs, allow it either way).
            self.inputs = tuple(s for s in self.inputs if s != "consensus")

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case LabelSchemaPublished():
                self.classes[event.version] = list(event.classes)
                return []
            case ConsensusUpdated():
                # Never moves the clock: a consensus is as late as its last vote.
                if self.calibration is not None:
                    self.pairs.on_consensus(event)
                return []
            case VoteCast():
                out = self._on_vote(event)
            case AdjudicationRecorded():
                out = self._on_adjudication(event)
            case HoneypotScored() if event.source != "adjudication":
                item = (event.comment_id, event.schema_version)
                self.gold[item] = event.expected_label
                if self.calibration is not None:
                    self.pairs.gold[item] = event.expected_label
                out = [self._fold_result(event), *self._control(event)]
            case AnnotatorSuspended():
                # Status changes carry wall-clock time: they never move the event-time clock.
                self.suspended.add(event.annotator_id)
                return []
            case AnnotatorReinstated():
                self.suspended.discard(event.annotator_id)
                self.qc.pop(event.annotator_id, None)
                return []
            case _:
                return []
        return out + self._tick(event)

    def drain(self) -> list[Output]:
        """With ``refit_on_drain``: run the pending refit now (once), over what has been read."""
        if not self.config.refit_on_drain or self.next_refit is None or self.clock is None:
            return []
        boundary, self.next_refit = self.next_refit, None
        return self._refit(boundary, None, self.clock)

    # gold results and adjudication feedback ----------------------------------------------

    def _on_vote(self, vote: VoteCast) -> list[Output]:
        item = (vote.comment_id, vote.schema_version)
        if vote.vote_id in self.votes[item]:
            return []
        self.votes[item][vote.vote_id] = vote
        out: list[Output] = []
        for verdict in self.verdicts.get(item, []):
            out += self._score(verdict, vote)
        return out

    def _on_adjudication(self, verdict: AdjudicationRecorded) -> list[Output]:
        item = (verdict.comment_id, verdict.schema_version)
        self.gold[item] = verdict.label
        gold_set = verdict.request_id.startswith(GOLD_REQUEST_PREFIX)
        cal = self.calibration
        if cal is not None and (gold_set or cal.include_verdicts):
            self.pairs.gold[item] = verdict.label
        if gold_set:
            return []
        known = self.verdicts[item]
        if any(v.adjudication_id == verdict.adjudication_id for v in known):
            return []
        known.append(verdict)
        out: list[Output] = []
        for vote_id in sorted(self.votes.get(item, {})):
            out += self._score(verdict, self.votes[item][vote_id])
        return out

    def _score(self, verdict: AdjudicationRecorded, vote: VoteCast) -> list[Output]:
        pair = (verdict.adjudication_id, vote.vote_id)
        if pair in self.scored or vote.annotator_id == verdict.reviewer_id:
            return []
        self.scored.add(pair)
        result = HoneypotScored.create(
            producer=PRODUCER,
            id_parts=("adjudication", *pair),
            occurred_at=verdict.envelope.occurred_at,
            causation_id=verdict.event_id,
            correlation_id=verdict.comment_id,
            annotator_id=vote.annotator_id,
            task_id=vote.task_id,
            vote_id=vote.vote_id,
            comment_id=vote.comment_id,
            schema_version=vote.schema_version,
            source="adjudication",
            expected_label=verdict.label,
            given_label=vote.label,
            correct=vote.label == verdict.label,
        )
        return [result, self._fold_result(result)]

    def _fold_result(self, result: HoneypotScored) -> AnnotatorReliabilityUpdated:
        key = (result.annotator_id, result.schema_version)
        state = self.beta.get(key) or BetaReliability(*self.config.prior)
        state = update_reliability(state, result.correct)
        self.beta[key] = state
        lower, upper = state.interval(self.config.level)
        n = round(state.n_observed - sum(self.config.prior))
        return self._updated(
            annotator=result.annotator_id,
            version=result.schema_version,
            method="beta_gold",
            accuracy=state.mean,
            interval=(lower, upper),
            n=n,
            id_parts=(result.event_id, state.alpha, state.beta),
            occurred_at=result.envelope.occurred_at,
            causation_id=result.event_id,
        )

    # quality control that acts ----------------------------------------------------------

    def _control(self, result: HoneypotScored) -> list[Output]:
        """Fold a honeypot or gold result into the annotator's evidence; suspend them when it
        puts their accuracy below the floor (once: until a reinstatement)."""
        cfg = self.config
        annotator = result.annotator_id
        state = update_reliability(
            self.qc.get(annotator) or BetaReliability(*cfg.prior), result.correct
        )
        self.qc[annotator] = state
        if not cfg.suspend or annotator in self.suspended:
            return []
        n = round(state.n_observed - sum(cfg.prior))
        if n < cfg.suspend_min_results:
            return []
        p_below = state.prob_below(cfg.suspend_floor)
        if p_below <= cfg.suspend_probability:
            return []
        self.suspended.add(annotator)
        correct = round(state.alpha - cfg.prior[0])
        evidence = {
            "results": "honeypot+gold",
            "n": str(n),
            "correct": str(correct),
            "incorrect": str(n - correct),
            "prior": f"Beta({cfg.prior[0]:g}, {cfg.prior[1]:g})",
            "posterior_mean": f"{state.mean:.4f}",
            "p_below_floor": f"{p_below:.4f}",
            "floor": f"{cfg.suspend_floor:g}",
            "probability": f"{cfg.suspend_probability:g}",
            "min_results": str(cfg.suspend_min_results),
            "last_result": result.event_id,
        }
        return [
            AnnotatorSuspended.create(
                producer=PRODUCER,
                id_parts=("qc-suspend", annotator, result.event_id),
                occurred_at=result.envelope.occurred_at,
                causation_id=result.event_id,
                correlation_id=annotator,
                annotator_id=annotator,
                reason=(
                    f"honeypot and gold accuracy below the floor: P(accuracy < "
                    f"{cfg.suspend_floor:g}) = {p_below:.3f} > {cfg.suspend_probability:g} over "
                    f"{n} results ({correct} correct)"
                ),
                actor=QC_ACTOR,
                evidence=evidence,
            )
        ]

    # periodic Dawid-Skene ----------------------------------------------------------------

    def _tick(self, event: Event) -> list[Output]:
        t = event.envelope.occurred_at
        cfg = self.config
        if self.next_refit is None:
            self.next_refit = boundary_after(t, cfg.refit_every)
        if self.clock is None or t > self.clock:
            self.clock = t
        out: list[Output] = []
        while self.next_refit + cfg.refit_lateness <= self.clock:
            boundary = self.next_refit
            self.next_refit = boundary + cfg.refit_every
            out += self._refit(boundary, event, self.clock)
        return out

    def _refit(
        self, boundary: dt.datetime, cause: Event | None, occurred: dt.datetime
    ) -> list[Output]:
        cfg = self.config
        start = boundary - cfg.refit_window
        window: dict[str, list[VoteCast]] = defaultdict(list)
        for (_, version), votes in self.votes.items():
            for vote in votes.values():
                if start <= vote.envelope.occurred_at < boundary:
                    window[version].append(vote)
        out: list[Output] = []
        for version in sorted(window):
            out += self._refit_version(version, window[version], start, boundary, cause, occurred)
        if self.calibration is not None:
            cause_id = cause.event_id if cause is not None else None
            out += self.pairs.fit(self.calibration, boundary, cause_id, occurred)
        self._forget(boundary - max(cfg.retention, cfg.refit_window))
        return out

    def _refit_version(
        self,
        version: str,
        votes: list[VoteCast],
        start: dt.datetime,
        end: dt.datetime,
        cause: Event | None,
        occurred: dt.datetime,
    ) -> list[Output]:
        cfg = self.config
        classes = self.classes.get(version) or sorted({v.label for v in votes})
        votes = [v for v in votes if v.label in classes]
        if not votes:
            return []
        encoded = Votes.from_long(
            [v.comment_id for v in votes],
            [v.annotator_id for v in votes],
            [v.label for v in votes],
            classes=classes,
        )
        gold: dict[Hashable, Hashable] = {
            cid: label
            for cid in {v.comment_id for v in votes}
            if (label := self.gold.get((cid, version))) in classes
        }
        if cfg.refit_method not in ("ds", "pds"):
            raise ValueError(f"refit_method must be 'ds' or 'pds', got {cfg.refit_method!r}")
        cls = PooledDawidSkene if cfg.refit_method == "pds" else DawidSkene
        model = cls(max_iter=cfg.max_iter).fit(encoded, gold=gold or None)
        p_right = np.asarray(model.posteriors_, dtype=np.float64)[encoded.item, encoded.label]
        n = np.bincount(encoded.annotator, minlength=encoded.n_annotators)
        hits = np.bincount(encoded.annotator, weights=p_right, minlength=encoded.n_annotators)
        digest = derive_id(
            "ds-window", version, start.isoformat(), end.isoformat(),
            [v.vote_id for v in votes], sorted(gold.items()), cfg.max_iter,
            *(() if cfg.refit_method == "ds" else (cfg.refit_method,)),
        )  # fmt: skip
        out: list[Output] = []
        for code, annotator in enumerate(encoded.annotator_ids.tolist()):
            if n[code] < cfg.min_votes:
                continue
            state = BetaReliability(
                cfg.prior[0] + float(hits[code]), cfg.prior[1] + float(n[code] - hits[code])
            )
            confusion = np.asarray(model.confusion_[code], dtype=np.float64)
            out.append(
                self._updated(
                    annotator=str(annotator),
                    version=version,
                    method="dawid_skene",
                    accuracy=state.mean,
                    interval=state.interval(cfg.level),
                    n=int(n[code]),
                    id_parts=(digest, annotator),
                    occurred_at=occurred,
                    causation_id=cause.event_id if cause is not None else None,
                    classes=list(classes),
                    confusion=[[round(float(x), 6) for x in row] for row in confusion],
                    window_start=start,
                    window_end=end,
                )
            )
        return out

    def _forget(self, before: dt.datetime) -> None:
        """Drop votes older than the retention: they can no longer enter a refit (nor the
        consensus of items with no gold class the calibration)."""
        self.pairs.forget(before)
        for item in list(self.votes):
            kept = {k: v for k, v in self.votes[item].items() if v.envelope.occurred_at >= before}
            if kept:
                self.votes[item] = kept
            else:
                del self.votes[item]

    # events ------------------------------------------------------------------------------

    def _updated(
        self,
        *,
        annotator: str,
        version: str,
        method: str,
        accuracy: float,
        interval: tuple[float, float],
        n: int,
        id_parts: tuple[object, ...],
        occurred_at: dt.datetime,
        causation_id: str | None,
        **extra: Any,
    ) -> AnnotatorReliabilityUpdated:
        key = (annotator, version, method)
        previous = self.last.get(key)
        self.last[key] = accuracy
        return AnnotatorReliabilityUpdated.create(
            producer=PRODUCER,
            id_parts=(annotator, version, method, *id_parts),
            occurred_at=occurred_at,
            causation_id=causation_id,
            correlation_id=annotator,
            annotator_id=annotator,
            schema_version=version,
            method=method,
            accuracy=accuracy,
            accuracy_lower=min(interval[0], accuracy),
            accuracy_upper=max(interval[1], accuracy),
            previous_accuracy=previous,
            n_observations=n,
            **extra,
        )
