"""Replay a history from the local broker through the consensus and labels folds, in batches.

    .venv/bin/python ops/bench/replay.py [--scale small|article] [--workers N]
    .venv/bin/python ops/bench/replay.py --topics-prefix P      # a live run's own topics

The history is ``streaming_parts.synthetic_history`` (TaskCreated + 3 VoteCast per comment,
fixed seed), written once to ``bench-history-s<seed>-n<comments>.*`` (the topics
``ops/bench/streaming.py`` writes and reuses, 6 partitions) and read back with confluent-kafka
(``kafka.log.read_values``): the topics of ``folds.batch.REPLAY_TOPICS`` in turn, schemas,
tasks, votes, adjudications.

**Ours (batch path):** ``folds.batch.BatchReplay`` (what ``labeltrail replay labels`` runs):
``events.columnar.decode_rows`` per fetched batch (``kafka.log.read_values``), then
``ConsensusFold.apply_batch`` and ``LabelsFold.apply_batch`` (consensus outputs fed to labels at
consecutive offsets of a virtual ``labels-in`` topic). With ``--workers N`` each of N processes
replays the partitions ``p % N == i`` of the keyed topics (every worker reads the schemas):
consensus and labels are keyed by comment, so partitions are independent.

**Peers, in the same run, on the same records:**

- the per-event path (``serde.decode`` + ``ConsensusFold.apply`` + ``LabelsFold.apply``, as the
  StageRunner runs them) on a *sample*: the first ``--sample-tasks`` task records and
  ``--sample-votes`` vote records of partition 0 (the same comments' tasks and votes; the
  per-event path is too slow for the whole history at article scale).
  The batch path is run on the same sample and both must give the same outputs, event for event
  (ids included, ``recorded_at`` aside); every label of the sample must also be in the full
  batch run, with the same comment and class;
- a raw confluent-kafka read of the same topics (``streaming_parts.read_raw``), no decode.

Prints one JSON line per figure ({"figure","value","unit","peer","peer_value","ratio"}, ratio > 1
means ours is better); load average, sizes and the read/decode/fold split go to stderr.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streaming_parts import emit, ensure_history, note, read_raw, record_count

from labeltrail.config import Settings
from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import VoteCast
from labeltrail.events.serde import decode
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import SerializationError
from labeltrail.folds.base import Rejected
from labeltrail.folds.batch import (
    LABELS_IN,
    REPLAY_TOPICS,
    BatchReplay,
    Label,
    compare,
    consensus_only,
    labels_on_log,
)
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold, ConsensusRow, RequestRow
from labeltrail.folds.labels import LabelRow, LabelsFold
from labeltrail.kafka.log import end_positions, read_values

SPAWN = mp.get_context("spawn")
SCALES = {"small": 1_500, "article": 800_000}
Labels = dict[str, Label]
"""label_id -> (comment_id, label, route)"""


# the history on the broker ---------------------------------------------------------------------


def values_of(
    settings: Settings, topic: str, partitions: set[int] | None
) -> Generator[list[bytes], None, None]:
    """Record values of some partitions of a topic (all when ``None``), start to the end now,
    in fetched batches (``read_raw`` reads every partition)."""
    ends = end_positions(settings, [topic])
    yield from read_values(
        settings, [p for p in ends if partitions is None or p.partition in partitions]
    )


# the two paths ------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one replay did and how long each part took."""

    records: int = 0
    votes: int = 0
    read_s: float = 0.0
    """wall seconds waiting for fetched batches"""
    read_cpu: float = 0.0
    """CPU seconds of the replaying thread in the consumer calls (librdkafka's own fetch
    threads are not counted)"""
    decode_cpu: float = 0.0
    fold_cpu: float = 0.0
    """CPU seconds of the replaying thread (``time.thread_time``): on a loaded machine, wall
    time is mostly waiting for a core"""
    wall_s: float = 0.0
    labels: Labels = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    """dead-letter reason code -> count (decode errors and policy rejections)"""
    outputs: list[Any] = field(default_factory=list)
    """every consensus output, in order, when asked to keep them (for the equality check)"""
    label_outputs: list[Any] = field(default_factory=list)
    """every labels output, in order, likewise"""


def _batches(
    settings: Settings, partitions: set[int] | None, run: Run, limits: dict[str, int] | None
) -> Iterator[list[bytes]]:
    """The replay order: every topic of ``REPLAY_TOPICS`` in turn; read time goes to
    ``run.read_s``."""
    for suffix in REPLAY_TOPICS:
        topic = topic_name(settings.topic_prefix, suffix)
        left = None if limits is None else limits.get(suffix)
        source = values_of(settings, topic, None if suffix == "schemas" else partitions)
        while left is None or left > 0:
            t0, c0 = time.perf_counter(), time.thread_time()
            values = next(source, None)
            run.read_s += time.perf_counter() - t0
            run.read_cpu += time.thread_time() - c0
            if values is None:
                break
            if left is not None:
                values = values[:left]
                left -= len(values)
            run.records += len(values)
            yield values
        source.close()


def batch_path(
    batches: Iterator[list[bytes]], run: Run, *, keep: bool = False, config: ConsensusConfig
) -> Run:
    """``BatchReplay``: decode_rows + apply_batch, batch by batch (the two timed apart)."""
    replay = BatchReplay(ConsensusFold(config), LabelsFold(), keep=keep)
    for values in batches:
        t0 = time.thread_time()
        rows = replay.decode(values)
        t1 = time.thread_time()
        replay.fold(rows)
        run.decode_cpu += t1 - t0
        run.fold_cpu += time.thread_time() - t1
    return _ended(replay, run)


def _ended(replay: BatchReplay, run: Run) -> Run:
    """The folds drained; what they committed, rejected and (if kept) output, into ``run``."""
    replay.finish()
    run.votes += replay.votes
    run.labels.update(replay.commits)
    run.rejected.update(replay.rejected)
    run.outputs += replay.outputs
    run.label_outputs += replay.label_outputs
    return run


def per_event_path(
    batches: Iterator[list[bytes]], run: Run, *, keep: bool = False, config: ConsensusConfig
) -> Run:
    """serde.decode + apply, one event at a time (what the StageRunner does per record); the
    counts are kept by a ``BatchReplay`` whose batch methods are not called."""
    replay = BatchReplay(ConsensusFold(config), LabelsFold(), keep=keep)
    consensus, labels = replay.consensus, replay.labels
    position = LogPosition(topic="replay", partition=0, offset=0)
    for values in batches:
        t0 = time.thread_time()
        events: list[Event] = []
        for value in values:
            try:
                events.append(decode(value))
            except SerializationError as exc:
                replay.rejected[exc.reason_code] += 1
        t1 = time.thread_time()
        for event in events:
            replay.votes += isinstance(event, VoteCast)
            outs = consensus.apply(event, position)
            label_in: list[Event] = [o for o in outs if not isinstance(o, Rejected)]
            replay.rejected["policy_rejected"] += len(outs) - len(label_in)
            if not consensus_only(event):
                label_in.append(event)
            labelled: list[Any] = []
            for out in label_in:
                at = LogPosition(topic=LABELS_IN, partition=0, offset=replay.offset)
                labelled += labels.apply(out, at)
                replay.offset += 1
            replay.count(labelled)
            if keep:
                replay.outputs += outs
                replay.label_outputs += labelled
        run.decode_cpu += t1 - t0
        run.fold_cpu += time.thread_time() - t1
    return _ended(replay, run)


def comparable(out: object) -> object:
    """An output as data: rows materialised, events without the run's wall clock."""
    if isinstance(out, ConsensusRow | RequestRow | LabelRow):
        out = out.to_event()
    if isinstance(out, Event):
        data = out.model_dump()
        del data["envelope"]["recorded_at"]
        return (type(out).__name__, data)
    return out


def worker(settings_json: str, partitions: list[int] | None, method: str) -> Run:
    """One batch replay over some partitions (a process of its own with ``--workers``)."""
    gc.disable()  # as in main(): spawned workers do not inherit it
    settings = Settings.model_validate_json(settings_json)
    run = Run()
    started = time.perf_counter()
    parts = None if partitions is None else set(partitions)
    batch_path(_batches(settings, parts, run, None), run, config=ConsensusConfig(method=method))
    run.wall_s = time.perf_counter() - started
    return run


def _partitions(settings: Settings) -> list[int]:
    return [
        p.partition for p in end_positions(settings, [topic_name(settings.topic_prefix, "votes")])
    ]


def full_batch(settings: Settings, workers: int, method: str) -> tuple[Run, float]:
    """The whole history through the batch path; (merged run, wall seconds end to end)."""
    started = time.perf_counter()
    if workers == 1:
        runs = [worker(settings.model_dump_json(), None, method)]
    else:
        parts = _partitions(settings)
        shares = [[p for p in parts if p % workers == i] for i in range(workers)]
        with SPAWN.Pool(workers) as pool:
            runs = pool.starmap(worker, [(settings.model_dump_json(), s, method) for s in shares])
    wall = time.perf_counter() - started
    merged = Run()
    for r in runs:
        merged.records += r.records
        merged.votes += r.votes
        merged.read_s += r.read_s
        merged.read_cpu += r.read_cpu
        merged.decode_cpu += r.decode_cpu
        merged.fold_cpu += r.fold_cpu
        merged.rejected.update(r.rejected)
        overlap = set(merged.labels) & set(r.labels)
        if overlap:
            raise SystemExit(f"{len(overlap)} labels committed by two workers")
        merged.labels.update(r.labels)
    for i, r in enumerate(runs):
        note(
            f"worker {i}: {r.votes} votes, {r.records} records in {r.wall_s:.1f}s "
            f"(read wait {r.read_s:.1f}s; CPU: read {r.read_cpu:.1f}s, decode "
            f"{r.decode_cpu:.1f}s, fold {r.fold_cpu:.1f}s)"
        )
    return merged, wall


def raw_read(settings: Settings) -> tuple[int, float]:
    """The confluent-kafka peer: every record of the replayed topics, read and dropped."""
    started = time.perf_counter()
    records = 0
    for suffix in REPLAY_TOPICS:
        topic = topic_name(settings.topic_prefix, suffix)
        if record_count(settings, topic):
            for batch in read_raw(settings, topic, batch=20_000):
                records += len(batch)
    return records, time.perf_counter() - started


# main ---------------------------------------------------------------------------------------------


def sample_check(
    settings: Settings, limits: dict[str, int], method: str, full: Labels
) -> tuple[Run, Run]:
    """Both paths on the same sample: identical outputs; the sample's labels within ``full``.

    The sample is read once and fed to both paths: Kafka keeps the order within a partition,
    not the interleaving of partitions, and outputs (and their offsets) follow that order.
    """
    config = ConsensusConfig(method=method)
    read = Run()
    # A sample from one partition: its first tasks and votes are those of the same comments
    # (the first records read across partitions need not be).
    sample = list(_batches(settings, {0} if limits else None, read, limits))
    slow = Run(read_s=read.read_s, read_cpu=read.read_cpu, records=read.records)
    fast = Run(read_s=read.read_s, read_cpu=read.read_cpu, records=read.records)
    per_event_path(iter(sample), slow, keep=True, config=config)
    batch_path(iter(sample), fast, keep=True, config=config)
    same_outputs = all(
        [comparable(o) for o in ours] == [comparable(o) for o in theirs]
        for ours, theirs in ((fast.outputs, slow.outputs), (fast.label_outputs, slow.label_outputs))
    )
    note(
        f"sample: {slow.votes} votes, {len(slow.outputs) + len(slow.label_outputs)} outputs, "
        f"{len(slow.labels)} labels; "
        f"batch outputs identical to per-event: {same_outputs}; rejected {dict(slow.rejected)}"
    )
    if not slow.labels:
        raise SystemExit("the sample commits no label: it compares nothing")
    if not same_outputs or fast.labels != slow.labels or fast.rejected != slow.rejected:
        raise SystemExit("batch and per-event outputs differ on the sample")
    if full:
        missing = [k for k, v in slow.labels.items() if full.get(k) != v]
        if missing:
            raise SystemExit(f"{len(missing)} sample labels differ in the full batch run")
    emit(
        "sample labels equal, batch vs per-event path (share of per-event labels)",
        len(slow.labels) / max(len(slow.labels), 1),
        "share",
        "per-event path",
        1.0,
    )
    return slow, fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--method", default="reliability-weighted")
    parser.add_argument("--sample-tasks", type=int, default=20_000)
    parser.add_argument("--sample-votes", type=int, default=60_000)
    parser.add_argument("--topics-prefix", default=None, help="replay a live run's topics")
    args = parser.parse_args()
    base = Settings()
    note(f"load average={os.getloadavg()} cpus={os.cpu_count()} workers={args.workers}")

    if args.topics_prefix:
        settings = base.model_copy(update={"topic_prefix": args.topics_prefix})
    else:
        settings = ensure_history(base, SCALES[args.scale], args.seed)

    gc.disable()  # both paths: the folds' state makes no cycles, and gc's full passes over
    # millions of live rows cost ~20% of the CPU (docs/replay.md)
    run, wall = full_batch(settings, args.workers, args.method)
    note(
        f"batch: {run.votes} votes, {run.records} records, {len(run.labels)} labels, "
        f"rejected {dict(run.rejected)}; wall {wall:.1f}s (summed over workers: read wait "
        f"{run.read_s:.1f}s; CPU: read {run.read_cpu:.1f}s, decode {run.decode_cpu:.1f}s, "
        f"fold {run.fold_cpu:.1f}s); load average={os.getloadavg()}"
    )
    records, raw_s = raw_read(settings)
    note(f"raw read: {records} records in {raw_s:.1f}s; load average={os.getloadavg()}")
    limits = {"tasks": args.sample_tasks, "votes": args.sample_votes}
    if args.topics_prefix:
        limits = {}
    slow, fast = sample_check(settings, limits, args.method, run.labels)
    for name, r in (("per-event", slow), ("batch", fast)):
        note(
            f"sample, {name} path: {r.votes} votes, {r.records} records; read wait "
            f"{r.read_s:.1f}s; CPU: read {r.read_cpu:.1f}s, decode {r.decode_cpu:.1f}s, "
            f"fold {r.fold_cpu:.1f}s; load average={os.getloadavg()}"
        )
    n = slow.votes
    what = f"{args.workers} worker(s)"
    emit(
        f"replay votes/s end to end, batch path, whole history ({what}, wall clock)",
        run.votes / wall,
        "votes/s",
        f"per-event path end to end, sample of {n} votes (wall clock: read wait + CPU)",
        n / (slow.read_s + slow.decode_cpu + slow.fold_cpu),
    )
    emit(
        f"replay votes/s end to end, batch path, whole history ({what}, wall clock)",
        run.votes / wall,
        "votes/s",
        "confluent-kafka raw read of the same records, no decode (votes/s equivalent)",
        run.votes / raw_s,
    )
    emit(
        "replay votes per CPU-second (read + decode + folds), batch path, whole history",
        run.votes / (run.read_cpu + run.decode_cpu + run.fold_cpu),
        "votes/CPU-s",
        f"per-event path, sample of {n} votes",
        n / (slow.read_cpu + slow.decode_cpu + slow.fold_cpu),
    )
    emit(
        f"decode + folds votes per CPU-second, batch path, same sample of {n} votes",
        n / (fast.decode_cpu + fast.fold_cpu),
        "votes/CPU-s",
        "per-event path (serde.decode + apply), same sample",
        n / (slow.decode_cpu + slow.fold_cpu),
    )
    emit(
        "decode records per CPU-second, decode_rows, same sample",
        fast.records / fast.decode_cpu,
        "records/CPU-s",
        "serde.decode per record, same sample",
        slow.records / slow.decode_cpu,
    )
    emit(
        "folds votes per CPU-second, consensus+labels apply_batch, same sample",
        n / fast.fold_cpu,
        "votes/CPU-s",
        "consensus+labels apply per event, same sample",
        n / slow.fold_cpu,
    )
    if args.topics_prefix:
        live = labels_on_log(values_of(settings, topic_name(settings.topic_prefix, "labels"), None))
        result = compare(live, run.labels)
        note(f"live run {args.topics_prefix}: {result.summary()}")
        emit(
            "replay labels equal to the live run's LabelCommitted (share)",
            result.equal / max(result.read, 1),
            "share",
            "live run",
            1.0,
        )
        if not result.agree:
            raise SystemExit("replay labels differ from the live run's")


if __name__ == "__main__":
    main()
