"""Benchmark: ``labeltrail relabel`` end to end (the log read included) against Crowd-Kit's same
method fitted on the same votes already in memory, in the same run.

    .venv/bin/python ops/bench/relabel.py [--scale small|article] [--seed 5] [--comments N]
        [--dir /tmp/labeltrail-bench-relabel]

The history is ``streaming_parts.synthetic_history`` (a crowd task and 3 votes per comment,
300 annotators with accuracies in [0.65, 0.95]) with its labels: the consensus and labels folds
(``folds.batch.fold_rows``, the replay's batch path) commit it by majority vote with the
agreement gate at 0.3, so every item but a three-way split carries a crowd label. It is written
once to ``bench-relabel-s<seed>-n<comments>.*`` (schemas, tasks, votes, labels) and reused.

**Ours**, from each of the two sources ``labeltrail relabel --dry-run --source log|clickhouse``
reads, without the comments (slices are a report detail):

- ``log``: ``cli.relabel.read_history`` (the schemas, the labels and the votes read from the
  broker side by side, labels through ``events.columnar.decode_label_rows``, votes through
  ``events.columnar.decode_rows``), ``folds.relabel.labels_of_record`` and
  ``folds.relabel.relabel`` (the method fitted once over every item of the version);
- ``clickhouse``: the history's projection (made by ``clickhouse.rebuild`` into
  ``<dir>/<prefix>`` once, as setup, like the log write, and reused while it covers the log's
  ends; its DDL applied then, which fills ``label_votes`` in a projection made before it)
  opened and read by ``clickhouse.relabel.read_projected`` (the labels of record with their
  votes resolved from ``label_votes``, or where it cannot, labels of record chosen in
  ClickHouse, they and the votes fetched as narrow Arrow columns, joined by hash in the
  process; the labels' other fields are fetched only for rows shown or committed; stderr says
  which), then ``folds.relabel.relabel_columns``.

Each source's read is timed once and each method's computation apart; a method's end-to-end
time is the read plus its computation.

**Peer:** Crowd-Kit's ``MajorityVote`` and ``DawidSkene()`` (its defaults, n_iter=100,
tol=1e-5) fitted on the very votes the labels name, as a pandas DataFrame built before its
clock starts (votes already in memory). Our ``ds`` runs its defaults too (at most 100
iterations, tol=1e-5); the iteration counts are printed to stderr. The default method of
``quality.methods`` (when it is not ``ds``) is compared with Crowd-Kit's DawidSkene.

One JSON line per figure {"figure","value","unit","peer","peer_value","ratio"}, ratio > 1
means ours is better; sizes, load and the split of our time go to stderr. The log source's
figures are ``relabel_<method>_...``, the projection's ``relabel_<method>_..._clickhouse_...``;
each source's ratio is against the same peer fit of the same run.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from streaming_parts import (
    emit,
    note,
    produce_raw,
    record_count,
    seed_schema,
    synthetic_history,
)

from labeltrail.cli.relabel import read_history
from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.rebuild import rebuild
from labeltrail.clickhouse.relabel import covered_positions, projector_consumer, read_projected
from labeltrail.config import Settings
from labeltrail.events.models import VoteCast
from labeltrail.events.serde import encode
from labeltrail.events.topics import topic_name
from labeltrail.folds.batch import fold_rows
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.folds.labels import LabelRow, LabelsFold
from labeltrail.folds.relabel import Relabeling, labels_of_record, relabel, relabel_columns
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.log import end_positions
from labeltrail.ontology import moderation_schema_v3
from labeltrail.quality import methods

SCALES = {"small": 50_000, "article": 800_000}
THRESHOLD = 0.3


def ensure_history(base: Settings, n_comments: int, seed: int) -> Settings:
    """The history and its labels on ``bench-relabel-s<seed>-n<comments>.*``, written if
    missing."""
    settings = base.model_copy(update={"topic_prefix": f"bench-relabel-s{seed}-n{n_comments}"})
    labels_topic = topic_name(settings.topic_prefix, "labels")
    if record_count(settings, labels_topic):
        note(f"history: reusing {settings.topic_prefix}.*")
        return settings
    if record_count(settings, topic_name(settings.topic_prefix, "votes")):
        raise SystemExit(f"{settings.topic_prefix} holds a partial history: delete its topics")
    ensure_topics(settings)
    seed_schema(settings)
    consensus = ConsensusFold(ConsensusConfig(method="mv", agreement_threshold=THRESHOLD))
    labels = LabelsFold()
    _, _, offset = fold_rows([moderation_schema_v3()], consensus, labels, 0)
    started = time.perf_counter()
    n_labels = 0
    for chunk in synthetic_history(n_comments, seed=seed):
        by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {
            "tasks": [],
            "votes": [],
            "labels": [],
        }
        for event in chunk:
            suffix = "votes" if isinstance(event, VoteCast) else "tasks"
            by_topic[suffix].append((event.key.encode(), encode(event)))
        _, made, offset = fold_rows(chunk, consensus, labels, offset)
        for row in made:
            if isinstance(row, LabelRow):
                label = row.to_event()
                by_topic["labels"].append((label.key.encode(), encode(label)))
        n_labels += len(by_topic["labels"])
        for suffix, records in by_topic.items():
            produce_raw(settings, topic_name(settings.topic_prefix, suffix), records)
    note(
        f"history: wrote {4 * n_comments} events and {n_labels} labels in "
        f"{time.perf_counter() - started:.0f}s"
    )
    return settings


def ensure_projection(settings: Settings, root: Path) -> Settings:
    """The history's ClickHouse projection at ``root/<prefix>``, made by a rebuild (setup, not
    timed) unless the one there covers the log's ends of the topics a run reads."""
    directory = root / settings.topic_prefix
    projected = settings.model_copy(update={"clickhouse_dsn": f"chdb://{directory}"})
    topics = [topic_name(settings.topic_prefix, s) for s in ("schemas", "labels", "votes")]
    ends = {(p.topic, p.partition, p.offset) for p in end_positions(settings, topics) if p.offset}
    if directory.is_dir():
        client = client_from(projected)
        try:
            covered = covered_positions(client, projector_consumer(settings.topic_prefix), topics)
            if {(p.topic, p.partition, p.offset) for p in covered} == ends:
                # a projection made before label_votes gets it filled here (the migration)
                _, wall, cpu = _timed(lambda: apply_ddl(client))
                note(
                    f"projection: reusing {directory} (DDL applied in {wall:.1f}s, {cpu:.1f} CPU-s)"
                )
                return projected
        finally:
            client.close()
        shutil.rmtree(directory)
    result = rebuild(settings, projected.clickhouse_dsn)
    note(
        f"projection: {result.stats.projected} events into {directory} in "
        f"{result.seconds:.0f}s (setup)"
    )
    return projected


def _read_projection(settings: Settings) -> Any:
    client = client_from(settings)
    try:
        return read_projected(client, settings, slices=False)
    finally:
        client.close()


def _crowd_labels(run: Relabeling) -> dict[str, str]:
    """Each crowd item's label in the run (from the run's arrays, no row per item)."""
    out: dict[str, str] = {}
    for v in run.versions:
        out.update(
            zip(v.record.comment_ids[v.is_crowd].tolist(), v.new[v.is_crowd].tolist(), strict=True)
        )
    return out


def _peer_frame(record: dict[Any, Any], votes: list[Any]) -> Any:
    """The votes the labels name, as Crowd-Kit's DataFrame (task, worker, label)."""
    import pandas as pd

    by_id = {v.vote_id: v for v in votes}
    tasks, workers, answers = [], [], []
    for (comment, _), (label, _) in record.items():
        for vote_id in label.vote_ids:
            vote = by_id.get(vote_id)
            if vote is not None:
                tasks.append(comment)
                workers.append(vote.annotator_id)
                answers.append(vote.label)
    return pd.DataFrame({"task": tasks, "worker": workers, "label": answers})


def _timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--comments", type=int, default=0, help="override the scale's size")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--dir", type=Path, default=Path("/tmp/labeltrail-bench-relabel"), help="projections"
    )
    args = parser.parse_args()
    n = args.comments or SCALES[args.scale]
    settings = ensure_history(Settings(), n, args.seed)
    projected = ensure_projection(settings, args.dir)
    gc.disable()  # millions of small objects and no cycles (as ops/bench/replay.py)
    note(f"load average {os.getloadavg()}")
    history, read_wall, read_cpu = _timed(lambda: read_history(settings, slices=False))
    record = labels_of_record(history.labels)
    note(
        f"read {len(history.labels)} labels and {len(history.votes)} votes in {read_wall:.2f}s "
        f"wall, {read_cpu:.2f}s CPU (read and decode)"
    )
    columns, ch_wall, ch_cpu = _timed(lambda: _read_projection(projected))
    note(
        f"read the projection ({sum(len(r) for r, _ in columns.versions.values())} labels of "
        f"record, {sum(v.item.shape[0] for _, v in columns.versions.values())} votes named) in "
        f"{ch_wall:.2f}s wall, {ch_cpu:.2f}s CPU (open, query, Arrow to numpy; "
        f"{'label_votes' if columns.resolved else 'labels and votes joined'})"
    )
    frame = _peer_frame(record, history.votes)
    from crowdkit.aggregation import DawidSkene, MajorityVote

    default = getattr(methods, "DEFAULT_METHOD", "ds")
    cases = [("mv", MajorityVote, "MajorityVote()"), ("ds", DawidSkene, "DawidSkene()")]
    if default != "ds":
        cases.append((default, DawidSkene, "DawidSkene()"))
    tag = f"{args.scale if not args.comments else f'n{n}'}"
    for method, peer_cls, peer_name in cases:
        run, wall, cpu = _timed(lambda m=method: relabel(record, history.votes, history.classes, m))
        from_ch, ch_compute, ch_compute_cpu = _timed(
            lambda m=method: relabel_columns(columns.versions, columns.classes, m)
        )
        peer_model = peer_cls()
        peer_labels, peer_wall, peer_cpu = _timed(lambda p=peer_model: p.fit_predict(frame))
        ours_labels = _crowd_labels(run)
        if _crowd_labels(from_ch) != ours_labels:
            raise SystemExit(f"{method}: the two sources gave different labels")
        same = float(np.mean([ours_labels.get(t) == lab for t, lab in peer_labels.items()]))
        iterations = getattr(peer_model, "loss_history_", None)
        note(
            f"{method}: {run.votes} votes, {sum(len(v.record) for v in run.versions)} labels, "
            f"{sum(len(v.changed()) for v in run.versions)} changed; compute {wall:.2f}s wall "
            f"{cpu:.2f}s CPU (from the projection's columns {ch_compute:.2f}s wall); crowd-kit "
            f"{peer_name} {peer_wall:.2f}s wall {peer_cpu:.2f}s CPU"
            + (f", {len(iterations)} iterations" if iterations is not None else "")
            + f"; same label on {same:.4f} of the items; both sources the same labels"
        )
        peer = f"crowd-kit {peer_name} on the same votes in memory (fit_predict)"
        votes = run.votes
        for source, read, read_cpu_s, compute, compute_cpu in (
            ("", read_wall, read_cpu, wall, cpu),
            ("clickhouse_", ch_wall, ch_cpu, ch_compute, ch_compute_cpu),
        ):
            emit(
                f"relabel_{method}_votes_per_s_end_to_end_{source}{tag}",
                votes / (read + compute),
                "votes/s",
                peer,
                votes / peer_wall,
            )
            emit(
                f"relabel_{method}_votes_per_cpu_s_end_to_end_{source}{tag}",
                votes / (read_cpu_s + compute_cpu),
                "votes/CPU-s",
                peer,
                votes / peer_cpu,
            )
            emit(
                f"relabel_{method}_compute_votes_per_s_{source}{tag}",
                votes / compute,
                "votes/s",
                peer,
                votes / peer_wall,
            )
        emit(f"relabel_{method}_same_label_as_peer_{tag}", same, "fraction", None, None)


if __name__ == "__main__":
    main()
