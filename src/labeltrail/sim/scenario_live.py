"""The article's day-30 loop live: the stage services on the broker, only the world simulated.

:func:`run_day30_live` runs every registered stage (:data:`labeltrail.stages.STAGES`: tasking,
consensus, labels, questions, reliability, iaa, feedback, the ONNX scorer, the torch trainer,
active, lf, weak, and any stage registered later) with
:class:`~labeltrail.kafka.runner.StageRunner`, as the demo does, on the real broker, and
projects into ClickHouse. The simulation produces only what people outside the pipeline
produce:

- the platform: the label schema, the annotator registry, the gold set and the comments
  (:func:`labeltrail.sim.demo.seed_platform`);
- the model the platform ran before its first trained one (:class:`SimulatedScorer`, the
  first day's "publish your current model"), retired at the end of day 0;
- the crowd's and the experts' frontends (:class:`SimulatedAnnotators`, one runner per pool:
  the experts answer after day 0, as their verdicts come 18 hours after the crowd's votes);
- production feedback on the live labels after day 0 (:func:`production_feedback`, through
  ``labeltrail feedback ingest``'s parser): viewers flag coded replies the crowd called
  non-toxic, moderators override some, and a few viewers flag benign comments;
- the team's three decisions: an export at the end of day 0 and one after the relabel
  (``labeltrail export create``'s code path, from ClickHouse), and the relabel of the slice
  the iaa stage's blind-spot alert names (high agreement, low gold accuracy; the requests are
  :func:`~labeltrail.learning.loop.relabel_requests` of the labels read back from the log).

The trainer trains v1 and v2 from those exports and publishes them through its gate (with
``weak=True``, the multi-source v2: ``trainer.weak_labels = fill`` and v2's export is
``labeltrail export create --run weak``'s, so the weak stage's labels fill the comments no
human label covers); the scorer hot-swaps v1 in, scores every comment it held, and its
low-margin scores become crowd tasks; v2 is swapped in the same way. How it compares with the
in-memory run (:func:`labeltrail.sim.scenario.run_day30`): ``docs/learning.md`` ("Live, on
the services").
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labeltrail.clickhouse.client import Client, apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    CommentScored,
    ExportCreated,
    FeedbackReceived,
    IaaWindowClosed,
    LabelCommitted,
    ModelPublished,
    ModelRefused,
    TaskCreated,
)
from labeltrail.events.topics import WEAK_RUN, topic_name
from labeltrail.exceptions import LabeltrailError
from labeltrail.export.build import create_export, export_rows_sql, read_parquet_rows
from labeltrail.feedback import parse_feedback
from labeltrail.folds.draws import draw
from labeltrail.folds.export_rows import RUN_PARAM
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.log import read_kinds
from labeltrail.kafka.producer import EventProducer
from labeltrail.learning.metrics import SliceMetrics, evaluate_by_slice
from labeltrail.ontology.schema import MODERATION_CLASSES
from labeltrail.sim import Platform, SimulatedAnnotators, SimulatedScorer
from labeltrail.sim.demo import StageThreads, replay_settings, seed_platform
from labeltrail.sim.platform import CODED
from labeltrail.sim.scenario import Day30Config, team_relabel
from labeltrail.stages import STAGES, make

__all__ = [
    "GATE_TOLERANCE",
    "REQUIRED",
    "LiveDay30Result",
    "live_settings",
    "production_feedback",
    "run_day30_live",
    "unanswered",
]


SCHEMA_VERSION = "v3"

GATE_TOLERANCE = 0.05
"""The least tolerance of the live run's publish gate: a slice may lose this much gold
accuracy (the in-memory test's allowance for the benign and explicit slices)."""

REQUIRED = ("tasking", "consensus", "labels", "scorer", "trainer")
"""The stages the loop cannot run without: the others may be left out (``without``)."""


@dataclass(frozen=True)
class LiveDay30Result:
    """What the live loop published and what the services did on the way."""

    v1: ModelPublished
    v2: ModelPublished | ModelRefused
    exports: tuple[ExportCreated, ExportCreated]
    flagged: list[str]
    """The slices the team relabeled: the iaa stage's blind-spot alerts (its own analysis,
    :func:`~labeltrail.learning.loop.flag_blind_spots`, when the iaa stage is left out)."""
    blind_spot_alerts: list[IaaWindowClosed]
    relabel_requests: int
    feedback: dict[str, int]
    """Production feedback produced after day 0, by kind."""
    v1_gold: dict[str, SliceMetrics]
    """The gold set as the scorer service scored it with v1 (its CommentScored events)."""
    v1_scored: int
    """Comments the scorer service scored with v1 (every comment it held since day 0)."""
    v1_tasks: int
    """Crowd tasks tasking made from v1's scores (margin below the threshold)."""
    train_rows: tuple[int, int]
    """Rows of each export the trainer trains on: human-made labels of comments outside the
    gold set (the in-memory run's ``train_sizes``)."""
    train_sources: tuple[dict[str, int], dict[str, int]]
    """Rows v1 and v2 trained on by source (``human``, ``weak``, ``machine``), as the trainer
    counted them (its ``train.rows.*`` metrics)."""
    weak: bool
    """v2 is the multi-source one: weak labels fill the comments no human label covers."""
    weak_labels: int
    """Weak labels the weak stage committed by the end of the run."""
    unanswered: int
    """Non-gold comments the crowd never answered (``crowd_share`` below 1)."""
    routes: tuple[dict[str, int], dict[str, int]]
    """Routes of the blind-spot slice's rows among them: crowd consensus at day 0, expert
    adjudication after."""
    expert_requests: dict[str, int]
    """Adjudication requests on the log by producer: ``consensus`` (low agreement),
    ``questions`` (a needs-context majority), ``learning.loop`` (the team's relabel), ..."""
    stages: tuple[str, ...]
    stage_stats: dict[str, dict[str, int]]
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each phase, by name."""

    def recall(self, slice_: str = CODED, cls: str = "harassment") -> tuple[float, float]:
        """(v1, v2) recall of ``cls`` on ``slice_`` against gold, from the published metrics
        (the trainer's gold evaluation; a refused v2 has its metrics too)."""
        key = f"gold.{slice_}.recall.{cls}"
        return self.v1.metrics.get(key, 0.0), self.v2.metrics.get(key, 0.0)


def live_settings(
    settings: Settings, platform: Platform, cfg: Day30Config, models: Path, *, weak: bool = False
) -> Settings:
    """``settings`` for the live day-30 run: the demo's replay settings (tasking waits for the
    whole simulated pool, so it assigns as in memory), the trainer's model as
    :class:`Day30Config` shapes it, trained only on the exports the team makes, ``models`` for
    the artifacts, and a publish gate of at least :data:`GATE_TOLERANCE`; ``weak``: the
    trainer fills with weak labels (``trainer.weak_labels = fill``)."""
    base = replay_settings(settings, platform)
    trainer = base.trainer.model_copy(
        update={
            "every_labels": 0,
            "n_buckets": cfg.n_buckets,
            "dim": cfg.dim,
            "hidden": cfg.hidden,
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "schema_version": SCHEMA_VERSION,
            "weak_labels": "fill" if weak else "off",
        }
    )
    # The world's gold slices are small (78 explicit items at 1,000 comments: one item is
    # 0.013), so the gate allows the in-memory test's 0.05 (docs/learning.md, "Live").
    tolerance = max(base.learning.gate_tolerance, GATE_TOLERANCE)
    learning = base.learning.model_copy(update={"models_dir": models, "gate_tolerance": tolerance})
    return base.model_copy(update={"trainer": trainer, "learning": learning})


def production_feedback(platform: Platform, labels: Iterable[Event]) -> list[FeedbackReceived]:
    """What production says about the live ``labels`` in the two days after each was committed,
    as ``labeltrail feedback ingest`` reads it (the same parser): viewers flag half of the coded
    replies whose label is wrong, as harassment, and moderators override a quarter of them; 2%
    of benign comments get a mistaken flag (``mild``). Deterministic in the comment ids."""
    latest = {e.comment_id: e for e in labels if isinstance(e, LabelCommitted)}
    lines: list[dict[str, str]] = []
    for cid, label in sorted(latest.items()):
        at = label.envelope.occurred_at + dt.timedelta(hours=2 + 46 * draw("feedback-at", cid))
        base = {"comment_id": cid, "at": at.isoformat()}
        wrong = label.label != platform.truth.get(cid)
        if platform.slices.get(cid) == CODED and wrong:
            if draw("feedback-flag", cid) < 0.5:
                lines.append(_said(base, "user_flag", "harassment"))
            if draw("feedback-override", cid) < 0.25:
                lines.append(_said(base, "moderator_override", "harassment"))
        elif platform.slices.get(cid) == "benign" and draw("feedback-noise", cid) < 0.02:
            lines.append(_said(base, "user_flag", "mild"))
    return parse_feedback((json.dumps(line) for line in lines), producer="sim.production")


def _said(base: dict[str, str], kind: str, label: str) -> dict[str, str]:
    """One feedback line on ``base`` (comment id and time): a viewer's flag or a moderator's
    override, its id and actor derived from the comment."""
    cid = base["comment_id"]
    override = kind == "moderator_override"
    prefix, actor = ("override", "moderator") if override else ("flag", "viewer")
    return {
        **base,
        "feedback_id": f"{prefix}-{cid}",
        "kind": kind,
        "label": label,
        "actor_hash": derive_id(actor, cid)[:12],
    }


def _model_of(settings: Settings, export: ExportCreated) -> ModelPublished | ModelRefused | None:
    """The model the trainer published or refused for ``export``, once it is on the log."""
    for event in _events(
        settings, ("models", "models.refused"), ("ModelPublished", "ModelRefused")
    ):
        if isinstance(event, ModelPublished | ModelRefused) and event.export_id == export.export_id:
            return event
    return None


def _train_on(
    services: StageThreads, settings: Settings, export: ExportCreated, what: str
) -> ModelPublished | ModelRefused:
    """Wait for the trainer's model of ``export``; its dead letter (too few rows, a failed
    parity check) fails the run at once."""
    trainer = services.stages["trainer"]
    rejected = trainer.stats.rejected
    found: list[ModelPublished | ModelRefused] = []

    def done() -> bool:
        if trainer.stats.rejected > rejected:
            raise RuntimeError(f"the trainer dead-lettered export {export.export_id} ({what})")
        model = _model_of(settings, export)
        found.extend([model] if model is not None else [])
        return bool(found)

    services.until(done, what, every=1.0)
    return found[0]


def _export_and_train(
    services: StageThreads,
    ch: Client,
    exports_dir: Path,
    what: str,
    progress: Callable[[str], None],
    run: str = "",
) -> tuple[ExportCreated, ModelPublished | ModelRefused]:
    """The team's ``labeltrail export create --schema-version v3 [--run RUN]`` (the export
    brings the projection up to the log's end itself), and the model the trainer makes of it."""
    settings = services.settings
    export = create_export(
        ch, settings, schema_version=SCHEMA_VERSION, out_dir=exports_dir, run=run
    )
    progress(f"export {export.export_id}: {export.row_count} rows; training {what}")
    return export, _train_on(services, settings, export, what)


def _blind_spot_alerts(services: StageThreads) -> list[IaaWindowClosed] | None:
    """The iaa stage's blind-spot alerts so far (None when it is left out): its windows are
    closed first, as a replay's are when drained (``iaa.close_on_drain``; the world's history
    is hours of event time, short of the 1-day lateness a live window waits). What the
    windows would still have received comes as late and is dead-lettered by the stage."""
    iaa = services.stages.get("iaa")
    if iaa is None:
        return None
    iaa.request_drain()
    services.until(iaa.drain_done.is_set, "iaa windows")
    services.settle("iaa windows")
    return [
        e
        for e in _events(services.settings, ("iaa",), ("IaaWindowClosed",))
        if isinstance(e, IaaWindowClosed) and e.blind_spot
    ]


def _events(settings: Settings, suffixes: Iterable[str], kinds: Iterable[str]) -> list[Event]:
    topics = [topic_name(settings.topic_prefix, s) for s in suffixes]
    return read_kinds(settings, topics, frozenset(kinds))


def run_day30_live(
    settings: Settings,
    config: Day30Config | None = None,
    *,
    models_dir: Path,
    exports_dir: Path,
    client: Client | None = None,
    timeout: float = 600.0,
    without: Sequence[str] = (),
    weak: bool = False,
    crowd_share: float = 1.0,
    progress: Callable[[str], None] = lambda _msg: None,
) -> LiveDay30Result:
    """Run the day-30 loop on the stage services (topics under ``settings.topic_prefix``):
    every registered stage but those named in ``without`` (never one of :data:`REQUIRED`).
    ``weak``: the multi-source v2, trained with the weak stage's labels filling the comments
    no human label covers (needs the weak stage). ``crowd_share``: the share of the non-gold
    comments the crowd answers (:func:`unanswered`; below 1 the rest of the pool has no human
    label, the case weak labels are for).

    A ClickHouse client it opens itself is closed when it returns or fails.
    """
    unknown = sorted(set(without) - set(STAGES))
    needed = sorted(set(without) & {*REQUIRED, *(("weak",) if weak else ())})
    if unknown or needed:
        what = f"no stage {unknown}" if unknown else f"the loop needs {needed}"
        raise LabeltrailError(f"day 30 live: cannot leave out {list(without)}: {what}")
    names = tuple(n for n in STAGES if n not in without)
    ch = client or client_from(settings)
    try:
        return _run(
            settings,
            config or Day30Config(),
            ch,
            (models_dir, exports_dir),
            names,
            timeout,
            progress,
            weak,
            crowd_share,
        )
    finally:
        if client is None:
            ch.close()


def _run(
    base: Settings,
    cfg: Day30Config,
    ch: Client,
    dirs: tuple[Path, Path],
    names: tuple[str, ...],
    timeout: float,
    progress: Callable[[str], None],
    weak: bool = False,
    crowd_share: float = 1.0,
) -> LiveDay30Result:
    started = time.monotonic()
    models_dir, exports_dir = dirs
    phases: dict[str, float] = {}
    platform = Platform(cfg.platform)
    settings = live_settings(base, platform, cfg, models_dir, weak=weak)
    ensure_topics(settings)
    apply_ddl(ch)
    seed_platform(settings, platform)
    services = StageThreads(settings, timeout, name="day 30 live")
    try:
        # Day 0: the platform's model routes comments to the crowd, the crowd votes, the
        # stages commit the labels the crowd agrees on; the experts have not answered yet.
        progress(f"day 0: stages {', '.join(names)}; the platform's model and the crowd")
        services.stage(SimulatedScorer(platform, threshold=settings.low_margin_threshold))
        crowd = SimulatedAnnotators(
            platform,
            name="sim.crowd",
            inputs=("tasks.crowd",),
            unanswered=unanswered(platform, crowd_share),
        )
        services.stage(crowd)
        for name in names:
            services.stage(make(name, settings))
        services.start("projector", Projector(ch, settings))
        services.settle("day 0")
        services.stop("sim.scorer")
        phases["day 0"] = time.monotonic() - started

        # End of day 0: the team exports; the trainer trains v1; the scorer swaps it in and
        # scores every comment it held; the low-margin ones become crowd tasks.
        mark = time.monotonic()
        first, v1 = _export_and_train(services, ch, exports_dir, "v1", progress)
        if not isinstance(v1, ModelPublished):
            raise RuntimeError(f"v1 was refused: {v1.reason}")
        services.settle("v1 scoring")
        phases["v1"] = time.monotonic() - mark

        # Days 1-14: production feedback on the live labels; the experts answer; the iaa stage
        # alerts on the slice the crowd is blind on and the team sends its crowd-only labels
        # to the experts.
        mark = time.monotonic()
        progress("days 1-14: the experts answer; the blind spot is relabeled")
        labels = _events(settings, ("labels",), ("LabelCommitted",))
        feedback = production_feedback(platform, labels)
        producer = EventProducer(settings)
        for event in feedback:
            producer.send(event)
        producer.flush()
        services.stage(SimulatedAnnotators(platform, name="sim.experts", inputs=("tasks.expert",)))
        services.settle("expert verdicts")
        alerts = _blind_spot_alerts(services)
        history = _events(settings, ("votes", "labels"), ("VoteCast", "LabelCommitted"))
        flagged, requests = team_relabel(
            cfg, platform, history, flagged=None if alerts is None else {a.slice for a in alerts}
        )
        for request in requests:
            producer.send(request)
        producer.flush()
        services.settle("relabel")
        phases["relabel"] = time.monotonic() - mark

        # Day 14: the team exports again (multi-source: the weak labels' export); the trainer
        # trains v2 and gates it against v1.
        mark = time.monotonic()
        run = WEAK_RUN if weak else ""
        second, v2 = _export_and_train(services, ch, exports_dir, "v2", progress, run)
        services.settle("v2")
        phases["v2"] = time.monotonic() - mark
    finally:
        services.close()
    if services.errors:
        raise services.errors[0]
    stats = {
        name: {k: getattr(r.stats, k) for k in ("consumed", "processed", "rejected", "emitted")}
        for name, r in services.stages.items()
    }
    rows = [_non_gold_rows(ch, e, exports_dir, platform) for e in (first, second)]
    v1_scores = _scores_by(settings, v1.model_version)
    return LiveDay30Result(
        v1=v1,
        v2=v2,
        exports=(first, second),
        flagged=flagged,
        blind_spot_alerts=alerts or [],
        relabel_requests=len(requests),
        feedback=dict(Counter(f.kind for f in feedback)),
        v1_gold=_scored_gold(v1_scores, platform),
        v1_scored=len(v1_scores),
        v1_tasks=_tasks_from(settings, v1_scores),
        train_rows=(len(rows[0]), len(rows[1])),
        train_sources=(_sources(v1), _sources(v2)),
        weak=weak,
        unanswered=len(crowd.unanswered),
        weak_labels=len(_events(settings, ("weak.labels",), ("LabelCommitted",))),
        routes=(_routes(rows[0], platform), _routes(rows[1], platform)),
        expert_requests=_requests(settings),
        stages=names,
        stage_stats=stats,
        seconds=time.monotonic() - started,
        phases=phases,
    )


def unanswered(platform: Platform, crowd_share: float) -> frozenset[str]:
    """The non-gold comments the crowd leaves unanswered at ``crowd_share`` of the pool (a
    deterministic draw per comment; thread context and the gold set are always answered)."""
    return frozenset(
        c.comment_id
        for c in platform.comments
        if c.slice != "thread_context"
        and c.comment_id not in platform.gold_set
        and draw("crowd-budget", c.comment_id) >= crowd_share
    )


def _scores_by(settings: Settings, version: str) -> dict[str, CommentScored]:
    """The scorer's scores made with ``version``, by comment."""
    return {
        e.comment_id: e
        for e in _events(settings, ("scores",), ("CommentScored",))
        if isinstance(e, CommentScored) and e.model_version == version
    }


def _scored_gold(scored: dict[str, CommentScored], platform: Platform) -> dict[str, SliceMetrics]:
    """Per-slice metrics of the scorer service's scores (one model's) of the gold set."""
    gold = [c for c in platform.gold_ids if c in scored]
    probs = np.array([scored[c].probabilities for c in gold])
    truth = [platform.truth[c] for c in gold]
    slices = [platform.slices[c] for c in gold]
    return evaluate_by_slice(truth, probs, slices, list(MODERATION_CLASSES))


def _tasks_from(settings: Settings, scored: dict[str, CommentScored]) -> int:
    """Crowd tasks caused by the ``scored`` scores."""
    scores = {e.event_id for e in scored.values()}
    return sum(
        1
        for e in _events(settings, ("tasks",), ("TaskCreated",))
        if isinstance(e, TaskCreated) and e.kind == "crowd" and e.envelope.causation_id in scores
    )


def _sources(model: ModelPublished | ModelRefused) -> dict[str, int]:
    """Rows ``model`` trained on by source (weak labels off: all human)."""
    prefix = "train.rows."
    counted = {k[len(prefix) :]: int(v) for k, v in model.metrics.items() if k.startswith(prefix)}
    return counted or {"human": int(model.metrics.get("train.rows", 0))}


def _non_gold_rows(
    ch: Client, export: ExportCreated, exports_dir: Path, platform: Platform
) -> list[dict[str, object]]:
    """The rows of ``export`` (its Parquet file) the trainer may train on: human-made (route
    consensus or adjudication, as ``training_set_from_labels`` keeps them) and not gold. A
    weak labels' export holds only those: its live rows are read from ClickHouse at the same
    positions."""
    if export.aggregator_params.get(RUN_PARAM) == WEAK_RUN:
        rows = export_rows_sql(ch, SCHEMA_VERSION, export.as_of, list(export.log_positions))
    else:
        rows = read_parquet_rows(exports_dir / export.export_id / "rows.parquet")
    return [
        r
        for r in rows
        if r["route"] in ("consensus", "adjudication") and r["comment_id"] not in platform.gold_set
    ]


def _routes(rows: list[dict[str, object]], platform: Platform) -> dict[str, int]:
    """Routes of the blind-spot slice's rows."""
    return dict(
        Counter(str(r["route"]) for r in rows if platform.slices.get(str(r["comment_id"])) == CODED)
    )


def _requests(settings: Settings) -> dict[str, int]:
    """Adjudication requests by who raised them (their producer)."""
    requests = _events(settings, ("consensus",), ("AdjudicationRequested",))
    return dict(Counter(e.envelope.producer for e in requests))
