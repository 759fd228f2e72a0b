"""The demo: a simulated platform run through the real broker into ClickHouse.

Comments are produced; a stand-in model scores them; tasking assigns each to three distinct
crowd annotators on the crowd task topic; simulated frontends read their tasks and vote;
consensus (majority vote) routes disagreement to an expert; labels are committed; the
projector writes every event into ClickHouse; the trace of one ambiguous comment is read back
from ClickHouse alone. Rerunning after a kill resumes: every id is deterministic.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from labeltrail.audit import render_trace
from labeltrail.clickhouse.client import Client, apply_ddl, client_from, run_named
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.trace import causal_order
from labeltrail.config import Settings
from labeltrail.events.topics import topic_name
from labeltrail.folds.base import Fold
from labeltrail.kafka.admin import end_offset, ensure_topics
from labeltrail.kafka.keys import KafkaKeyStore, seal_comments
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from labeltrail.quality.blindspots import is_high_agreement
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer
from labeltrail.sim.platform import CODED
from labeltrail.stages import make

__all__ = [
    "DEMO_COMMENTS",
    "DEMO_DAYS",
    "DemoResult",
    "StageThreads",
    "replay_settings",
    "run_demo",
    "seed_platform",
]

DEMO_DAYS = 30
"""The demo's history spans the article's month in event time (comments over 30 days, votes
and verdicts after them); it still runs in about a minute of wall time."""

DEMO_COMMENTS = 6_000
"""Comments the demo posts. The coded-harassment slice is about 4.5% of them, and the blind-spot
rule needs 10 gold votes in a slice's week before it tests it: at 2,000 comments the first week
holds 3 coded gold items (about 9 votes) and the alert waits for the third week; at 6,000 the
first week's evidence is significant, as the article's timeline wants (README, "What the demo
does")."""

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    seconds: float
    produced: int
    stage_stats: dict[str, dict[str, int]]
    projected: int
    table_counts: dict[str, int]
    labels_by_route: dict[str, int]
    accuracy_by_slice: dict[str, tuple[int, float]]
    dead_letters: int
    trace_comment: str | None
    trace: list[str] = field(default_factory=list)
    blind_spots: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    """(window, start, slice, agreement, gold accuracy) of every blind-spot alert."""
    reliability_moves: list[tuple[str, str, float, float]] = field(default_factory=list)
    """(annotator, method, first, latest) of the largest moves in honeypot/gold reliability."""


def seed_platform(settings: Settings, platform: Platform) -> int:
    """Produce the world's inputs unless a previous run already did."""
    if end_offset(settings, "comments") >= len(platform.comments):
        log.info("inputs already on the log; resuming")
        return 0
    n_copies = len(platform.gold_topic_events())
    sealed = seal_comments(settings, [*platform.gold_topic_events(), *platform.inputs()])
    copies, seed_events = sealed[:n_copies], sealed[n_copies:]
    producer = EventProducer(settings)
    gold = topic_name(settings.topic_prefix, "gold")
    for copy in copies:
        producer.send(copy, topic=gold)
    for event in seed_events:
        producer.send(event)
    producer.flush()
    return len(seed_events)


def replay_settings(settings: Settings, platform: Platform) -> Settings:
    """``settings`` as the demo's finite replay of ``platform`` needs them.

    Tasking waits for the whole simulated crowd and pairs honeypots with the gold set the
    platform publishes. Reliability refits, and iaa closes its windows, when the input is
    drained (a live service waits for event time). The demo replays its month in about a
    minute, and iaa reads votes and gold results from several partitions and topics at their
    own pace: in event time one source can run days ahead of another, so a lateness of the
    whole span keeps every window open until the drain closes them all, and nothing is
    dead-lettered as late.
    """
    tasking = settings.tasking.model_copy(
        update={
            "min_crowd_pool": max(settings.tasking.min_crowd_pool, len(platform.crowd_ids)),
            "min_expert_pool": max(settings.tasking.min_expert_pool, len(platform.expert_ids)),
            "gold_set_size": platform.config.n_gold,
        }
    )
    span = dt.timedelta(days=platform.config.days + 2)
    iaa = settings.iaa.model_copy(
        update={
            "allowed_lateness": max(settings.iaa.allowed_lateness, span),
            "close_on_drain": True,
        }
    )
    reliability = settings.reliability.model_copy(update={"refit_on_drain": True})
    return settings.model_copy(update={"tasking": tasking, "iaa": iaa, "reliability": reliability})


def _settled(waiters: list[threading.Event], totals: Callable[[], int]) -> bool:
    """Every waiter set, still set 1.5 s later, and ``totals`` (records consumed) unchanged in
    between: stages whose outputs feed each other are all idle (the demo, the live day 30)."""
    before = totals()
    if not all(w.is_set() for w in waiters):
        return False
    time.sleep(1.5)
    return all(w.is_set() for w in waiters) and totals() == before


class _Counted(Protocol):
    consumed: int


class _Runnable(Protocol):
    """A stage runner or the projector: run until stopped, say when caught up, count input."""

    caught_up: threading.Event

    @property
    def stats(self) -> _Counted: ...

    def run(self, stop: threading.Event, *, idle_seconds: float = ...) -> object: ...


class StageThreads:
    """Stage runners (and the projector) in threads, each with its own stop, and a wait for
    all of them to be idle (the demo, the live day 30). A thread that dies fails the next
    wait with its error; a wait past ``timeout`` (from construction) fails naming who is
    still busy."""

    def __init__(self, settings: Settings, timeout: float, *, name: str) -> None:
        self.settings = settings
        self.name = name
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.runners: dict[str, _Runnable] = {}
        self.stages: dict[str, StageRunner] = {}
        self._stops: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self.errors: list[BaseException] = []

    def stage(self, fold: Fold) -> StageRunner:
        runner = StageRunner(fold, self.settings)
        self.stages[fold.name] = runner
        self.start(fold.name, runner)
        return runner

    def start(self, name: str, runner: _Runnable) -> None:
        stop = threading.Event()

        def run() -> None:
            try:
                runner.run(stop)
            except BaseException as exc:  # surfaced by check(): a dead stage fails the run
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=name)
        self.runners[name], self._stops[name], self._threads[name] = runner, stop, thread
        thread.start()

    def stop(self, name: str) -> None:
        self._stops[name].set()
        self._threads[name].join(timeout=60)

    def close(self) -> None:
        """Stop every thread, then close the key stores the stages opened text with (their
        consumers outlive the runners otherwise)."""
        for stop in self._stops.values():
            stop.set()
        for thread in self._threads.values():
            thread.join(timeout=60)
        for runner in self.stages.values():
            keyring = getattr(runner.fold, "keyring", None)
            if isinstance(keyring, KafkaKeyStore):
                keyring.close()

    def check(self, what: str) -> None:
        if self.errors:
            raise self.errors[0]
        if time.monotonic() > self.deadline:
            busy = [n for n, r in self._running() if not r.caught_up.is_set()]
            raise TimeoutError(f"{self.name}: {what} not done in {self.timeout:.0f}s; busy {busy}")

    def _running(self) -> list[tuple[str, _Runnable]]:
        return [(n, r) for n, r in self.runners.items() if not self._stops[n].is_set()]

    def _total(self) -> int:
        return sum(r.stats.consumed for _, r in self._running())

    def settle(self, what: str) -> None:
        """Until every running stage is idle (:func:`_settled`)."""
        while not _settled([r.caught_up for _, r in self._running()], self._total):
            self.check(what)
            time.sleep(0.3)

    def until(self, done: Callable[[], bool], what: str, *, every: float = 0.3) -> None:
        while not done():
            self.check(what)
            time.sleep(every)


def run_demo(
    settings: Settings,
    *,
    config: PlatformConfig | None = None,
    client: Client | None = None,
    timeout: float = 600.0,
    progress: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    """Run the simulated platform end to end; returns the summary and a trace.

    A ClickHouse client it opens itself is closed when it returns or fails (an embedded chdb
    engine serves one directory per process).
    """
    ch = client or client_from(settings)
    try:
        return _run(settings, ch, config=config, timeout=timeout, progress=progress)
    finally:
        if client is None:
            ch.close()


def _run(
    settings: Settings,
    ch: Client,
    *,
    config: PlatformConfig | None,
    timeout: float,
    progress: Callable[[str], None],
) -> DemoResult:
    started = time.monotonic()
    services = StageThreads(settings, timeout, name="demo")
    platform = Platform(config or PlatformConfig.sized(DEMO_COMMENTS, days=DEMO_DAYS))
    progress("creating topics")
    ensure_topics(settings)
    apply_ddl(ch)
    progress(f"producing {len(platform.comments)} comments, annotators, gold set")
    produced = seed_platform(settings, platform)

    replay = replay_settings(settings, platform)
    folds: list[Any] = [
        SimulatedScorer(platform, threshold=settings.low_margin_threshold),
        make("tasking", replay),
        SimulatedAnnotators(platform),
        *(make(stage, replay) for stage in ("consensus", "labels", "reliability", "iaa")),
    ]
    try:
        runners = [services.stage(fold) for fold in folds]
        projector = Projector(ch, settings)
        services.start("projector", projector)
        progress(
            "stages running: scorer, tasking, annotators, consensus, labels, reliability, iaa,"
            " projector"
        )
        services.settle("the history")
        # The whole history has been through every stage: now, and only now, the folds may
        # settle what they hold (close event-time windows, run the pending refit, reject
        # what never found its task); what that emits flows through once more.
        for runner in runners:
            runner.request_drain()
        for runner in runners:
            services.until(runner.drain_done.is_set, f"{runner.fold.name} drain", every=0.5)
        services.settle("what the drains emitted")
    finally:
        progress("stopping stages")
        services.close()
    if services.errors:  # a stage that died after the last wait
        raise services.errors[0]
    progress("settled; reading ClickHouse")
    return _summarise(ch, platform, runners, projector, produced, started)


def _pairs(ch: Client, sql: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in ch.query(sql).result_rows}


def _summarise(
    ch: Client,
    platform: Platform,
    runners: list[StageRunner],
    projector: Projector,
    produced: int,
    started: float,
) -> DemoResult:
    counts = _pairs(ch, "SELECT event_type, count() FROM events FINAL GROUP BY event_type")
    routes = _pairs(ch, "SELECT route, count() FROM v_labels GROUP BY route")
    latest = ch.query(
        "SELECT comment_id, argMax(label, occurred_at) FROM v_labels GROUP BY comment_id"
    ).result_rows
    per_slice: dict[str, list[int]] = {}
    for cid, label in latest:
        slice_ = platform.slices.get(cid, "?")
        hits = per_slice.setdefault(slice_, [0, 0])
        hits[0] += 1
        hits[1] += int(label == platform.truth.get(cid))
    accuracy = {s: (n, ok / n) for s, (n, ok) in sorted(per_slice.items())}
    dead = int(ch.query("SELECT count() FROM v_dead_letters").result_rows[0][0])
    blind = [
        (str(w), str(start)[:10], f"{sl} ({metric})", float(agreement), float(gold))
        for w, start, sl, metric, agreement, gold in ch.query(
            "SELECT JSONExtractString(payload, 'window'), JSONExtractString(payload, "
            "'window_start'), JSONExtractString(payload, 'slice'), "
            "JSONExtractString(payload, 'metric'), "
            "JSONExtractFloat(payload, 'agreement'), JSONExtractFloat(payload, 'gold_accuracy') "
            "FROM events FINAL WHERE event_type = 'IaaWindowClosed' "
            "AND JSONExtractBool(payload, 'blind_spot') ORDER BY 1, 2, 3"
        ).result_rows
        if is_high_agreement(str(metric), float(agreement))  # by its metric's own scale
    ]
    moves = [
        (str(a), str(m), float(first), float(last))
        for a, m, first, last in ch.query(
            "SELECT annotator_id, JSONExtractString(payload, 'method') AS m, "
            "argMin(JSONExtractFloat(payload, 'accuracy'), (occurred_at, recorded_at)), "
            "argMax(JSONExtractFloat(payload, 'accuracy'), (occurred_at, recorded_at)) "
            "FROM events FINAL WHERE event_type = 'AnnotatorReliabilityUpdated' "
            "AND m = 'beta_gold' GROUP BY annotator_id, m "
            "ORDER BY abs(argMax(JSONExtractFloat(payload, 'accuracy'), (occurred_at, recorded_at))"
            " - argMin(JSONExtractFloat(payload, 'accuracy'), (occurred_at, recorded_at))) DESC, "
            "annotator_id LIMIT 5"
        ).result_rows
    ]
    candidates = run_named(ch, "ambiguous_comments", limit=10_000)
    coded = [c["comment_id"] for c in candidates if platform.slices.get(c["comment_id"]) == CODED]
    chosen = (coded or [c["comment_id"] for c in candidates] or [None])[0]
    trace = render_trace(causal_order(run_named(ch, "trace", comment_id=chosen))) if chosen else []
    stats = {
        r.fold.name: {
            "consumed": r.stats.consumed,
            "restored": r.stats.restored,
            "processed": r.stats.processed,
            "rejected": r.stats.rejected,
            "emitted": r.stats.emitted,
        }
        for r in runners
    }
    return DemoResult(
        seconds=time.monotonic() - started,
        produced=produced,
        stage_stats=stats,
        projected=projector.stats.projected,
        table_counts=counts,
        labels_by_route=routes,
        accuracy_by_slice=accuracy,
        dead_letters=dead,
        trace_comment=chosen,
        trace=trace,
        blind_spots=blind,
        reliability_moves=moves,
    )
