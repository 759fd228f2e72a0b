"""The article's day-30 outcome, in simulation, through the real pipeline folds.

The simulated platform runs through the scorer, tasking, annotator, consensus and label folds;
v1 trains on day 0's labels, the blind spot is found and its slice relabeled by experts through
the same folds, v2 trains on day 14's labels, and both score the gold set (never trained on)
through :class:`~labeltrail.folds.scorer.ScorerFold`. The steps and the measured figures:
``docs/learning.md`` ("Day 30").
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from labeltrail.events.base import Event
from labeltrail.events.models import (
    AdjudicationRequested,
    CommentPosted,
    CommentScored,
    LabelCommitted,
    ModelPublished,
    VoteCast,
)
from labeltrail.events.topics import topic_for
from labeltrail.folds.base import Fold
from labeltrail.folds.consensus import ConsensusFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.replay import Replay
from labeltrail.folds.scorer import ScorerFold
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from labeltrail.learning.data import TrainingSet, training_set_from_labels
from labeltrail.learning.features import HashingFeaturizer
from labeltrail.learning.loop import flag_blind_spots, relabel_requests
from labeltrail.learning.metrics import SliceMetrics, evaluate_by_slice, flatten_metrics
from labeltrail.learning.publish import artifact_path, model_published
from labeltrail.ml.train_job import onnx_scorer
from labeltrail.ml.training import SoftLabelTrainer
from labeltrail.ontology.schema import MODERATION_CLASSES, moderation_schema_v3
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer
from labeltrail.sim.platform import CODED
from labeltrail.sim.scenario_weak import weak_training_set

__all__ = [
    "TRAINER_TOPICS",
    "Day30Config",
    "Day30Log",
    "Day30Result",
    "ResumableReplay",
    "day30_log",
    "run_day30",
    "team_relabel",
    "topic_of",
]


class ResumableReplay(Replay):
    """A :class:`Replay` whose ``run`` resumes where the previous call stopped.

    ``Replay.run`` starts every fold from offset 0 on each call; a loop that appends new facts
    between runs (relabel requests, a new model) must not re-feed what was already read.
    """

    _cursors: dict[tuple[str, str], int]

    def run(self) -> None:
        cursors = self.__dict__.setdefault("_cursors", {})
        while True:
            if not self._step(cursors):
                drained = False
                for fold in self.folds:
                    drain = getattr(fold, "drain", None)
                    for out in drain() if drain is not None else []:
                        drained = True
                        self._emit(fold, out, None)
                if not drained:
                    return


def topic_of(event: Event) -> str:
    """The in-memory topic (suffix) of an event."""
    pool, route = getattr(event, "pool", None), getattr(event, "route", None)
    name = topic_for(type(event).__name__, "x", pool=pool, route=route)
    return name.removeprefix("x.")


@dataclass(frozen=True)
class Day30Config:
    """The simulated world and the trainer; the defaults run in seconds on two cores.

    The world is pinned (``PlatformConfig.day30``, not ``PlatformConfig``'s defaults, which
    other scenarios tune): 12% harassment, half of it coded, a crowd that calls coded
    harassment non-toxic 85% of the time.
    """

    platform: PlatformConfig = field(default_factory=PlatformConfig.day30)
    n_buckets: int = 2**16
    dim: int = 32
    hidden: int = 32
    epochs: int = 12
    batch_size: int = 32
    seed: int = 0
    relabel: bool = True
    """Send the flagged slice's crowd-only labels to experts (the article's adjudication)."""
    soft_labels: Literal["pipeline", "multisource"] = "pipeline"
    """v2's targets: the committed labels, or the multi-source label model over crowd and
    expert votes, labeling functions and v1's predictions (the article's day-14 label model)."""


@dataclass(frozen=True)
class Day30Result:
    before: dict[str, SliceMetrics]
    after: dict[str, SliceMetrics]
    flagged: list[str]
    relabel_requests: int
    v1: ModelPublished
    v2: ModelPublished
    train_sizes: tuple[int, int]
    routes: dict[str, dict[str, int]]
    train_seconds: tuple[float, float]
    seconds: float

    def recall(self, slice_: str = CODED, cls: str = "harassment") -> tuple[float, float]:
        """(v1, v2) recall of ``cls`` on ``slice_`` against gold."""
        return self.before[slice_].recall.get(cls, 0.0), self.after[slice_].recall.get(cls, 0.0)


def _train(
    cfg: Day30Config, ts: TrainingSet, models_dir: Path, version: str
) -> tuple[SoftLabelTrainer, Path]:
    featurizer = HashingFeaturizer(n_buckets=cfg.n_buckets, seed=cfg.seed)
    trainer = SoftLabelTrainer(
        MODERATION_CLASSES,
        featurizer=featurizer,
        dim=cfg.dim,
        hidden=cfg.hidden,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
    ).fit(list(ts.texts), ts.targets, ts.weights)
    metadata = {"export_id": ts.export_id, "export_hash": ts.content_hash, "rows": len(ts)}
    path = trainer.export_onnx(artifact_path(models_dir, version), metadata=metadata)
    return trainer, path


def _score_gold(replay: Replay, gold: list[CommentPosted], model: ModelPublished) -> np.ndarray:
    """Publish ``model`` to the scorer's log, post the gold comments, read their scores."""
    before = len(replay.log.get("scores", []))
    replay.append([model, *gold])
    replay.run()
    scored = [e for e in replay.log["scores"][before:] if isinstance(e, CommentScored)]
    if [s.comment_id for s in scored] != [c.comment_id for c in gold] or any(
        s.model_version != model.model_version for s in scored
    ):
        raise RuntimeError(f"scorer fold did not score the gold set with {model.model_version}")
    return np.array([s.probabilities for s in scored])


def _world(cfg: Day30Config) -> tuple[Platform, ResumableReplay, dt.datetime]:
    """The platform's comments run through the folds; day 0 ends 3 hours after the last post."""
    platform = Platform(cfg.platform)
    folds: list[Fold] = [
        SimulatedScorer(platform),
        TaskingFold(TaskingConfig(gold_set_size=platform.config.n_gold)),
        SimulatedAnnotators(platform),
        ConsensusFold(),
        LabelsFold(),
    ]
    pipeline = ResumableReplay(folds, topic_of)
    pipeline.append([moderation_schema_v3(), *platform.annotator_events()])
    pipeline.append(platform.gold_events())
    pipeline.append([c.event for c in platform.comments])
    pipeline.run()
    day0 = max(c.event.posted_at for c in platform.comments) + dt.timedelta(hours=3)
    return platform, pipeline, day0


def _labels(pipeline: Replay) -> list[LabelCommitted]:
    return [e for e in pipeline.log.get("labels", []) if isinstance(e, LabelCommitted)]


def team_relabel(
    cfg: Day30Config,
    platform: Platform,
    events: Iterable[Event],
    *,
    flagged: Iterable[str] | None = None,
) -> tuple[list[str], list[AdjudicationRequested]]:
    """The team's decision on the log so far (``events``: its votes and labels): the slices
    ``flagged`` (the live run passes the iaa stage's blind-spot alerts), or, when None, those
    :func:`flag_blind_spots` finds from crowd votes against expert verdicts (honeypot votes left
    out); and the requests that send their crowd-only labels to experts (none without
    ``cfg.relabel``). In memory here, on the services in :mod:`labeltrail.sim.scenario_live`."""
    events = list(events)
    labels = [e for e in events if isinstance(e, LabelCommitted)]
    if flagged is None:
        gold_ids = platform.gold_set
        votes = [v for v in events if isinstance(v, VoteCast) and v.comment_id not in gold_ids]
        classes = list(MODERATION_CLASSES)
        reports = flag_blind_spots(votes, labels, dict(platform.slices), classes)
        flagged = (str(r.slice) for r in reports if r.flagged)
    flagged = sorted(set(flagged))
    requests = relabel_requests(labels, dict(platform.slices), flagged) if cfg.relabel else []
    return flagged, requests


def _relabel(
    cfg: Day30Config, platform: Platform, pipeline: ResumableReplay
) -> tuple[list[str], list[AdjudicationRequested]]:
    """The team's relabel decision, its requests served by the folds."""
    log = pipeline.log
    flagged, requests = team_relabel(cfg, platform, [*log.get("votes", []), *log.get("labels", [])])
    if cfg.relabel:
        pipeline.append(requests)
        pipeline.run()
    return flagged, requests


TRAINER_TOPICS = ("comments", "adjudications", "votes", "labels")
"""What a trainer service reads of the day-30 world (besides exports)."""


@dataclass(frozen=True)
class Day30Log:
    """The day-30 world as a trainer reads it, in two parts.

    ``day0``: the comments, the gold set, the votes and adjudications of the first run, and
    the labels committed by the end of day 0 (what v1 trains on). ``later``: the labels
    committed after day 0 and everything the experts' relabel of the flagged slice added (what
    v2 adds). Each part is in log order per topic.
    """

    day0: list[Event]
    later: list[Event]
    flagged: list[str]
    gold_ids: frozenset[str]
    slices: dict[str, str]


def day30_log(config: Day30Config | None = None) -> Day30Log:
    """Simulate the world of :func:`run_day30` and split its log at day 0 (no training)."""
    cfg = config or Day30Config()
    platform, pipeline, day0 = _world(cfg)
    first = {t: list(pipeline.log.get(t, [])) for t in TRAINER_TOPICS}
    flagged, _ = _relabel(cfg, platform, pipeline)
    early: list[Event] = []
    later: list[Event] = []
    for topic in TRAINER_TOPICS:
        known = first[topic]
        for event in known:
            late = topic == "labels" and event.envelope.occurred_at > day0
            (later if late else early).append(event)
        later.extend(pipeline.log.get(topic, [])[len(known) :])
    return Day30Log(early, later, flagged, frozenset(platform.gold_ids), dict(platform.slices))


def run_day30(config: Day30Config | None = None, *, models_dir: Path) -> Day30Result:
    """Run the whole loop; ``models_dir`` receives both ONNX artifacts."""
    cfg = config or Day30Config()
    started = time.perf_counter()
    platform, pipeline, day0 = _world(cfg)
    classes = list(MODERATION_CLASSES)
    texts = {c.comment_id: c.event.text for c in platform.comments}
    slice_of = dict(platform.slices)
    gold_ids = set(platform.gold_ids)

    ts1 = training_set_from_labels(_labels(pipeline), texts, classes, as_of=day0, exclude=gold_ids)
    v1_trainer, _ = _train(cfg, ts1, models_dir, "day0-v1")

    flagged, requests = _relabel(cfg, platform, pipeline)
    ts2 = training_set_from_labels(_labels(pipeline), texts, classes, exclude=gold_ids)
    if cfg.soft_labels == "multisource":
        ts2 = weak_training_set(
            pipeline.log, texts, ts2, v1_trainer, slice_of=slice_of, flagged=flagged
        )
    v2_trainer, _ = _train(cfg, ts2, models_dir, "day14-v2")

    gold = [c.event for c in platform.comments if c.comment_id in gold_ids]
    truth = [platform.truth[c.comment_id] for c in gold]
    gold_slices = [slice_of[c.comment_id] for c in gold]
    scorer = ResumableReplay([ScorerFold(load=onnx_scorer, models_dir=models_dir)], topic_of)
    results: list[dict[str, SliceMetrics]] = []
    published: list[ModelPublished] = []
    for version, ts in (("day0-v1", ts1), ("day14-v2", ts2)):
        # Metrics go in the event, so the first record is a draft used only to score.
        draft = model_published(
            models_dir,
            version,
            classes,
            export_id=ts.export_id,
            export_hash=ts.content_hash,
            metrics={},
        )
        probs = _score_gold(scorer, gold, draft)
        metrics = evaluate_by_slice(truth, probs, gold_slices, classes)
        results.append(metrics)
        published.append(draft.model_copy(update={"metrics": flatten_metrics(metrics)}))
    routes = {
        name: dict(
            Counter(ts.routes[i] for i in range(len(ts)) if slice_of[ts.comment_ids[i]] == CODED)
        )
        for name, ts in (("v1", ts1), ("v2", ts2))
    }
    return Day30Result(
        before=results[0],
        after=results[1],
        flagged=flagged,
        relabel_requests=len(requests),
        v1=published[0],
        v2=published[1],
        train_sizes=(len(ts1), len(ts2)),
        routes=routes,
        train_seconds=(v1_trainer.fit_seconds_, v2_trainer.fit_seconds_),
        seconds=time.perf_counter() - started,
    )
