"""Active learning as a service: every N new labels or T minutes, the next batch to label.

The fold keeps the scored, unlabeled pool: each comment's scores per published model
(``CommentScored`` on ``scores``) and an n-gram sketch of its text (``CommentPosted``), less
the comments that are labelled (``LabelCommitted``), tasked (``TaskCreated``) or requested
already (``TaskRequested``, its own output read back), and less those the scorer routed
``annotate`` (tasking tasks them on the score itself). Every ``every_labels`` new live labels,
or once ``every_minutes`` of *event time* have passed since the last batch (the latest event
time read: no wall clock, so a replay of the same input picks the same batches), it scores the
pool with the configured strategy (:mod:`labeltrail.learning.active`: least confidence,
margin, entropy on the latest model's probabilities, or query-by-committee over the scores of
every published model that scored the comment), picks a diverse batch
(:func:`~labeltrail.learning.active.select_batch` on the text sketches) and emits one
``TaskRequested`` (reason ``active_learning``) per pick, saying why: strategy, value, rank,
batch, trigger, models. Tasking turns each into a crowd task.

A budget caps each event day (UTC, of the triggering event): at most ``tasks_per_day``
requests and ``usd_per_day`` at ``cost_per_task_usd`` each; a batch is cut to what is left.
Requests read back from the log are charged once (by request id), so after a restart the
day's spending includes what was already requested.

Bad input (each ``Rejected``, dead-lettered by the runner with its reason): a score whose
probabilities do not match its classes, are not probabilities or do not sum to 1, or that
names a class the current label schema does not have. Scores read before any schema is
published are held, and rejected if still held at drain.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.crypto import Keyring, reveal
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    CommentPosted,
    CommentScored,
    LabelCommitted,
    LabelSchemaPublished,
    SamplingStrategy,
    TaskCreated,
    TaskRequested,
)
from labeltrail.folds.base import Output, Rejected, build_event
from labeltrail.learning.active import committee_disagreement, select_batch, sketch, uncertainty
from labeltrail.learning.features import HashingFeaturizer

__all__ = ["ACTIVE_LEARNING", "PRODUCER", "ActiveConfig", "ActiveFold", "score_problem"]

PRODUCER = "active"
ACTIVE_LEARNING = "active_learning"
"""The reason of the task requests this fold makes (and of the crowd tasks made of them)."""

_SUM_TOLERANCE = 1e-3
"""How far a score's probabilities may sum from 1 (rounding in the model's runtime)."""


@dataclass(frozen=True)
class ActiveConfig:
    """The service's policy (``stages.make_active`` builds it from the ``active`` settings)."""

    strategy: SamplingStrategy = "margin"
    batch_size: int = 50
    diversity: float = 0.5
    """The weight of distance to what is already picked against uncertainty (0: none)."""
    every_labels: int = 100
    """A batch per this many new live labels (0: not on labels)."""
    every_minutes: float = 60.0
    """A batch once this many minutes of event time have passed since the last (0: never)."""
    tasks_per_day: int = 500
    usd_per_day: float = 100.0
    cost_per_task_usd: float = 0.12
    """What one requested task costs the day's budget (crowd cost per vote x redundancy)."""
    committee: int = 3
    """qbc: a comment takes part once this many published models have scored it (>= 3)."""
    candidate_factor: int = 10
    """Diversity chooses among the ``candidate_factor x batch`` most uncertain comments."""
    seed: int = 0
    """Salts the text sketches' projection."""

    def __post_init__(self) -> None:
        if self.strategy == "qbc" and self.committee < 3:
            raise ValueError("query-by-committee needs a committee of at least 3 models")
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError("diversity must be in [0, 1]")


def score_problem(scored: CommentScored, classes: Sequence[str] | None) -> str | None:
    """Why ``scored`` cannot be used (None when it can): its probabilities and classes
    disagree, are not a distribution, or name a class outside ``classes`` (the current label
    schema's; None: not checked)."""
    probs, names = scored.probabilities, scored.classes
    if len(probs) != len(names) or len(names) < 2:
        return f"{len(probs)} probabilities for {len(names)} classes"
    if len(set(names)) != len(names):
        return f"classes repeat: {names}"
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probs):
        return "probabilities outside [0, 1]"
    if abs(math.fsum(probs) - 1.0) > _SUM_TOLERANCE:
        return f"probabilities sum to {math.fsum(probs):.4f}, not 1"
    unknown = [c for c in names if classes is not None and c not in classes]
    if unknown:
        return f"unknown class {unknown[0]!r} (schema classes: {', '.join(classes or [])})"
    return None


@dataclass
class _Candidate:
    """A pooled comment: its scores by model version (probabilities in the schema's class
    order) and the latest score read, whose event a request names as its cause."""

    scores: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    latest: CommentScored | None = None


@dataclass
class ActiveFold:
    """State: the schema's classes, the pool (scores and sketches), what is done, the trigger
    counters and each event day's spending."""

    accepts: ClassVar[frozenset[str]] = frozenset(
        {
            "LabelSchemaPublished",
            "CommentPosted",
            "CommentScored",
            "LabelCommitted",
            "TaskCreated",
            "TaskRequested",
        }
    )
    config: ActiveConfig = field(default_factory=ActiveConfig)
    name: str = "active"
    inputs: tuple[str, ...] = ("schemas", "comments", "scores", "labels", "tasks", "requests")
    keyring: Keyring | None = None
    """Opens sealed comment text for the sketches (``docs/erasure.md``)."""
    classes: list[str] | None = None
    """The current label schema's classes: scores are checked and ordered by them."""
    pool: dict[str, _Candidate] = field(default_factory=dict)
    sketches: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    """Comments labelled, tasked or requested: out of the pool for good."""
    held: list[CommentScored] = field(default_factory=list)
    """Scores read before any schema."""
    labels_since: int = 0
    anchor: dt.datetime | None = None
    """When the time trigger last fired (or the first event time read)."""
    watermark: dt.datetime | None = None
    """The latest event time read."""
    spent: dict[dt.date, tuple[int, float]] = field(default_factory=dict)
    """Tasks and USD requested per event day."""
    charged: set[str] = field(default_factory=set)
    """Request ids charged to a day (a request read back is not charged twice)."""
    exhausted: dt.date | None = None
    """The last day a trigger found no budget left (``held_reason`` says so)."""
    featurizer: HashingFeaturizer = field(default_factory=lambda: HashingFeaturizer(2**16))

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        out: list[Output] = []
        match event:
            case LabelSchemaPublished():
                self.classes = list(event.classes)
                held, self.held = self.held, []
                for scored in held:
                    out += self._on_scored(scored)
            case CommentPosted():
                if event.comment_id not in self.done and event.comment_id not in self.sketches:
                    self.sketches[event.comment_id] = self._sketch(event)
            case CommentScored():
                out += self._on_scored(event)
            case LabelCommitted():
                if event.run_id is None:
                    self._finish(event.comment_id)
                    self.labels_since += 1
            case TaskCreated():
                self._finish(event.comment_id)
            case TaskRequested():
                self._finish(event.comment_id)
                self._charge(event)
            case _:
                return []
        return out + self._tick(event)

    def drain(self) -> list[Output]:
        held, self.held = self.held, []
        return [
            Rejected(f"score of {s.comment_id} ({s.model_version}): no label schema published")
            for s in held
        ]

    def held_reason(self) -> str | None:
        parts = []
        if self.held:
            parts.append(f"holding {len(self.held)} score(s): no label schema published yet")
        if self.exhausted is not None:
            parts.append(f"the budget of {self.exhausted.isoformat()} is spent")
        if self.config.strategy == "qbc" and self.pool and not self._eligible():
            parts.append(
                f"{len(self.pool)} pooled comment(s), none scored by {self.config.committee} "
                "models yet (qbc)"
            )
        return "; ".join(parts) or None

    # the pool ----------------------------------------------------------------------------

    def _sketch(self, comment: CommentPosted) -> NDArray[np.float32]:
        text = comment.text if self.keyring is None else reveal(comment.text, self.keyring)
        ids = self.featurizer.transform([text])
        row: NDArray[np.float32] = sketch(ids, seed=self.config.seed)[0].astype(np.float32)
        return row

    def _on_scored(self, scored: CommentScored) -> list[Output]:
        if self.classes is None:
            self.held.append(scored)
            return []
        problem = score_problem(scored, self.classes)
        if problem is not None:
            return [Rejected(f"score of {scored.comment_id} ({scored.model_version}): {problem}")]
        if scored.comment_id in self.done:
            return []
        if scored.route == "annotate":
            # Tasking makes a task of this score itself: not for active learning to pick.
            self._finish(scored.comment_id)
            return []
        by_class = dict(zip(scored.classes, scored.probabilities, strict=True))
        probs = np.array([by_class.get(c, 0.0) for c in self.classes], dtype=np.float64)
        candidate = self.pool.setdefault(scored.comment_id, _Candidate())
        candidate.scores[scored.model_version] = probs
        candidate.latest = scored
        return []

    def _finish(self, comment_id: str) -> None:
        self.done.add(comment_id)
        self.pool.pop(comment_id, None)
        self.sketches.pop(comment_id, None)

    def _charge(self, request: TaskRequested) -> None:
        if request.request_id in self.charged:
            return
        self.charged.add(request.request_id)
        day = request.envelope.occurred_at.date()
        tasks, usd = self.spent.get(day, (0, 0.0))
        self.spent[day] = (tasks + 1, usd + request.cost_usd)

    # the trigger and the batch -----------------------------------------------------------

    def _tick(self, event: Event) -> list[Output]:
        at = event.envelope.occurred_at
        if self.watermark is None or at > self.watermark:
            self.watermark = at
        if self.anchor is None:
            self.anchor = at
        cfg = self.config
        trigger: Literal["labels", "time"]
        if cfg.every_labels and self.labels_since >= cfg.every_labels:
            trigger = "labels"
        elif cfg.every_minutes and self.watermark - self.anchor >= dt.timedelta(
            minutes=cfg.every_minutes
        ):
            trigger = "time"
        else:
            return []
        self.labels_since = 0
        self.anchor = self.watermark
        return self._batch(event, trigger)

    def _room(self, day: dt.date) -> int:
        """How many tasks the day's budget still allows."""
        cfg = self.config
        tasks, usd = self.spent.get(day, (0, 0.0))
        room = cfg.tasks_per_day - tasks
        if cfg.cost_per_task_usd > 0:
            room = min(room, math.floor((cfg.usd_per_day - usd) / cfg.cost_per_task_usd + 1e-9))
        return max(0, min(cfg.batch_size, room))

    def _eligible(self) -> list[str]:
        need = self.config.committee if self.config.strategy == "qbc" else 1
        return sorted(
            cid
            for cid, c in self.pool.items()
            if cid in self.sketches and len(c.scores) >= need and c.latest is not None
        )

    def _values(self, ids: list[str]) -> NDArray[np.float64]:
        """The strategy's value per comment: higher, more worth labelling."""
        strategy = self.config.strategy
        if strategy != "qbc":
            latest = [self.pool[c].scores[self._latest_model(c)] for c in ids]
            return uncertainty(strategy, np.stack(latest))
        values = np.empty(len(ids), dtype=np.float64)
        by_size: dict[int, list[int]] = {}
        for i, cid in enumerate(ids):
            by_size.setdefault(len(self.pool[cid].scores), []).append(i)
        for _, members in sorted(by_size.items()):
            committee = np.stack(
                [
                    np.stack(
                        [self.pool[ids[i]].scores[m] for m in sorted(self.pool[ids[i]].scores)]
                    )
                    for i in members
                ],
                axis=1,
            )  # (n_models, n_items, n_classes)
            values[members] = committee_disagreement(committee)
        return values

    def _latest_model(self, comment_id: str) -> str:
        latest = self.pool[comment_id].latest
        assert latest is not None
        return latest.model_version

    def _batch(self, cause: Event, trigger: Literal["labels", "time"]) -> list[Output]:
        day = cause.envelope.occurred_at.date()
        room = self._room(day)
        ids = self._eligible()
        if room == 0:
            self.exhausted = day if ids else self.exhausted
            return []
        if not ids:
            return []
        cfg = self.config
        values = self._values(ids)
        embeddings = np.stack([self.sketches[c] for c in ids]).astype(np.float64)
        picked = select_batch(
            values,
            room,
            embeddings=embeddings,
            diversity=cfg.diversity,
            candidate_factor=cfg.candidate_factor,
        )
        batch_id = derive_id("active-batch", cause.event_id, trigger)
        out: list[Output] = []
        for rank, index in enumerate(picked, start=1):
            cid = ids[int(index)]
            candidate = self.pool[cid]
            assert candidate.latest is not None
            models = (
                sorted(candidate.scores)
                if cfg.strategy == "qbc"
                else [candidate.latest.model_version]
            )
            request = self._request(
                candidate.latest, cause, batch_id, trigger, rank, len(picked), values[index], models
            )
            self._finish(cid)
            self._charge(request)
            out.append(request)
        return out

    def _request(
        self,
        scored: CommentScored,
        cause: Event,
        batch_id: str,
        trigger: Literal["labels", "time"],
        rank: int,
        size: int,
        value: float,
        models: list[str],
    ) -> TaskRequested:
        """The request for ``scored``'s comment: at the trigger's event time, caused by the
        score it was picked on."""
        request_id = derive_id("active-request", batch_id, scored.comment_id)
        return build_event(
            TaskRequested,
            event_id=derive_id("TaskRequested", request_id),
            producer=PRODUCER,
            occurred_at=cause.envelope.occurred_at,
            causation_id=scored.event_id,
            correlation_id=scored.comment_id,
            request_id=request_id,
            comment_id=scored.comment_id,
            reason=ACTIVE_LEARNING,
            strategy=self.config.strategy,
            score=float(value),
            rank=rank,
            batch_id=batch_id,
            batch_size=size,
            trigger=trigger,
            model_versions=models,
            diversity=self.config.diversity,
            cost_usd=self.config.cost_per_task_usd,
        )
