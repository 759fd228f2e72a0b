"""Benchmark the streaming path on the local broker: live throughput, latency, replay.

    .venv/bin/python ops/bench/streaming.py [--scale small|article] [--replay-comments N]

a. **Live votes/s, tasking to commit.** A simulated platform (``Platform(PlatformConfig.sized
   (n))``) is produced with its model scores; tasking, the simulated annotators, consensus and
   labels then run as StageRunner processes (one process each). The rate is VoteCast records
   over the time from the first vote's timestamp to the last LabelCommitted's. Then the same
   platform on fresh topics with tasking, consensus and labels fused in one FusedRunner process
   (``labeltrail.kafka.fused``) beside the annotators: its rate, the stages' CPU per vote after
   start-up, the broker's CPU per vote, records read from Kafka and written per vote, each
   beside the separate processes'. Peers, over the same VoteCast records: a bare faust
   pass-through agent and a raw confluent-kafka consume -> Avro decode -> encode -> produce
   loop (each rate from its first to its last output).
b. **p99 latency** from a VoteCast's produce call to the arrival, at a downstream consumer, of
   the ConsensusUpdated it caused, with votes paced at 1,000/s into a consensus stage that
   holds the tasks already; the same with consensus in the fused process of tasking,
   consensus and labels. Peer: the same fold run by the faust stage
   (``labeltrail.kafka.faust_stage``).
c. **Replay** of a synthetic article-shaped history (TaskCreated + 3 VoteCast per comment,
   fixed seed; written to a cached topic once) read back with confluent-kafka in batches,
   decoded, and run through the consensus and labels folds in one process. The fold, decode
   and Kafka-read times are measured separately. Peer: the live rate from (a). The labels a
   replay of the live run's own topics commits must equal those the live run committed.

Prints one JSON object per figure: {"figure", "value", "unit", "peer", "peer_value", "ratio"}
(ratio > 1: ours is better). Conditions (load average, sizes) go to stderr.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import cProfile
import json
import multiprocessing as mp
import os
import pstats
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from streaming_parts import (
    broker_cpu_seconds,
    confluent_passthrough,
    emit,
    ensure_history,
    faust_passthrough,
    note,
    produce_raw,
    read_raw,
    record_count,
    replay_folds,
    seed_schema,
    stage_process,
    synthetic_history,
)

from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.models import ConsensusUpdated, LabelCommitted, TaskCreated, VoteCast
from labeltrail.events.serde import decode, encode
from labeltrail.events.topics import topic_name
from labeltrail.kafka.admin import delete_topics, ensure_topics
from labeltrail.kafka.consumer import consumer_config, high_watermark
from labeltrail.kafka.producer import EventProducer, producer_config

REPO = Path(__file__).resolve().parents[2]
SPAWN = mp.get_context("spawn")


@dataclass(frozen=True)
class Scale:
    live_comments: int
    paced_seconds: float
    replay_comments: int


SCALES = {
    "small": Scale(live_comments=600, paced_seconds=3.0, replay_comments=1_500),
    "article": Scale(live_comments=10_000, paced_seconds=30.0, replay_comments=800_000),
}


def _create_topic(settings: Settings, name: str, partitions: int) -> None:
    admin = AdminClient(settings.kafka_config())
    admin.create_topics([NewTopic(name, num_partitions=partitions)])[name].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if md and md.error is None and all(p.leader >= 0 for p in md.partitions.values()):
            return
        time.sleep(0.1)
    raise TimeoutError(name)


def _delete_run_topics(used: list[Settings]) -> None:
    """Delete the topics of this run's prefixes at exit (an article run leaves some 300 topics
    and 1,500 partitions otherwise, and the shared broker holds at most about 20,000); the
    cached replay history (``bench-history-*``) stays."""
    for settings in used:
        with contextlib.suppress(Exception):
            delete_topics(settings, timeout=60)


def _done(settings: Settings, topic: str, expected: int) -> bool:
    return record_count(settings, topic) >= expected


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


# (a) live -------------------------------------------------------------------------------------


@dataclass
class LiveRun:
    rate: float
    """VoteCast records per second, first vote to last label."""
    votes: list[tuple[bytes | None, bytes]]
    """The VoteCast records (key, value), for the pass-through peers."""
    consumed: int
    """Records the stage processes read from Kafka, summed (restore included)."""
    produced: int
    """Records the stage processes wrote (outputs and dead letters), summed."""
    stage_consumed: int
    """Records the pipeline's stages read from Kafka (the simulated annotators not counted)."""
    stage_produced: int
    """Records the pipeline's stages wrote (the simulated annotators not counted)."""
    stage_cpu_s: float
    """CPU seconds the pipeline's stages spent after start-up (the annotators not counted)."""
    broker_cpu_s: float | None
    """CPU seconds of the broker during the run (None when it runs elsewhere)."""
    load_cpu_s: float
    """CPU seconds the simulated annotators (the load) spent after start-up."""


SEPARATE = ("tasking", "annotators", "consensus", "labels")
"""One process per stage (the simulated annotators are the load, not the pipeline)."""
FUSED = ("fused", "annotators")
"""Tasking, consensus and labels in one FusedRunner process, and the annotators."""


def live(settings: Settings, n_comments: int, kinds: tuple[str, ...] = SEPARATE) -> LiveRun:
    """Run the live stages (``kinds``, one process each) over a simulated platform."""
    from labeltrail.events.base import LogPosition
    from labeltrail.ontology import moderation_schema_v3
    from labeltrail.sim import Platform, PlatformConfig, SimulatedScorer

    ensure_topics(settings)
    platform = Platform(PlatformConfig.sized(n_comments))
    scorer = SimulatedScorer(platform, threshold=settings.low_margin_threshold)
    producer = EventProducer(settings)
    seed = [moderation_schema_v3(), *platform.annotator_events(), *platform.gold_events()]
    comments = [c.event for c in platform.comments]
    position = LogPosition(topic="comments", partition=0, offset=0)
    scores = [s for c in comments for s in scorer.apply(c, position) if isinstance(s, Event)]
    gold = topic_name(settings.topic_prefix, "gold")
    for copy in platform.gold_topic_events():
        producer.send(copy, topic=gold)
    for event in [*seed, *comments, *scores]:
        producer.send(event)
    producer.flush()
    note(f"live: {len(comments)} comments, {len(scores)} scores produced; starting {kinds}")

    stop = SPAWN.Event()
    procs, flags = [], []
    broker_before = broker_cpu_seconds()
    cpu = {kind: SPAWN.Value("d", 0.0) for kind in kinds}
    cpu_start = {kind: SPAWN.Value("d", 0.0) for kind in kinds}
    produced = {kind: SPAWN.Value("q", 0) for kind in kinds}
    for kind in kinds:
        ready, caught_up = SPAWN.Event(), SPAWN.Event()
        consumed = SPAWN.Value("q", 0)
        proc = SPAWN.Process(
            target=stage_process,
            args=(kind, settings.model_dump_json(), n_comments, stop, ready, caught_up, consumed),
            kwargs={
                "cpu_seconds": cpu[kind],
                "emitted": produced[kind],
                "cpu_at_start": cpu_start[kind],
            },
            name=f"stage-{kind}",
        )
        proc.start()
        procs.append(proc)
        flags.append((ready, caught_up, consumed))
    try:
        _wait(lambda: all(f[0].is_set() for f in flags), 120, "stages did not start")

        def settled() -> bool:
            if not all(p.is_alive() for p in procs):
                raise RuntimeError("a stage process died")
            before = sum(f[2].value for f in flags)
            if not all(f[1].is_set() for f in flags) or before == 0:
                return False
            time.sleep(2.0)
            return all(f[1].is_set() for f in flags) and sum(f[2].value for f in flags) == before

        _wait(settled, 1800, "live stages did not settle")
        broker_after = broker_cpu_seconds()
    finally:
        stop.set()
        for proc in procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
                proc.join()
    votes = [
        r for batch in read_raw(settings, topic_name(settings.topic_prefix, "votes")) for r in batch
    ]
    labels = [
        r
        for batch in read_raw(settings, topic_name(settings.topic_prefix, "labels"))
        for r in batch
    ]
    first_vote = min(ts for _, _, ts in votes)
    last_label = max(ts for _, _, ts in labels)
    seconds = (last_label - first_vote) / 1000
    note(f"live: {len(votes)} votes, {len(labels)} labels in {seconds:.2f}s")
    n_votes = max(len(votes), 1)
    used = {k: cpu[k].value - cpu_start[k].value for k in kinds}
    note(
        "live: process CPU after start-up "
        + ", ".join(f"{k} {used[k]:.1f}s ({used[k] / n_votes * 1e6:.0f} us/vote)" for k in kinds)
    )
    broker_s = None
    if broker_before is not None and broker_after is not None:
        broker_s = broker_after - broker_before
        note(f"live: broker CPU {broker_s:.1f}s ({broker_s / n_votes * 1e6:.0f} us/vote)")
    note(
        "live: records read / written per vote "
        + ", ".join(
            f"{k} {f[2].value / n_votes:.2f} / {produced[k].value / n_votes:.2f}"
            for k, f in zip(kinds, flags, strict=True)
        )
    )
    stages = [i for i, k in enumerate(kinds) if k != "annotators"]
    return LiveRun(
        rate=len(votes) / seconds,
        votes=[(k, v) for k, v, _ in votes],
        consumed=sum(f[2].value for f in flags),
        produced=sum(v.value for v in produced.values()),
        stage_consumed=sum(flags[i][2].value for i in stages),
        stage_produced=sum(produced[kinds[i]].value for i in stages),
        stage_cpu_s=sum(used[kinds[i]] for i in stages),
        broker_cpu_s=broker_s,
        load_cpu_s=used.get("annotators", 0.0),
    )


def fused_figures(separate: LiveRun, fused: LiveRun) -> None:
    """The fused process beside the separate stage processes, same platform, same run."""
    n_sep, n_fused = max(len(separate.votes), 1), max(len(fused.votes), 1)
    rows: list[tuple[str, float, float, str, str, bool]] = [
        (
            "live votes/s tasking to commit (fused: tasking, consensus, labels in 1 process)",
            fused.rate,
            separate.rate,
            "votes/s",
            "separate StageRunner processes (tasking, consensus, labels)",
            True,
        ),
        (
            "stage CPU per vote after start-up (fused process)",
            fused.stage_cpu_s / n_fused * 1e6,
            separate.stage_cpu_s / n_sep * 1e6,
            "us/vote",
            "separate processes: tasking + consensus + labels",
            False,
        ),
        (
            "records read from Kafka per vote by the stages (fused)",
            fused.stage_consumed / n_fused,
            separate.stage_consumed / n_sep,
            "records/vote",
            "separate processes",
            False,
        ),
        (
            "records written per vote by the stages (fused)",
            fused.stage_produced / n_fused,
            separate.stage_produced / n_sep,
            "records/vote",
            "separate processes",
            False,
        ),
    ]
    if fused.broker_cpu_s is not None and separate.broker_cpu_s is not None:
        rows.append(
            (
                "broker CPU per vote (fused; simulated annotators' traffic included)",
                fused.broker_cpu_s / n_fused * 1e6,
                separate.broker_cpu_s / n_sep * 1e6,
                "us/vote",
                "separate processes",
                False,
            )
        )
    for figure, ours, theirs, unit, peer, higher in rows:
        emit(figure, ours, unit, peer, theirs, higher=higher)


def goal_bounds(separate: LiveRun, fused: LiveRun, peers: dict[str, float]) -> None:
    """What issue 19's goals ask of the rules' own CPU, derived from this run's measurements
    (notes, not figures: nothing here is timed on its own).

    Both modes run the same folds, so the separate processes' extra CPU per vote is their
    extra reading (``extra``). The fused process moves ``fused_io`` us of records per vote at
    least (half the confluent peer's CPU per record, as in the bound above), so with rules
    that cost nothing the CPU ratio is at most ``(fused_io + extra) / fused_io``, and a ratio
    of 3 leaves the rules (every fold's logic and the building of its outputs) at most
    ``(extra - 2 * fused_io) / 2`` us per vote. The live rate
    is the machine's 2 cores over the CPU per vote of the fused process, the simulated
    annotators and the broker: a rate goal leaves the fused process this much per vote.
    """
    n_sep, n_fused = max(len(separate.votes), 1), max(len(fused.votes), 1)
    sep_us = separate.stage_cpu_s / n_sep * 1e6
    fused_us = fused.stage_cpu_s / n_fused * 1e6
    extra = sep_us - fused_us
    fused_io = (
        (fused.stage_consumed + fused.stage_produced) / n_fused * peers["confluent_cpu_us"] / 2
    )
    rules_max = (extra - 2 * fused_io) / 2  # (fused_io + rules + extra) / (fused_io + rules) = 3
    note(
        f"goals: separate {sep_us:.0f} us/vote, fused {fused_us:.0f} (of it at least "
        f"{fused_io:.0f} moving records): {extra:.0f} us/vote saved by fusing; with rules that "
        f"cost nothing the ratio would be at most {(fused_io + extra) / fused_io:.2f}, and the "
        f"goal of 3 leaves all the rules and their outputs {rules_max:.0f} us/vote (they use "
        f"at most {fused_us - fused_io:.0f})"
    )
    if fused.broker_cpu_s is None:
        return
    others = (fused.load_cpu_s + fused.broker_cpu_s) / n_fused * 1e6
    for goal, target in (
        ("2x faust", 2 * peers["faust"]),
        ("0.33x confluent", 0.33 * peers["confluent"]),
    ):
        allowed = 2e6 / target - others
        note(
            f"goals: {goal} is {target:.0f} votes/s; with the annotators and the broker at "
            f"{others:.0f} us/vote, 2 cores leave the fused process {allowed:.0f} us/vote "
            f"(it used {fused_us:.0f})"
        )


def _rate_of(settings: Settings, topic: str) -> float:
    stamps = sorted(ts for batch in read_raw(settings, topic) for _, _, ts in batch)
    return (len(stamps) - 1) / max((stamps[-1] - stamps[0]) / 1000, 1e-3)


def passthrough_peers(
    settings: Settings, records: list[tuple[bytes | None, bytes]]
) -> dict[str, float]:
    """Rates of the faust and confluent pass-through peers over the same VoteCast records,
    and the confluent peer's process CPU per record (``confluent_cpu_us``)."""
    rates: dict[str, float] = {}
    peer_cpu = SPAWN.Value("d", 0.0)
    for peer in ("faust", "confluent"):
        source, sink = (
            f"{settings.topic_prefix}.peer-{peer}.in",
            f"{settings.topic_prefix}.peer-{peer}.out",
        )
        _create_topic(settings, source, settings.topic_partitions)
        _create_topic(settings, sink, settings.topic_partitions)
        produce_raw(settings, source, records)
        ready = SPAWN.Event()
        args: tuple[Any, ...]
        target: Callable[..., None]
        if peer == "faust":
            target, args = faust_passthrough, (settings.model_dump_json(), source, sink, ready)
        else:
            target = confluent_passthrough
            args = (settings.model_dump_json(), source, sink, len(records), ready, peer_cpu)
        proc = SPAWN.Process(target=target, args=args, name=f"peer-{peer}")
        proc.start()
        try:
            _wait(partial(_done, settings, sink, len(records)), 600, f"{peer} peer stalled")
        finally:
            if proc.is_alive():
                proc.terminate()
            proc.join(60)
            if proc.is_alive():
                proc.kill()
                proc.join()
        rates[peer] = _rate_of(settings, sink)
        note(f"peer {peer}: {rates[peer]:.0f} msg/s")
    rates["confluent_cpu_us"] = peer_cpu.value / len(records) * 1e6
    note(f"peer confluent: {rates['confluent_cpu_us']:.1f} us of process CPU per record")
    return rates


# (b) latency ----------------------------------------------------------------------------------


def _start_consensus(settings: Settings, runner: str, tmp: Path) -> tuple[Any, Callable[[], bool]]:
    """A consensus stage as a process (``fused``: in the fused process of tasking, consensus
    and labels); returns it and a caught-up probe."""
    if runner in ("stage", "fused"):
        stop, ready, caught_up = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
        consumed = SPAWN.Value("q", 0)
        kind = "consensus" if runner == "stage" else "fused"
        proc = SPAWN.Process(
            target=stage_process,
            args=(kind, settings.model_dump_json(), 0, stop, ready, caught_up, consumed),
        )
        proc.start()
        # Keep every shared object alive until the child has unpickled it.
        proc.shared = (stop, ready, caught_up, consumed)  # type: ignore[attr-defined]
        return proc, caught_up.is_set
    import subprocess

    status = tmp / f"{settings.topic_prefix}.status.json"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
    }
    factory = "labeltrail.stages:make_consensus"
    args = [sys.executable, "-m", "labeltrail.kafka.faust_stage", factory]
    args += ["--status-file", str(status)]
    log = open(tmp / f"{settings.topic_prefix}.faust.log", "wb")  # noqa: SIM115
    popen = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()

    def probe() -> bool:
        try:
            return bool(json.loads(status.read_text()).get("caught_up"))
        except (OSError, ValueError):
            return False

    return popen, probe


def _stop_consensus(proc: Any) -> None:
    if hasattr(proc, "shared"):
        proc.shared[0].set()
        proc.join(60)
        if proc.is_alive():
            proc.kill()
            proc.join()
        return
    proc.terminate()
    try:
        proc.wait(60)
    except Exception:
        proc.kill()
        proc.wait()


def latency(settings: Settings, runner: str, seconds: float, rate: float, tmp: Path) -> list[float]:
    """Per-vote latencies (ms), votes paced at ``rate``/s for ``seconds``."""
    ensure_topics(settings)
    seed_schema(settings)
    n_votes = int(seconds * rate)
    events = [e for chunk in synthetic_history(n_votes // 3 + 1, seed=11) for e in chunk]
    tasks = [e for e in events if isinstance(e, TaskCreated)]
    votes = [e for e in events if isinstance(e, VoteCast)][:n_votes]
    produce_raw(
        settings,
        topic_name(settings.topic_prefix, "tasks"),
        [(t.key.encode(), encode(t)) for t in tasks],
    )
    encoded = [(v.event_id, v.key.encode(), encode(v)) for v in votes]
    proc, caught_up = _start_consensus(settings, runner, tmp)
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    done = threading.Event()
    listening = threading.Event()

    def receive() -> None:
        # Assigned at explicit offsets, not subscribed: a group join (the broker delays the
        # first rebalance by 3 s) would count as latency of the first votes. Polled for a
        # second before the votes start, so its fetch sessions are open.
        topic = topic_name(settings.topic_prefix, "consensus")
        conf = {"fetch.wait.max.ms": 5}
        consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.probe", **conf))
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign(
            [
                TopicPartition(topic, p, high_watermark(consumer, TopicPartition(topic, p)))
                for p in parts
            ]
        )
        started = time.monotonic()
        try:
            while not done.is_set():
                if not listening.is_set() and time.monotonic() - started > 1.0:
                    listening.set()
                msg = consumer.poll(0.05)
                if msg is None or msg.error() is not None:
                    continue
                at = time.time()
                event = decode(msg.value() or b"")
                if isinstance(event, ConsensusUpdated) and event.envelope.causation_id:
                    arrived[event.envelope.causation_id] = at
        finally:
            consumer.close()

    thread = threading.Thread(target=receive, name="latency-probe")
    try:
        _wait(caught_up, 180, f"{runner}: consensus did not catch up on the tasks")
        # The vote producer connects (metadata, idempotent producer id) while the probe
        # starts, so its own start-up is not counted as the stage's latency.
        producer = Producer(producer_config(settings))
        topic = topic_name(settings.topic_prefix, "votes")
        producer.list_topics(topic, timeout=30)
        thread.start()
        _wait(listening.is_set, 60, "the latency probe did not start fetching")
        start = time.perf_counter()
        for i, (event_id, key, value) in enumerate(encoded):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[event_id] = time.time()
            producer.produce(topic, value=value, key=key)
            producer.poll(0)
        producer.flush(30)
        _wait(lambda: len(arrived) >= len(encoded), seconds + 600, f"{runner}: updates missing")
    finally:
        done.set()
        if thread.is_alive():
            thread.join(10)
        _stop_consensus(proc)
    return [(arrived[v] - sent[v]) * 1000 for v in sent if v in arrived]


# (c) replay -------------------------------------------------------------------------------------


def replay(settings: Settings, *, keep_labels: bool = False) -> tuple[Any, float, int]:
    """Read schemas, tasks, votes, adjudications in order; (result, read seconds, records)."""
    read_s = 0.0
    records = 0

    def batches() -> Iterator[list[bytes]]:
        nonlocal read_s, records
        for suffix in ("schemas", "tasks", "votes", "adjudications"):
            topic = topic_name(settings.topic_prefix, suffix)
            if record_count(settings, topic) == 0:
                continue
            source = read_raw(settings, topic, batch=20_000)
            while True:
                t0 = time.perf_counter()
                batch = next(source, None)
                read_s += time.perf_counter() - t0
                if batch is None:
                    break
                records += len(batch)
                yield [v for _, v, _ in batch]

    result = replay_folds(batches(), keep_labels=keep_labels)
    return result, read_s, records


def live_labels(settings: Settings) -> dict[str, tuple[str, str]]:
    out = {}
    for batch in read_raw(settings, topic_name(settings.topic_prefix, "labels")):
        for _, value, _ in batch:
            event = decode(value)
            if isinstance(event, LabelCommitted):
                out[event.label_id] = (event.comment_id, event.label)
    return out


# main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--replay-comments", type=int, default=None)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--only", default="abc", help="which figures: any of a, b, c")
    parser.add_argument("--profile", action="store_true", help="cProfile the replay (stderr)")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    replay_n = args.replay_comments or scale.replay_comments
    base = Settings()
    prefix = f"bench{int(time.time())}"
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "labeltrail-bench-streaming"
    tmp.mkdir(parents=True, exist_ok=True)
    note(f"scale={args.scale} load average={os.getloadavg()} cpus={os.cpu_count()} prefix={prefix}")

    live_rate = 0.0
    live_settings = base.model_copy(update={"topic_prefix": prefix})
    used = [live_settings]
    atexit.register(_delete_run_topics, used)
    if "a" in args.only or "c" in args.only:
        run = live(live_settings, scale.live_comments)
        live_rate = run.rate
    if "a" in args.only:
        fused_settings = base.model_copy(update={"topic_prefix": f"{prefix}fused"})
        used.append(fused_settings)
        fused = live(fused_settings, scale.live_comments, FUSED)
        fused_figures(run, fused)
        # The same platform: the fused process must commit the very labels, ids included.
        ours, theirs = live_labels(fused_settings), live_labels(live_settings)
        same = sum(1 for k, v in theirs.items() if ours.get(k) == v)
        note(f"fused: {same}/{len(theirs)} labels equal to the separate run's, {len(ours)} in all")
        emit(
            "fused labels equal to the separate processes' (share, label ids included)",
            same / max(len(theirs), 1),
            "share",
            "separate processes",
            1.0,
            higher=True,
        )
        if same != len(theirs) or len(ours) != len(theirs):
            raise SystemExit("the fused process committed other labels than the separate ones")
        peers = passthrough_peers(live_settings, run.votes)
        for name, peer in (
            ("faust", "faust pass-through agent"),
            ("confluent", "confluent-kafka decode/encode pass-through"),
        ):
            emit(
                "live votes/s tasking to commit (fused: tasking, consensus, labels in 1 process)",
                fused.rate,
                "votes/s",
                peer,
                peers[name],
                higher=True,
            )
        # Each record the stages move is at least a consume and a decode, or an encode and a
        # produce: half of what the confluent peer does per record (one of each). At half the
        # peer's process CPU per record, the pipeline's record volume alone needs this much
        # CPU per vote, and two cores (the broker's share not counted) allow this many votes/s.
        moved = (run.consumed + run.produced) / max(len(run.votes), 1)
        floor_us = moved * peers["confluent_cpu_us"] / 2
        note(
            f"live: {moved:.2f} records moved per vote (read + written, 4 stages); at half the "
            f"confluent peer's CPU per record that is {floor_us:.0f} us of CPU per vote before "
            f"any fold logic, so at most {2e6 / floor_us:.0f} votes/s on 2 cores "
            "(a bound derived from measurements, not a measurement)"
        )
        goal_bounds(run, fused, peers)
        emit(
            "records moved per vote (read + written, 4 live stages)",
            moved,
            "records/vote",
            None,
            None,
        )
        emit(
            "live votes/s tasking to commit (4 StageRunner processes)",
            live_rate,
            "votes/s",
            "faust pass-through agent",
            peers["faust"],
            higher=True,
        )
        emit(
            "live votes/s tasking to commit (4 StageRunner processes)",
            live_rate,
            "votes/s",
            "confluent-kafka decode/encode pass-through",
            peers["confluent"],
            higher=True,
        )

    if "b" in args.only:
        p99: dict[str, float] = {}
        for runner in ("stage", "fused", "faust"):
            settings = base.model_copy(update={"topic_prefix": f"{prefix}{runner}lat"})
            used.append(settings)
            ms = sorted(latency(settings, runner, scale.paced_seconds, 1000.0, tmp))
            p99[runner] = ms[int(0.99 * (len(ms) - 1))]
            p50 = statistics.median(ms)
            note(f"latency {runner}: n={len(ms)} p50={p50:.1f}ms p99={p99[runner]:.1f}ms")
        emit(
            "p99 latency VoteCast to ConsensusUpdated at 1,000 votes/s (fused process)",
            p99["fused"],
            "ms",
            "separate consensus StageRunner",
            p99["stage"],
            higher=False,
        )
        emit(
            "p99 latency VoteCast to ConsensusUpdated at 1,000 votes/s (StageRunner)",
            p99["stage"],
            "ms",
            "faust-run ConsensusFold",
            p99["faust"],
            higher=False,
        )

    if "c" in args.only:
        history = ensure_history(base, replay_n, args.seed)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        result, read_s, records = replay(history)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        fold_rate = result.votes / result.fold_seconds
        note(
            f"replay: {result.votes} votes, {records} records; read {read_s:.1f}s "
            f"decode {result.decode_seconds:.1f}s fold {result.fold_seconds:.1f}s"
        )
        emit(
            "replay votes/s, consensus+labels folds on decoded events",
            fold_rate,
            "votes/s",
            "live path (a)",
            live_rate,
            higher=True,
        )
        emit(
            "replay votes/s, Kafka read + decode + folds",
            result.votes / (read_s + result.decode_seconds + result.fold_seconds),
            "votes/s",
            "live path (a)",
            live_rate,
            higher=True,
        )
        emit(
            "replay Kafka read (confluent-kafka batches)",
            records / read_s,
            "records/s",
            "live path (a)",
            live_rate,
            higher=True,
        )
        emit(
            "replay Avro decode to events",
            records / result.decode_seconds,
            "records/s",
            "live path (a)",
            live_rate,
            higher=True,
        )
        check, _, _ = replay(live_settings, keep_labels=True)
        expected = live_labels(live_settings)
        same = sum(1 for k, v in expected.items() if check.labels.get(k) == v)
        extra = len(set(check.labels) - set(expected))
        note(f"replay of the live run: {same}/{len(expected)} labels equal, {extra} extra")
        emit(
            "replay labels equal to the live run's (share)",
            same / max(len(expected), 1),
            "share",
            "live run",
            1.0,
            higher=True,
        )
        if same != len(expected) or extra:
            raise SystemExit("replay labels differ from the live run's")


if __name__ == "__main__":
    main()
