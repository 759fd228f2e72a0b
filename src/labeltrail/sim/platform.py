"""The simulated platform of the article: five classes, a crowd with a shared blind spot.

The crowd labels coded harassment (the ``coded_harassment`` slice) as non-toxic most of the
time; experts, who see the thread context, recognise it. That is the failure the article opens
with: high agreement, low gold accuracy.

Annotators follow the same model as :mod:`labeltrail.sim.crowd`
(:func:`~labeltrail.sim.crowd.spread_errors`); that module draws vote arrays for the
estimators' benchmarks, this one the events the folds replay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    AdjudicationRecorded,
    AnnotatorRegistered,
    CommentPosted,
    TaskAssigned,
    VoteCast,
)
from labeltrail.folds.base import Output, build_event
from labeltrail.folds.draws import draw
from labeltrail.ontology.schema import MODERATION_CLASSES, moderation_schema_v3
from labeltrail.sim.crowd import spread_errors
from labeltrail.sim.text import RichTextGenerator

__all__ = ["Platform", "PlatformConfig", "SimComment", "SimulatedAnnotators"]

CODED = "coded_harassment"
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "non-toxic": (
        "great video, thanks for sharing",
        "the part at 3:10 was so useful",
        "first time here, subscribed",
        "can you do one on the sequel?",
    ),
    "mild": ("this is kind of dumb lol", "meh, boring take", "worst edit ever, bro"),
    "harassment": ("nobody wants you here, loser", "log off forever, you clown"),
    "hate": ("people like [group] ruin everything", "[slur] don't belong on this site"),
    "threats": ("I know where you live", "watch your back after the stream"),
}
_CODED_TEXTS = (
    "you're really not what we said you'd be lol",
    "we all know what your kind is good for",
    "interesting how you people always show up",
    "say hi to the 88 club for us",
)
_CONTEXT_TEXTS = (
    "why is this creator even allowed to post",
    "everyone go check who this creator really is",
)
_N_CONTEXT = len(_CONTEXT_TEXTS) * 5
"""Thread-context comments posted first (the parents coded harassment replies to)."""


@dataclass(frozen=True)
class PlatformConfig:
    n_comments: int = 2_000
    n_crowd: int = 30
    n_experts: int = 3
    n_gold: int = 150
    pool_share: float = 0.8
    class_priors: tuple[float, ...] = (0.70, 0.15, 0.08, 0.05, 0.02)
    coded_share: float = 0.3
    """Share of harassment comments that are coded (the crowd's blind spot)."""
    crowd_accuracy: tuple[float, float] = (0.72, 0.95)
    crowd_blind_spot: float = 0.92
    """Probability a crowd annotator labels a coded comment non-toxic."""
    expert_accuracy: float = 0.96
    start: dt.datetime = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
    seed: int = 7
    days: float = 0.0
    """Event-time span of the comments from ``start``: 0 posts one about every 20 s (a dense
    history of hours); the demo spreads them over the article's 30 days. Votes and verdicts
    follow their comments, so their times spread with them. Truths, slices, gold set and
    every id are the same whatever the span."""

    @classmethod
    def sized(cls, n_comments: int, *, seed: int = 7, days: float = 0.0) -> PlatformConfig:
        """A platform of ``n_comments`` with a gold set of 7.5% (the default's ratio)."""
        return cls(
            n_comments=n_comments, n_gold=max(10, n_comments * 3 // 40), seed=seed, days=days
        )

    @classmethod
    def day30(cls, n_comments: int = 1_500, n_gold: int = 300) -> PlatformConfig:
        """The day-30 world: 12% harassment, half of it coded, a crowd that calls coded
        harassment non-toxic 85% of the time, rich texts."""
        return cls(
            n_comments=n_comments,
            n_gold=n_gold,
            class_priors=(0.66, 0.15, 0.12, 0.05, 0.02),
            coded_share=0.5,
            crowd_blind_spot=0.85,
            text_style="rich",
        )

    text_style: Literal["templates", "rich"] = "templates"
    """``rich`` composes varied texts (``sim/text.py``); truths, slices and gold are unchanged."""


@dataclass(frozen=True)
class SimComment:
    comment_id: str
    truth: str
    slice: str
    event: CommentPosted


@dataclass
class Platform:
    """Generates the world: annotators with confusion matrices, comments with hidden truth."""

    config: PlatformConfig = field(default_factory=PlatformConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        k = len(MODERATION_CLASSES)
        self.crowd_ids = [f"annotator_{i:03d}" for i in range(cfg.n_crowd)]
        self.expert_ids = [f"e-{i:02d}" for i in range(1, cfg.n_experts + 1)]
        self.confusion: dict[str, NDArray[np.float64]] = {}
        for a in self.crowd_ids:
            acc = rng.uniform(*cfg.crowd_accuracy)
            self.confusion[a] = _confusion(acc, k, rng)
        for e in self.expert_ids:
            self.confusion[e] = _confusion(cfg.expert_accuracy, k, rng)
        self.comments = self._comments(rng)
        by_id = {c.comment_id: c for c in self.comments}
        candidates = [c.comment_id for c in self.comments if c.slice != "thread_context"]
        n_gold = min(cfg.n_gold, len(candidates))
        gold_pick = rng.choice(len(candidates), size=n_gold, replace=False)
        self.gold_ids = sorted(candidates[i] for i in gold_pick)
        self.gold_set = frozenset(self.gold_ids)
        self.truth = {c.comment_id: c.truth for c in self.comments}
        self.slices = {c.comment_id: c.slice for c in self.comments}
        self._by_id = by_id

    def _comments(self, rng: np.random.Generator) -> list[SimComment]:
        cfg = self.config
        out: list[SimComment] = []
        context_ids: list[str] = []
        for i in range(_N_CONTEXT):
            cid = f"c-ctx{i:03d}"
            context_ids.append(cid)
            out.append(
                self._post(
                    cid,
                    _CONTEXT_TEXTS[i % len(_CONTEXT_TEXTS)],
                    "harassment",
                    "thread_context",
                    i,
                    [],
                    rng,
                )
            )
        truths = rng.choice(len(MODERATION_CLASSES), size=cfg.n_comments, p=cfg.class_priors)
        for i, t in enumerate(truths):
            truth = MODERATION_CLASSES[int(t)]
            coded = truth == "harassment" and rng.random() < cfg.coded_share
            if coded:
                text = str(rng.choice(_CODED_TEXTS))
                parents = [str(rng.choice(context_ids))]
                slice_ = CODED
            else:
                text = str(rng.choice(_TEMPLATES[truth]))
                parents = []
                slice_ = "explicit" if truth != "non-toxic" else "benign"
            if cfg.text_style == "rich":
                # Drawn apart from ``rng`` so truths, slices and the gold set stay the same.
                text = RichTextGenerator(cfg.seed).text(truth, coded, i)
            cid = f"c-{i:05x}"
            out.append(self._post(cid, text, truth, slice_, len(out), parents, rng))
        return out

    def _post(
        self,
        cid: str,
        text: str,
        truth: str,
        slice_: str,
        index: int,
        parents: list[str],
        rng: np.random.Generator,
    ) -> SimComment:
        cfg = self.config
        posts = cfg.n_comments + _N_CONTEXT
        scale = cfg.days * 86_400 / (20 * posts) if cfg.days else 1.0
        posted = cfg.start + dt.timedelta(
            seconds=int((index * 20 + int(rng.integers(0, 20))) * scale)
        )
        source = "pool" if rng.random() < cfg.pool_share else "product_log"
        event = CommentPosted.create(
            producer="sim.platform",
            occurred_at=posted,
            recorded_at=posted,
            id_parts=("sim", cfg.seed, cid),
            comment_id=cid,
            video_id=f"v-{3200 + index % 40}",
            author_hash=derive_id("author", cfg.seed, index % 500)[:12],
            text=text,
            posted_at=posted,
            source="pool" if slice_ == "thread_context" else source,
            parent_ids=parents,
            attributes={"language": "en", "slice": slice_},
        )
        return SimComment(cid, truth, slice_, event)

    def annotator_events(self) -> list[AnnotatorRegistered]:
        out: list[AnnotatorRegistered] = []
        bands = ("18-24", "25-34", "35-44", "45-54")
        for i, a in enumerate(self.crowd_ids + self.expert_ids):
            consented = i % 3 != 0
            out.append(
                AnnotatorRegistered.create(
                    producer="sim.platform",
                    occurred_at=self.config.start - dt.timedelta(days=1),
                    id_parts=("sim", self.config.seed, a),
                    annotator_id=a,
                    pool="expert" if a in self.expert_ids else "crowd",
                    locale=("en-US", "en-IN", "en-PH", "en-GB")[i % 4],
                    languages=["en"],
                    consented=consented,
                    demographics={"age_band": bands[i % 4]} if consented else {},
                )
            )
        return out

    def inputs(self) -> list[Event]:
        """Everything the world puts on the log, in order: the schema, the annotator pool,
        the gold set, then the comments."""
        return [
            moderation_schema_v3(),
            *self.annotator_events(),
            *self.gold_events(),
            *(c.event for c in self.comments),
        ]

    def gold_topic_events(self) -> list[CommentPosted | AdjudicationRecorded]:
        """The gold set as the ``gold`` topic carries it (copies of events on their own
        topics): each gold item's comment, then the verdicts."""
        comments: list[CommentPosted | AdjudicationRecorded] = [
            self._by_id[cid].event for cid in self.gold_ids
        ]
        return comments + list(self.gold_events())

    def gold_events(self) -> list[AdjudicationRecorded]:
        """The gold set: expert verdicts recorded before annotation starts."""
        out: list[AdjudicationRecorded] = []
        for i, cid in enumerate(self.gold_ids):
            expert = self.expert_ids[i % len(self.expert_ids)]
            out.append(
                AdjudicationRecorded.create(
                    producer="sim.platform",
                    occurred_at=self.config.start - dt.timedelta(hours=12),
                    id_parts=("gold", self.config.seed, cid),
                    adjudication_id=derive_id("gold", self.config.seed, cid),
                    request_id=f"gold:{self.config.seed}",
                    task_id=f"gold:{cid}",
                    comment_id=cid,
                    schema_version="v3",
                    reviewer_id=expert,
                    label=self.truth[cid],
                    confidence=1.0,
                    note="gold set",
                )
            )
        return out

    def answer(self, annotator: str, comment_id: str, salt: str) -> str:
        """What an annotator answers for a comment (deterministic in ``salt``)."""
        truth = self.truth[comment_id]
        blind = annotator in self.crowd_ids and self.slices[comment_id] == CODED
        if blind and draw("blind", salt) < self.config.crowd_blind_spot:
            return "non-toxic"
        row = self.confusion[annotator][MODERATION_CLASSES.index(truth)]
        u = draw("answer", salt)
        return MODERATION_CLASSES[min(int(np.searchsorted(np.cumsum(row), u)), len(row) - 1)]


def _confusion(accuracy: float, k: int, rng: np.random.Generator) -> NDArray[np.float64]:
    shares = rng.dirichlet(np.ones(k - 1), size=k)
    return spread_errors(np.full(k, accuracy), shares)


@dataclass
class SimulatedAnnotators:
    """Annotation frontends for every simulated annotator: they read task topics and vote."""

    platform: Platform
    name: str = "sim.annotators"
    inputs: tuple[str, ...] = ("tasks.crowd", "tasks.expert")
    unanswered: frozenset[str] = frozenset()
    """Comments these frontends never answer (a labeling budget smaller than the pool)."""

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        if not isinstance(event, TaskAssigned) or event.comment_id in self.unanswered:
            return []
        p = self.platform
        salt = event.assignment_id
        label = p.answer(event.annotator_id, event.comment_id, salt)
        seconds = 4 + 30 * draw("time", salt)
        occurred = event.envelope.occurred_at + dt.timedelta(minutes=5 + 120 * draw("lag", salt))
        if event.pool == "expert":
            return [
                AdjudicationRecorded.create(
                    producer="sim.expert-frontend",
                    occurred_at=occurred + dt.timedelta(hours=18),
                    id_parts=("adjudication", salt),
                    adjudication_id=derive_id("adjudication", salt),
                    request_id=event.request_id or "",
                    task_id=event.task_id,
                    comment_id=event.comment_id,
                    schema_version=event.schema_version,
                    reviewer_id=event.annotator_id,
                    label=label,
                    confidence=round(0.85 + 0.14 * draw("conf", salt), 2),
                    note=(
                        "common dog-whistle pattern, escalate"
                        if p.slices[event.comment_id] == CODED
                        else "reviewed with context"
                    ),
                    context_seen=list(p._by_id[event.comment_id].event.parent_ids),
                )
            ]
        return [
            build_event(
                VoteCast,
                event_id=derive_id("VoteCast", "vote", salt),
                producer="sim.crowd-frontend",
                occurred_at=occurred,
                causation_id=None,
                correlation_id=None,
                vote_id=derive_id("vote", salt),
                task_id=event.task_id,
                comment_id=event.comment_id,
                annotator_id=event.annotator_id,
                schema_version=event.schema_version,
                label=label,
                answers=_answers(label, p.slices[event.comment_id]),
                confidence=round(0.5 + 0.5 * draw("conf", salt), 2),
                time_spent_ms=int(seconds * 1000),
                prelabel_shown=event.prelabel is not None,
            )
        ]


def _answers(label: str, slice_: str) -> dict[str, str]:
    return {
        "q1_slur": "yes" if label == "hate" else "no",
        "q2_targets_group": "yes" if label in ("hate", "harassment") else "no",
        "q3_threat": "yes" if label == "threats" else "no",
        "q4_needs_context": "yes" if slice_ == CODED else "no",
    }
