"""Benchmark the audit layer on the embedded engine (chdb): projection rate, trace latency,
label-as-of for every label, export create; time and peak memory of each.

    .venv/bin/python ops/bench/audit.py [--scale small|article|x3|x5|x10]
        [--dir /tmp/bench-audit] [--reuse] [--clone all|bulk]
        [--only trace,label-as-of,cli,export] [--max-rss-gb 8] [--baseline article.jsonl]

1. A synthetic history with the article's shape (3 crowd votes per comment, consensus updates,
   15% adjudicated, 5% honeypots; fixed seed) is built as event objects and Avro-encoded, then
   fed to ``BatchWriter.write_records`` in batches: the projector's real path (decode, typed
   rows, one Arrow insert per table, positions), without the Kafka read. The rate is events/s.
2. To reach the article's scale (800,000 comments, 2.4 million votes and what they cause), or
   N times it (``xN``: x10 is 8 million labels, about 106 million events), that projected
   sample is cloned inside ClickHouse with rewritten ids (INSERT ... SELECT), so every table
   holds the full volume (``--clone bulk``: only the tables label-as-of and the export read;
   trace is then not measured). ``--reuse`` skips 1 and 2 when ``--dir`` already holds a
   database (left by an earlier run at the same scale), to measure only the queries. Before
   measuring, the engine's background merges are let finish (chdb merges in the process that
   opened the directory: otherwise inside the first measured process).
3. Every part runs as its own process; its peak RSS (``/usr/bin/time``'s %M of that process) is
   a figure beside its time, and a watchdog kills it past ``--max-rss-gb`` (the machine is
   shared):
   - ``trace``: ``full_trace`` (the named queries trace + trace_links) for 60 random comments
     (p50, p95), interleaved per comment with the earlier formulations of both queries
     (``EARLIER_TRACE``, ``EARLIER_TRACE_LINKS`` below) in alternating order, checked to give
     the same rows.
   - ``label-as-of`` (up to the article's scale unless named: its peers hold every label in
     memory by design): the named query for all comments at one time, fetched as Arrow,
     beside its earlier formulation (an argMax over a wide tuple: ``ARGMAX_LABEL_AS_OF``
     below), both checked to return the same rows; then the CLI's ``--json`` as it is now
     (``stream_named``) beside what it did before (Arrow, sorted, Python rows, ``json.dumps``),
     both to /dev/null, checked to parse to the same rows for one comment.
   - ``export``: ``write_export`` (what ``labeltrail export create`` does once it has the log's
     end positions; the bench has no Kafka log, so the positions are the end of what the
     tables hold): rows read a range of comment ids at a time, rows.jsonl and rows.parquet
     written and hashed, the manifest.
   - ``cli``: ``labeltrail audit trace``, ``audit label-as-of all --json`` (to /dev/null) and
     ``audit label-as-of all --out labels.parquet``, each its own process end to end
     (start-up, opening the database, the query, the output).
4. ``--baseline``: the figures of an article run; each timed and memory figure is then also
   given as its growth over the article's (label-as-of ``--out`` against the goal of 5x).
5. The load average at the start and at the end (the machine is shared; latencies move with
   it).

Ends with one JSON object per figure per line:
{"figure", "value", "unit", "peer", "peer_value", "ratio"} (peer null where there is none;
ratio > 1: ours better).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from labeltrail.audit import to_jsonable
from labeltrail.cli.audit import LABEL_ORDER
from labeltrail.clickhouse.client import (
    apply_ddl,
    client_from,
    named_query,
    reference_query,
    run_named_arrow,
    stream_named,
)
from labeltrail.clickhouse.trace import causal_order, full_trace, link_parameters
from labeltrail.clickhouse.writer import BatchWriter, LogRecord
from labeltrail.config import Settings
from labeltrail.events import (
    AdjudicationRecorded,
    AdjudicationRequested,
    CommentPosted,
    CommentScored,
    ConsensusUpdated,
    Event,
    LabelCommitted,
    LogPosition,
    TaskAssigned,
    TaskCreated,
    VoteCast,
    encode,
)
from labeltrail.export.build import write_export
from labeltrail.ontology import moderation_schema_v3

CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]
SCALES = {
    "small": (4_000, 1),
    "article": (20_000, 40),
    "x3": (20_000, 120),
    "x5": (20_000, 200),
    "x10": (20_000, 400),
}
"""(sample comments, clones): article is the article's scale (800,000 labels); xN is N times it."""
T0 = dt.datetime(2024, 9, 2, tzinfo=dt.UTC)


def _comment(i: int, rng: random.Random) -> list[Event]:
    cid = f"c-{i:07d}"
    at = T0 + dt.timedelta(seconds=20 * i)
    truth = rng.choices(CLASSES, weights=[70, 15, 8, 5, 2])[0]
    out: list[Event] = [
        CommentPosted.create(
            producer="bench",
            id_parts=("c", cid),
            occurred_at=at,
            comment_id=cid,
            video_id=f"v-{i % 4000}",
            author_hash=f"{i % 9973:x}",
            text="a comment " * 4,
            posted_at=at,
            source="pool",
            attributes={"slice": rng.choice(["a", "b", "coded"])},
        ),
        CommentScored.create(
            producer="bench",
            id_parts=("s", cid),
            occurred_at=at,
            comment_id=cid,
            model_version="m1",
            classes=CLASSES,
            probabilities=[0.32, 0.0, 0.41, 0.27, 0.0],
            margin=0.09,
            route="annotate",
            threshold=0.1,
        ),
    ]
    task = TaskCreated.create(
        producer="bench",
        id_parts=("t", cid),
        occurred_at=at,
        task_id=f"t-{cid}",
        comment_id=cid,
        schema_version="v3",
        kind="crowd",
        reason="active_learning",
        questions=["q1", "q2", "q3", "q4"],
        redundancy=3,
    )
    out.append(task)
    annotators = rng.sample(range(240), 3)
    votes: list[VoteCast] = []
    for n, a in enumerate(annotators):
        aid = f"annotator_{a:03d}"
        out.append(
            TaskAssigned.create(
                producer="bench",
                id_parts=("a", cid, aid),
                occurred_at=at,
                task_id=task.task_id,
                assignment_id=f"as-{cid}-{aid}",
                comment_id=cid,
                annotator_id=aid,
                pool="crowd",
                schema_version="v3",
                questions=task.questions,
                text="a comment",
                cost_usd=0.04,
            )
        )
        label = truth if rng.random() < 0.8 else rng.choice(CLASSES)
        vote = VoteCast.create(
            producer="bench",
            id_parts=("v", cid, aid),
            occurred_at=at + dt.timedelta(minutes=n),
            vote_id=f"v-{cid}-{aid}",
            task_id=task.task_id,
            comment_id=cid,
            annotator_id=aid,
            schema_version="v3",
            label=label,
            answers={"q1": "no", "q2": "yes"},
            confidence=round(rng.random(), 2),
            time_spent_ms=5000,
        )
        votes.append(vote)
        out.append(vote)
        shares = [sum(v.label == c for v in votes) / len(votes) for c in CLASSES]
        out.append(
            ConsensusUpdated.create(
                producer="bench",
                id_parts=("cu", cid, n),
                occurred_at=vote.envelope.occurred_at,
                comment_id=cid,
                schema_version="v3",
                method="mv",
                classes=CLASSES,
                posterior=shares,
                label=CLASSES[shares.index(max(shares))],
                agreement=max(shares),
                vote_ids=[v.vote_id for v in votes],
                annotator_ids=[v.annotator_id for v in votes],
                votes_expected=3,
                status="collecting" if n < 2 else "passed",
            )
        )
    vote_ids = [v.vote_id for v in votes]
    label_fields: dict[str, Any] = dict(
        comment_id=cid,
        schema_version="v3",
        classes=CLASSES,
        vote_ids=vote_ids,
        annotator_ids=[v.annotator_id for v in votes],
        source_positions=[LogPosition(topic="bench.consensus", partition=0, offset=i)],
    )
    if rng.random() < 0.15:
        req = AdjudicationRequested.create(
            producer="bench",
            id_parts=("r", cid),
            occurred_at=at,
            request_id=f"r-{cid}",
            comment_id=cid,
            schema_version="v3",
            reason="low agreement",
            agreement=0.33,
            threshold=0.85,
            vote_ids=vote_ids,
        )
        adj = AdjudicationRecorded.create(
            producer="bench",
            id_parts=("adj", cid),
            occurred_at=at + dt.timedelta(days=1),
            adjudication_id=f"adj-{cid}",
            request_id=req.request_id,
            task_id=f"te-{cid}",
            comment_id=cid,
            schema_version="v3",
            reviewer_id=f"e-{i % 12:02d}",
            label=truth,
            confidence=0.95,
            note="escalate",
        )
        out += [
            req,
            adj,
            LabelCommitted.create(
                producer="bench",
                id_parts=("l", cid),
                occurred_at=adj.envelope.occurred_at,
                label_id=f"l-{cid}",
                label=truth,
                distribution=[0.95 if c == truth else 0.0125 for c in CLASSES],
                confidence=0.95,
                route="adjudication",
                method="expert-adjudication",
                adjudication_id=adj.adjudication_id,
                **label_fields,
            ),
        ]
    else:
        out.append(
            LabelCommitted.create(
                producer="bench",
                id_parts=("l", cid),
                occurred_at=votes[-1].envelope.occurred_at,
                label_id=f"l-{cid}",
                label=votes[0].label,
                distribution=[0.6, 0.4, 0, 0, 0],
                confidence=0.6,
                route="consensus",
                method="mv",
                **label_fields,
            )
        )
    return out


def _records(n_comments: int, seed: int) -> list[LogRecord]:
    rng = random.Random(seed)
    offsets: dict[str, int] = {}
    out = []
    events: list[Event] = [moderation_schema_v3()]
    for i in range(n_comments):
        events += _comment(i, rng)
    for e in events:
        topic = f"bench.{e.envelope.event_type}"
        offset = offsets.get(topic, 0)
        offsets[topic] = offset + 1
        out.append(LogRecord(topic, 0, offset, encode(e)))
    return out


ARGMAX_LABEL_AS_OF = reference_query("label_as_of_argmax")
"""label_as_of as it was before the window-function rewrite: the peer for its figure."""

EARLIER_TRACE = reference_query("trace_final")
"""trace as it was before the dedup by event id: the peer for its figure."""

EARLIER_TRACE_LINKS = reference_query("trace_links_cte")
"""trace_links as it was before the scalar link sets."""

_ID_COLUMNS = {
    "event_id",
    "comment_id",
    "task_id",
    "vote_id",
    "label_id",
    "adjudication_id",
    "request_id",
    "assignment_id",
    "causation_id",
    "correlation_id",
    "message_key",
}


BULK_TABLES = ("comments", "labels", "votes", "adjudications")
"""The tables label-as-of and the export read (``--clone bulk``)."""


def _clone(client: Any, copies: int, only: tuple[str, ...] = ()) -> None:
    """Copy every comment-keyed table (or those in ``only``) ``copies - 1`` more times with
    suffixed ids."""
    for (table,) in client.query("SHOW TABLES").result_rows:
        if table.startswith("v_") or table in ("consumer_positions", "label_schemas"):
            continue
        if only and table not in only:
            continue
        cols = client.query(f"DESCRIBE TABLE {table}").result_rows
        exprs = []
        for name, ctype, *_ in cols:
            if name in _ID_COLUMNS and "String" in ctype:
                exprs.append(f"if({name} = '', {name}, concat({name}, '~', toString(k))) AS {name}")
            elif name == "vote_ids":
                exprs.append(f"arrayMap(x -> concat(x, '~', toString(k)), {name}) AS {name}")
            else:
                exprs.append(name)
        client.command(
            f"INSERT INTO {table} SELECT {', '.join(exprs)} FROM {table} "
            f"CROSS JOIN (SELECT number + 1 AS k FROM numbers({copies - 1})) AS n",
            settings={"max_insert_threads": 1},
        )


def _figure(
    name: str,
    value: float,
    unit: str,
    peer: str | None = None,
    peer_value: float | None = None,
    ratio: float | None = None,
) -> dict[str, Any]:
    return {
        "figure": name,
        "value": round(value, 4),
        "unit": unit,
        "peer": peer,
        "peer_value": peer_value,
        "ratio": None if ratio is None else round(ratio, 3),
    }


def _build(
    client: Any, sample: int, copies: int, seed: int, only: tuple[str, ...] = ()
) -> tuple[int, float]:
    """Project the synthetic sample and clone it; (events projected, seconds)."""
    t = time.perf_counter()
    records = _records(sample, seed)
    print(
        f"built and encoded {len(records):,} events in {time.perf_counter() - t:.1f}s",
        file=sys.stderr,
    )
    writer = BatchWriter(client, "bench.projector")
    t = time.perf_counter()
    for start in range(0, len(records), 20_000):
        writer.project(records[start : start + 20_000])
    seconds = time.perf_counter() - t
    print(f"projected {len(records):,} events in {seconds:.1f}s", file=sys.stderr)
    if copies > 1:
        t = time.perf_counter()
        _clone(client, copies, only)
        print(f"cloned x{copies} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return len(records), seconds


def _earlier_trace(client: Any, comment: str) -> list[dict[str, Any]]:
    def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
        result = client.query(sql, parameters=params)
        return [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]

    own = causal_order(rows(EARLIER_TRACE, comment_id=comment))  # full_trace's order
    return own + causal_order(rows(EARLIER_TRACE_LINKS, **link_parameters(own))) if own else own


def _trace_figures(client: Any, seed: int, events: int) -> list[dict[str, Any]]:
    """The named queries against their earlier formulation, per comment, interleaved (the
    order alternates), both checked to give the same rows."""
    rng = random.Random(seed)
    ids = [
        r[0]
        for r in client.query(
            "SELECT comment_id FROM comments ORDER BY cityHash64(comment_id) LIMIT 200"
        ).result_rows
    ]
    full_trace(client, ids[0])  # warm
    _earlier_trace(client, ids[0])
    lat: list[float] = []
    earlier: list[float] = []
    for i, cid in enumerate(rng.sample(ids, min(60, len(ids)))):
        for which in (0, 1) if i % 2 else (1, 0):
            t = time.perf_counter()
            rows = full_trace(client, cid) if which == 0 else _earlier_trace(client, cid)
            (lat if which == 0 else earlier).append((time.perf_counter() - t) * 1000)
            assert rows, cid
        if i < 5 and full_trace(client, cid) != _earlier_trace(client, cid):
            raise SystemExit(f"trace and its earlier formulation disagree on {cid}")
    p50, p95 = statistics.median(lat), statistics.quantiles(lat, n=20)[18]
    e50, e95 = statistics.median(earlier), statistics.quantiles(earlier, n=20)[18]
    return [
        _figure(f"trace p50 ({events:,} events)", p50, "ms", "goal", 100.0, 100.0 / p50),
        _figure(
            f"trace p50 ({events:,} events)",
            p50,
            "ms",
            "earlier trace + trace_links (before)",
            round(e50, 4),
            e50 / p50,
        ),
        _figure(
            "trace p95", p95, "ms", "earlier trace + trace_links (before)", round(e95, 4), e95 / p95
        ),
    ]


def _earlier_cli_json(client: Any, params: dict[str, str], sink: Any) -> int:
    """What ``label-as-of --json`` did before it streamed: Arrow, sorted, Python rows, json."""
    key = [("comment_id", "ascending"), ("schema_version", "ascending")]
    rows = run_named_arrow(client, "label_as_of", **params).sort_by(key).to_pylist()
    sink.write(json.dumps(to_jsonable(rows), indent=1) + "\n")
    return len(rows)


def _label_as_of_figures(client: Any, labels: int) -> list[dict[str, Any]]:
    at = "2100-01-01 00:00:00.000"
    params = {"comment_id": "", "at": at, "schema_version": "v3", "time": "recorded"}
    sql = named_query("label_as_of")
    client.query_arrow(sql, parameters=params)  # warm
    arrow_s, argmax_s = [], []
    for _ in range(3):  # interleaved, so both see the same load
        t = time.perf_counter()
        table = client.query_arrow(sql, parameters=params)
        arrow_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        peer_table = client.query_arrow(ARGMAX_LABEL_AS_OF, parameters=params)
        argmax_s.append(time.perf_counter() - t)
    key = [("comment_id", "ascending"), ("schema_version", "ascending")]
    if not table.sort_by(key).equals(peer_table.sort_by(key)):
        raise SystemExit("label_as_of and its argMax formulation disagree")
    assert table.num_rows == labels
    # The CLI's --json: ClickHouse's own JSON (sorted there) against the earlier Python path,
    # both written to /dev/null, interleaved; the two must parse to the same rows.
    stream_s, earlier_s = [], []
    with open(os.devnull, "w") as null, open(os.devnull, "wb") as null_bytes:
        for _ in range(2):
            t = time.perf_counter()
            streamed = stream_named(
                client, "label_as_of", null_bytes, order_by=LABEL_ORDER, **params
            )
            stream_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            _earlier_cli_json(client, params, null)
            earlier_s.append(time.perf_counter() - t)
    small = {**params, "comment_id": "c-0000007"}
    buffer = io.BytesIO()
    stream_named(client, "label_as_of", buffer, order_by=LABEL_ORDER, **small)
    text = io.StringIO()
    _earlier_cli_json(client, small, text)
    if json.loads(buffer.getvalue()) != json.loads(text.getvalue()):
        raise SystemExit("the streamed JSON and the Python rows' JSON disagree")
    new, old = min(stream_s), min(earlier_s)
    print(f"streamed {streamed:,} bytes of JSON", file=sys.stderr)
    return [
        _figure(
            f"label-as-of all {table.num_rows:,} labels (Arrow)",
            statistics.median(arrow_s),
            "s",
            "goal",
            5.0,
            5.0 / statistics.median(arrow_s),
        ),
        _figure(
            f"label-as-of all {table.num_rows:,} labels (Arrow)",
            statistics.median(arrow_s),
            "s",
            "argMax formulation (before)",
            round(statistics.median(argmax_s), 4),
            statistics.median(argmax_s) / statistics.median(arrow_s),
        ),
        _figure(
            f"label-as-of all {labels:,} labels --json, streamed by ClickHouse (best of 2)",
            new,
            "s",
            "earlier CLI path: Arrow, sorted, Python rows, json.dumps (best of 2)",
            round(old, 4),
            old / new,
        ),
    ]


AT = "2100-01-01 00:00:00.000"
"""label-as-of and the export stand after every event of the history."""

GOAL_MB = 2048.0
"""Peak memory goal of label-as-of all and export create at ten times the article's scale."""


def _peak_mb(usage: Any) -> float:
    return float(usage.ru_maxrss) / 1024  # kilobytes on Linux


def _measured(
    args: list[str], *, env: dict[str, str], limit_gb: float, capture: bool = False
) -> tuple[bytes, float, float]:
    """Run ``args`` as its own process: (its stdout if ``capture``, wall seconds, peak RSS in
    MB).

    The peak is read by ``/usr/bin/time`` (``%M``), which starts the process from its own
    small one: a process started from this one would count this one's peak as its own (Linux
    carries the peak RSS of the address space a process replaces at exec). A watchdog kills
    the process past ``limit_gb`` of RSS (the machine is shared): the run then fails.
    """
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = os.path.join(tmp, "peak")
        out = open(os.path.join(tmp, "out"), "w+b") if capture else subprocess.DEVNULL  # noqa: SIM115
        timed = ["/usr/bin/time", "-f", "%M", "-o", peak_file, *args]
        proc = subprocess.Popen(timed, stdout=out, env=env)
        killed = threading.Event()

        def watch() -> None:
            while proc.poll() is None:
                try:
                    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as fh:
                        pids = [int(p) for p in fh.read().split()]
                    for pid in pids:
                        with open(f"/proc/{pid}/status") as fh:
                            kb = next(int(x.split()[1]) for x in fh if x.startswith("VmRSS:"))
                        if kb > limit_gb * 1024 * 1024:
                            killed.set()
                            os.kill(pid, signal.SIGKILL)
                except (OSError, StopIteration, ValueError):
                    pass
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = proc.wait()
        seconds = time.perf_counter() - t
        watcher.join()
        if killed.is_set():
            raise SystemExit(f"{' '.join(args[:6])}... passed {limit_gb} GB of RSS: killed")
        if code:
            raise SystemExit(f"{' '.join(args[:6])}... exited {code}")
        with open(peak_file) as fh:
            peak_mb = int(fh.read().split()[-1]) / 1024
        stdout = b""
        if capture:
            assert not isinstance(out, int)
            out.seek(0)
            stdout = out.read()
            out.close()
        return stdout, seconds, peak_mb


def _memory_figure(what: str, mb: float, goal: bool = False) -> dict[str, Any]:
    if goal:
        return _figure(f"{what}, peak RSS", mb, "MB", "goal", GOAL_MB, GOAL_MB / mb)
    return _figure(f"{what}, peak RSS", mb, "MB")


def _cli_figures(
    dsn: str, workdir: str, labels: int, limit_gb: float, trace: bool = True
) -> list[dict[str, Any]]:
    """The CLI as its own processes, end to end (start-up, opening the database, the query,
    the output): time and peak RSS of each."""
    cli = os.path.join(os.path.dirname(sys.executable), "labeltrail")
    env = {**os.environ, "LABELTRAIL_CLICKHOUSE_DSN": dsn}
    as_of = [cli, "audit", "label-as-of", "all", "--at", "2100-01-01", "--schema-version", "v3"]
    parquet = os.path.join(workdir, "labels.parquet")
    figures: list[dict[str, Any]] = []
    runs = [
        ("labeltrail audit trace c-0000007", [cli, "audit", "trace", "c-0000007"], False),
        (f"labeltrail audit label-as-of all --json, {labels:,} labels", [*as_of, "--json"], False),
        (
            f"labeltrail audit label-as-of all --out labels.parquet, {labels:,} labels",
            [*as_of, "--out", parquet],
            True,
        ),
    ]
    for what, args, goal in runs[0 if trace else 1 :]:
        _, seconds, mb = _measured(args, env=env, limit_gb=limit_gb)
        figures += [_figure(f"{what}, end to end", seconds, "s"), _memory_figure(what, mb, goal)]
    if pq.ParquetFile(parquet).metadata.num_rows != labels:
        raise SystemExit("labels.parquet does not hold one row per label")
    os.unlink(parquet)
    return figures


def _export_positions(client: Any) -> list[LogPosition]:
    """The end of every partition the history's labels, votes and adjudications came from:
    the positions of an export of all of it (the bench has no Kafka log)."""
    rows = client.query(
        "SELECT topic, partition, max(offset) + 1 FROM ("
        " SELECT topic, partition, offset FROM labels UNION ALL"
        " SELECT topic, partition, offset FROM votes UNION ALL"
        " SELECT topic, partition, offset FROM adjudications"
        ") GROUP BY topic, partition ORDER BY topic, partition"
    ).result_rows
    return [LogPosition(topic=t, partition=p, offset=o) for t, p, o in rows]


def _export_figures(client: Any, workdir: str, labels: int) -> list[dict[str, Any]]:
    """``write_export`` (what ``labeltrail export create`` does after reading the log's end
    positions): the rows from ClickHouse a range at a time, rows.jsonl and rows.parquet
    written and hashed, the manifest."""
    out = os.path.join(workdir, "exports")
    shutil.rmtree(out, ignore_errors=True)
    at = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    t = time.perf_counter()
    event = write_export(
        client,
        Path(out),
        schema_version="v3",
        as_of=at,
        positions=_export_positions(client),
    )
    seconds = time.perf_counter() - t
    size = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file())
    shutil.rmtree(out, ignore_errors=True)
    if event.row_count != labels:
        raise SystemExit(f"the export holds {event.row_count:,} rows, not {labels:,}")
    print(f"export {event.export_id}: {event.row_count:,} rows, {size:,} bytes", file=sys.stderr)
    return [_figure(f"export create (write_export), {labels:,} labels, in process", seconds, "s")]


def _settle(client: Any) -> float:
    """Wait until the engine has no merge running (chdb merges in the process that opened the
    directory: a freshly cloned history would otherwise be merged inside the first measured
    process, in its time and memory); the seconds waited."""
    t = time.perf_counter()
    quiet = 0
    while quiet < 3:
        time.sleep(1)
        busy = client.query("SELECT count() FROM system.merges").result_rows[0][0]
        quiet = 0 if busy else quiet + 1
    return time.perf_counter() - t


def _totals(client: Any) -> tuple[int, int, int, int]:
    row = client.query(
        "SELECT (SELECT count() FROM events), (SELECT count() FROM comments), "
        "(SELECT count() FROM votes), (SELECT count() FROM labels)"
    ).result_rows[0]
    return row[0], row[1], row[2], row[3]


def _child(part: str, args: argparse.Namespace) -> int:
    """One part's figures, measured in this process (the parent reads its peak RSS)."""
    client = client_from(Settings(), dsn=f"chdb://{args.dir}")
    totals = _totals(client)
    if part == "trace":
        figures = _trace_figures(client, args.seed, totals[0])
    elif part == "label-as-of":
        figures = _label_as_of_figures(client, totals[1])
    else:
        figures = _export_figures(client, args.dir, totals[3])
    client.close()
    for f in figures:
        print(json.dumps(f))
    return 0


IN_PROCESS = {
    "trace": "trace p50/p95 in process (60 comments, both formulations)",
    "label-as-of": "label-as-of all in process (Arrow, argMax peer, streamed JSON, earlier JSON)",
    "export": "export create (write_export) in process",
}
"""The parts measured inside a child process of the bench, by name: what its RSS figure says."""

HOLDS_EVERY_LABEL = {"label-as-of"}
"""Parts whose peers hold every label in memory by design (Arrow tables, Python rows): past the
article's scale they run only when --only names them."""


def _ratio_figures(
    figures: list[dict[str, Any]], baseline: str, scale: str
) -> list[dict[str, Any]]:
    """Each timed figure over the same figure at article scale (``--baseline``: the output of
    an article run); for label-as-of against the goal of 5x."""
    article: dict[str, float] = {}
    with open(baseline) as fh:
        for line in fh:
            f = json.loads(line)
            article.setdefault(_scale_free(f["figure"]), f["value"])
    out = []
    for f in figures:
        before = article.get(_scale_free(f["figure"]))
        if f["unit"] not in ("s", "MB") or before is None or f["peer"] is not None:
            continue
        growth = f["value"] / before
        name = f"{_scale_free(f['figure'])}: {scale} over article"
        if "label-as-of all --out" in name and f["unit"] == "s":
            out.append(_figure(name, growth, "x", "goal", 5.0, 5.0 / growth))
        else:
            out.append(_figure(name, growth, "x"))
    return out


def _scale_free(name: str) -> str:
    """A figure's name with its counts (``800,000 labels``) as ``N``, to match it across scales."""
    return re.sub(r"\d[\d,]* (labels|events)", r"N \1", name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--dir", default="/tmp/labeltrail-bench-audit")
    parser.add_argument("--seed", type=int, default=20240815)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database already in --dir (built by an earlier run at this scale)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated parts to measure: trace, label-as-of, cli, export (default: all; "
        "label-as-of only up to the article's scale)",
    )
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=8.0,
        help="kill a measured process past this RSS (the machine is shared)",
    )
    parser.add_argument(
        "--clone",
        choices=("all", "bulk"),
        default="all",
        help="clone every table (default), or only those label-as-of and the export read "
        f"({', '.join(BULK_TABLES)}): the others stay at the sample's size, trace is not measured",
    )
    parser.add_argument("--baseline", help="figures of an article run: add xN-over-article ratios")
    parser.add_argument("--child", choices=sorted(IN_PROCESS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args)
    sample, copies = SCALES[args.scale]
    large = copies > SCALES["article"][1]
    parts = (
        set(args.only.split(","))
        if args.only
        else {"trace", "cli", "export", *(() if large else HOLDS_EVERY_LABEL)}
    )
    if args.clone == "bulk":
        parts.discard("trace")
    load_start = os.getloadavg()
    figures: list[dict[str, Any]] = []
    if not args.reuse:
        shutil.rmtree(args.dir, ignore_errors=True)
    client = client_from(Settings(), dsn=f"chdb://{args.dir}")
    apply_ddl(client)
    if not args.reuse or not client.query("SELECT count() FROM events").result_rows[0][0]:
        t = time.perf_counter()
        only = BULK_TABLES if args.clone == "bulk" else ()
        projected, seconds = _build(client, sample, copies, args.seed, only)
        figures += [
            _figure(
                f"projection rebuild rate ({projected:,} events via BatchWriter)",
                projected / seconds,
                "events/s",
            ),
            _figure(f"build x{copies} (project and clone)", time.perf_counter() - t, "s"),
            _memory_figure(
                f"build x{copies} (project and clone)",
                _peak_mb(resource.getrusage(resource.RUSAGE_SELF)),
            ),
        ]
    print(f"merges settled in {_settle(client):.0f}s", file=sys.stderr)
    totals = _totals(client)
    print("events {:,} comments {:,} votes {:,} labels {:,}".format(*totals), file=sys.stderr)
    client.close()  # one process owns a chdb directory: each measured process opens it
    me = [sys.executable, os.path.abspath(__file__), "--dir", args.dir, "--seed", str(args.seed)]
    for part, what in IN_PROCESS.items():
        if part in parts:
            out, _, mb = _measured(
                [*me, "--child", part], env=dict(os.environ), limit_gb=args.max_rss_gb, capture=True
            )
            figures += [json.loads(line) for line in out.decode().splitlines()]
            figures.append(_memory_figure(what, mb, goal=part == "export"))
    if "cli" in parts:
        figures += _cli_figures(
            f"chdb://{args.dir}", args.dir, totals[1], args.max_rss_gb, args.clone == "all"
        )
    if args.baseline:
        figures += _ratio_figures(figures, args.baseline, args.scale)
    load_end = os.getloadavg()
    figures += [
        _figure("load average (1 min) at start", load_start[0], "load"),
        _figure("load average (1 min) at end", load_end[0], "load"),
    ]
    for f in figures:
        print(json.dumps(f))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
