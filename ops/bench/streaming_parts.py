"""Parts of ``ops/bench/streaming.py``: the synthetic history, topic I/O, and the processes.

Every process entry point here is a module-level function so ``multiprocessing``'s spawn
start method can import it (forking a process that already runs librdkafka threads is unsafe).
"""

from __future__ import annotations

import contextlib
import cProfile
import datetime as dt
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from labeltrail.config import Settings
from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import LabelCommitted, TaskCreated, VoteCast
from labeltrail.events.serde import decode, encode
from labeltrail.events.topics import topic_name
from labeltrail.folds.base import Fold
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import consumer_config
from labeltrail.kafka.producer import producer_config
from labeltrail.kafka.runner import StageRunner
from labeltrail.ontology import moderation_schema_v3
from labeltrail.ontology.schema import MODERATION_CLASSES

__all__ = [
    "Raw",
    "ensure_history",
    "note",
    "produce_raw",
    "read_raw",
    "record_count",
    "replay_folds",
    "stage_process",
    "synthetic_history",
]

Raw = tuple[bytes | None, bytes, int]
"""(key, value, timestamp in ms) of one record."""

START = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)


def note(msg: str) -> None:
    """A progress line on stderr (stdout carries only the figures)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# the synthetic history -------------------------------------------------------------------


def synthetic_history(
    n_comments: int, *, seed: int, chunk: int = 20_000
) -> Iterator[list[TaskCreated | VoteCast]]:
    """800,000 comments x 3 votes at the article's scale: a crowd task and its votes per comment.

    300 crowd annotators with accuracies in [0.65, 0.95]; truths drawn from the simulator's
    class priors; each task goes to 3 distinct annotators. Yields chunks (task, vote, vote,
    vote, task, ...), so the whole history never has to sit in memory.
    """
    rng = np.random.default_rng(seed)
    k = len(MODERATION_CLASSES)
    annotators = [f"annotator_{i:03d}" for i in range(300)]
    accuracy = rng.uniform(0.65, 0.95, size=len(annotators))
    questions = ["q1_slur", "q2_targets_group", "q3_threat", "q4_needs_context"]
    for lo in range(0, n_comments, chunk):
        n = min(chunk, n_comments - lo)
        truths = rng.choice(k, size=n, p=[0.70, 0.15, 0.08, 0.05, 0.02])
        picks = np.argsort(rng.random((n, len(annotators))), axis=1)[:, :3]
        right = rng.random((n, 3)) < accuracy[picks]
        wrong = (truths[:, None] + rng.integers(1, k, size=(n, 3))) % k
        answers = np.where(right, truths[:, None], wrong)
        out: list[TaskCreated | VoteCast] = []
        for i in range(n):
            cid = f"c-{lo + i:07x}"
            at = START + dt.timedelta(seconds=lo + i)
            chosen = [annotators[j] for j in picks[i]]
            task_id = f"t-{seed}-{lo + i:07x}"
            out.append(
                TaskCreated.create(
                    producer="bench.history",
                    id_parts=("bench-task", seed, cid),
                    occurred_at=at,
                    recorded_at=at,
                    task_id=task_id,
                    comment_id=cid,
                    schema_version="v3",
                    kind="crowd",
                    reason="active_learning",
                    questions=questions,
                    redundancy=3,
                    annotators=chosen,
                    cost_usd=0.12,
                )
            )
            for v in range(3):
                vote_at = at + dt.timedelta(minutes=5 + 10 * v)
                out.append(
                    VoteCast.create(
                        producer="bench.history",
                        id_parts=("bench-vote", seed, cid, v),
                        occurred_at=vote_at,
                        recorded_at=vote_at,
                        vote_id=f"v-{seed}-{lo + i:07x}-{v}",
                        task_id=task_id,
                        comment_id=cid,
                        annotator_id=chosen[v],
                        schema_version="v3",
                        label=MODERATION_CLASSES[int(answers[i, v])],
                        confidence=0.8,
                        time_spent_ms=9000,
                    )
                )
        yield out


# topic I/O -----------------------------------------------------------------------------------


def produce_raw(settings: Settings, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Produce pre-encoded records with the pipeline's producer settings."""
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError(f"{topic}: records not delivered")


def read_raw(settings: Settings, topic: str, *, batch: int = 10_000) -> Iterator[list[Raw]]:
    """Every record of a topic, from the beginning to the high watermarks, in batches."""
    consumer = Consumer(
        consumer_config(
            settings,
            f"{settings.topic_prefix}.bench-reader",
            **{
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 8 * 1024 * 1024,
            },
        )
    )
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        remaining = {p for p, high in ends.items() if high > 0}
        while remaining:
            messages: list[Message] = consumer.consume(batch, timeout=1.0)
            out: list[Raw] = []
            for msg in messages:
                if msg.error() is not None:
                    raise RuntimeError(str(msg.error()))
                p, offset = msg.partition() or 0, msg.offset() or 0
                out.append((msg.key(), msg.value() or b"", msg.timestamp()[1]))
                if offset + 1 >= ends[p]:
                    remaining.discard(p)
            if out:
                yield out
    finally:
        consumer.close()


# the replay path ---------------------------------------------------------------------------


@dataclass
class ReplayResult:
    votes: int
    decode_seconds: float
    fold_seconds: float
    labels: dict[str, tuple[str, str]]
    """label_id -> (comment_id, label)"""


def replay_folds(batches: Iterator[list[bytes]], *, keep_labels: bool = False) -> ReplayResult:
    """Decode batches and run them through consensus then labels, in process, timing each part.

    The caller orders the batches (schemas, then tasks, then votes, then adjudications): a
    rebuild chooses its order, so no vote waits for its task.
    """
    consensus, labels = ConsensusFold(ConsensusConfig()), LabelsFold()
    decode_s = fold_s = 0.0
    votes = 0
    committed: dict[str, tuple[str, str]] = {}
    offset = 0
    for batch in batches:
        t0 = time.perf_counter()
        events = [decode(v) for v in batch]
        t1 = time.perf_counter()
        for event in events:
            position = LogPosition(topic="replay", partition=0, offset=offset)
            offset += 1
            votes += isinstance(event, VoteCast)
            for out in consensus.apply(event, position):
                if isinstance(out, Event):
                    for label in labels.apply(out, position):
                        if keep_labels and isinstance(label, LabelCommitted):
                            committed[label.label_id] = (label.comment_id, label.label)
            if not isinstance(event, VoteCast | TaskCreated):
                for label in labels.apply(event, position):
                    if keep_labels and isinstance(label, LabelCommitted):
                        committed[label.label_id] = (label.comment_id, label.label)
        decode_s += t1 - t0
        fold_s += time.perf_counter() - t1
    return ReplayResult(votes, decode_s, fold_s, committed)


# processes ---------------------------------------------------------------------------------


def _make_fold(kind: str, n_comments: int) -> Fold:
    from labeltrail.folds.tasking import TaskingConfig, TaskingFold
    from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators

    if kind == "tasking":
        # The honeypot rate holds when the config knows the gold set's size. Tasking waits
        # for the whole pool (as the demo does): else whom it picks for the first tasks
        # depends on how many registrations it happened to read before them, and two runs
        # of the same platform (fused and separate) assign other annotators.
        config = PlatformConfig.sized(n_comments)
        return TaskingFold(
            TaskingConfig(
                gold_set_size=config.n_gold,
                min_crowd_pool=config.n_crowd,
                min_expert_pool=config.n_experts,
            )
        )
    if kind == "annotators":
        return SimulatedAnnotators(Platform(PlatformConfig.sized(n_comments)))
    if kind == "consensus":
        return ConsensusFold(ConsensusConfig())
    if kind == "labels":
        return LabelsFold()
    raise ValueError(kind)


FUSED_KINDS = ("tasking", "consensus", "labels")
"""The stages the benchmark's fused process runs (the simulated annotators stay outside)."""


def _make_runner(kind: str, n_comments: int, settings: Settings) -> StageRunner:
    """A StageRunner of one stage, or for ``fused`` the FusedRunner of ``FUSED_KINDS``."""
    from labeltrail.kafka.fused import FusedFold, FusedRunner, Member
    from labeltrail.stages import STAGES

    if kind != "fused":
        return StageRunner(_make_fold(kind, n_comments), settings)
    members = tuple(Member(_make_fold(k, n_comments), STAGES[k].writes) for k in FUSED_KINDS)
    return FusedRunner(FusedFold(members), settings)


def stage_process(
    kind: str,
    settings_json: str,
    n_comments: int,
    stop: MpEvent,
    ready: MpEvent,
    caught_up: MpEvent,
    consumed: Synchronized[int],
    cpu_seconds: Synchronized[float] | None = None,
    emitted: Synchronized[int] | None = None,
    cpu_at_start: Synchronized[float] | None = None,
) -> None:
    """One StageRunner in its own process; mirrors its progress (and, if given, the process's
    CPU time and the records it produced) into shared values.

    With ``LABELTRAIL_BENCH_PROFILE=<dir>`` the runner thread runs under cProfile (timed in
    the thread's CPU time) and its stats are written to ``<dir>/<kind>-<pid>.prof`` when the
    stage stops. ``cpu_at_start`` gets the process's CPU time once the runner is built (imports
    and start-up before it), so the CPU a stage spends on its records is the difference.
    ``kind`` ``fused`` runs the stages of ``FUSED_KINDS`` in one FusedRunner.
    """
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.model_validate_json(settings_json)
    runner = _make_runner(kind, n_comments, settings)
    if cpu_at_start is not None:
        cpu_at_start.value = time.process_time()
    local_stop = threading.Event()
    profile_dir = os.environ.get("LABELTRAIL_BENCH_PROFILE")

    def run() -> None:
        if not profile_dir:
            runner.run(local_stop, idle_seconds=0.5)
            return
        # cProfile sees only the thread that enables it: profile the runner's own thread, in
        # that thread's CPU time (wall time on a loaded machine is mostly waiting to run).
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        try:
            runner.run(local_stop, idle_seconds=0.5)
        finally:
            profiler.disable()
            profiler.dump_stats(os.path.join(profile_dir, f"{kind}-{os.getpid()}.prof"))

    thread = threading.Thread(target=run, name=f"runner-{kind}")
    thread.start()
    ready.set()
    try:
        while not stop.is_set() and thread.is_alive():
            if runner.caught_up.is_set():
                caught_up.set()
            else:
                caught_up.clear()
            consumed.value = runner.stats.consumed
            if emitted is not None:
                emitted.value = runner.stats.emitted + runner.stats.rejected
            if cpu_seconds is not None:
                cpu_seconds.value = time.process_time()
            time.sleep(0.05)
    finally:
        local_stop.set()
        thread.join(30)
        consumed.value = runner.stats.consumed
        if emitted is not None:
            emitted.value = runner.stats.emitted + runner.stats.rejected
        if cpu_seconds is not None:
            cpu_seconds.value = time.process_time()


def faust_passthrough(settings_json: str, source: str, sink: str, ready: MpEvent) -> None:
    """The bare faust peer: one agent forwarding raw key and value, faust's defaults otherwise
    (root logger set to WARNING, as the infra notes advise)."""
    import faust

    settings = Settings.model_validate_json(settings_json)
    app = faust.App(
        f"{source}.faust-peer",
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        datadir=f"/tmp/labeltrail-faust/{source}.faust-peer",
    )
    out = app.topic(sink, key_type=bytes, value_type=bytes)

    @app.agent(app.topic(source, key_type=bytes, value_type=bytes))
    async def forward(stream: Any) -> None:
        async for event in stream.events():
            await out.send(key=event.key, value=event.value)

    async def quiet() -> None:
        logging.getLogger().setLevel(logging.WARNING)
        ready.set()

    app.task(quiet)

    import pathlib

    pathlib.Path(app.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(app, loglevel=logging.WARNING, quiet=True)
    with contextlib.suppress(SystemExit):
        worker.execute_from_commandline()


def confluent_passthrough(
    settings_json: str,
    source: str,
    sink: str,
    expected: int,
    ready: MpEvent,
    cpu_seconds: Synchronized[float] | None = None,
) -> None:
    """The raw peer: consume(1000) -> Avro decode -> encode -> produce, murmur2 partitioner.
    With ``cpu_seconds``, the process's CPU time from its first record to its last flush."""
    settings = Settings.model_validate_json(settings_json)
    consumer = Consumer(consumer_config(settings, f"{source}.confluent-peer"))
    producer = Producer(producer_config(settings))
    consumer.subscribe([source])
    ready.set()
    done = 0
    started: float | None = None
    try:
        while done < expected:
            for msg in consumer.consume(1000, timeout=0.5):
                if started is None:
                    started = time.process_time()
                if msg.error() is not None:
                    continue
                value = encode(decode(msg.value() or b""))
                while True:
                    try:
                        producer.produce(sink, value=value, key=msg.key())
                        break
                    except BufferError:
                        producer.poll(0.05)
                done += 1
            producer.poll(0)
        producer.flush(60)
        if cpu_seconds is not None and started is not None:
            cpu_seconds.value = time.process_time() - started
    finally:
        consumer.close()


def emit(
    figure: str,
    value: float,
    unit: str,
    peer: str | None,
    peer_value: float | None,
    *,
    higher: bool = True,
) -> None:
    """Print one figure as the benchmarks' JSON line (ratio > 1: ours is better; with
    ``higher=False`` lower values are better; peer fields null when there is no peer)."""
    ratio: float | None = None
    if peer_value is not None:
        ratio = 0.0
        if value and peer_value:
            ratio = value / peer_value if higher else peer_value / value
    print(
        json.dumps(
            {
                "figure": figure,
                "value": round(value, 3),
                "unit": unit,
                "peer": peer,
                "peer_value": None if peer_value is None else round(peer_value, 3),
                "ratio": None if ratio is None else round(ratio, 3),
            }
        ),
        flush=True,
    )


def broker_cpu_seconds() -> float | None:
    """CPU time (user + system) of the local broker's JVM so far, if it runs on this machine
    (``ops/kafka/local_kafka.py``; ``LABELTRAIL_BENCH_BROKER_PID``: a broker of another state
    directory); None otherwise."""
    pid_file = Path(__file__).resolve().parents[2] / "var" / "kafka" / "broker.pid"
    try:
        pid = int(os.environ.get("LABELTRAIL_BENCH_BROKER_PID") or pid_file.read_text().strip())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return None
    # Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the ")" of field 2.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed_schema(settings: Settings) -> None:
    produce_raw(
        settings,
        topic_name(settings.topic_prefix, "schemas"),
        [(b"v3", encode(moderation_schema_v3()))],
    )


def record_count(settings: Settings, topic: str) -> int:
    """The records on a topic (the sum of its partitions' high watermarks; 0 if missing)."""
    consumer = Consumer(consumer_config(settings, f"{topic}.count"))
    try:
        md = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return 0
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in md.partitions
        )
    finally:
        consumer.close()


def ensure_history(base: Settings, n_comments: int, seed: int) -> Settings:
    """The synthetic history's topics (shared by streaming.py and replay.py), written if missing."""
    settings = base.model_copy(update={"topic_prefix": f"bench-history-s{seed}-n{n_comments}"})
    votes = topic_name(settings.topic_prefix, "votes")
    if record_count(settings, votes) >= 3 * n_comments:
        note(f"history: reusing {votes}")
        return settings
    if record_count(settings, votes):
        raise SystemExit(f"{votes} holds a partial history: delete its topics and rerun")
    ensure_topics(settings)
    seed_schema(settings)
    started = time.perf_counter()
    for chunk in synthetic_history(n_comments, seed=seed):
        by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {"votes": [], "tasks": []}
        for event in chunk:
            suffix = "votes" if isinstance(event, VoteCast) else "tasks"
            by_topic[suffix].append((event.key.encode(), encode(event)))
        for suffix, records in by_topic.items():
            produce_raw(settings, topic_name(settings.topic_prefix, suffix), records)
    note(f"history: wrote {4 * n_comments} events in {time.perf_counter() - started:.0f}s")
    return settings
