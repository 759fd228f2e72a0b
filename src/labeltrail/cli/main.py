"""The top-level commands (demo, ingest, topics, gold) and the root app the groups join."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from labeltrail.cli.common import console, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

app = typer.Typer(help="labeltrail: an event-sourced labeling pipeline.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit queries, read from ClickHouse.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
gold_app = typer.Typer(help="The gold set that honeypots are made from.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(topics_app, name="topics")
app.add_typer(gold_app, name="gold")


@app.command()
def demo(
    comments: Annotated[int, typer.Option(help="Comments to simulate.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
    timeout: Annotated[float, typer.Option(help="Seconds before giving up.")] = 900.0,
) -> None:
    """Run the simulated platform through the real broker into ClickHouse, then trace."""
    from labeltrail.clickhouse.client import shown_dsn
    from labeltrail.sim import PlatformConfig
    from labeltrail.sim.demo import DEMO_DAYS, run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.monotonic()
    settings = Settings()
    clickhouse = shown_dsn(settings.clickhouse_dsn)  # an inline password is never printed
    console.print(
        f"kafka {settings.kafka_bootstrap_servers} . clickhouse {clickhouse} "
        f". topics {settings.topic_prefix}.*"
    )
    require_kafka(settings)
    try:
        result = run_demo(
            settings,
            config=PlatformConfig.sized(comments, seed=seed, days=DEMO_DAYS),
            timeout=timeout,
            progress=lambda m: console.print(f"[dim]- {time.monotonic() - t0:6.1f}s {m}[/]"),
        )
    except LabeltrailError as exc:
        raise fail(exc) from exc
    console.rule("summary")
    console.print(f"wall time {result.seconds:.1f}s; seed events produced {result.produced}")
    for name, stats in result.stage_stats.items():
        console.print(f"  {name:<15} " + " ".join(f"{k}={v}" for k, v in stats.items()))
    console.print(f"  projector       projected={result.projected}")
    console.print(
        "events in ClickHouse: "
        + ", ".join(f"{k}={v}" for k, v in sorted(result.table_counts.items()))
    )
    console.print(f"total {sum(result.table_counts.values())}; dead letters {result.dead_letters}")
    console.print(
        "labels by route: "
        + ", ".join(f"{k}={v}" for k, v in sorted(result.labels_by_route.items()))
    )
    console.print("label accuracy against the simulation's truth, by slice:")
    for slice_, (n, acc) in result.accuracy_by_slice.items():
        console.print(f"  {slice_:<18} n={n:<5} accuracy={acc:.3f}")
    console.print("blind-spot alerts (high agreement, low gold accuracy):")
    for window, start, slice_, agreement, gold in result.blind_spots or [("-", "", "", 0, 0)]:
        if window == "-":
            console.print("  none")
            break
        console.print(
            f"  {window} {start} slice={slice_} agreement={agreement:.2f} gold accuracy={gold:.2f}"
        )
    if result.reliability_moves:
        console.print("largest reliability moves (honeypot, gold and adjudication results):")
        for annotator, _method, previous, new in result.reliability_moves:
            console.print(f"  {annotator}: {previous:.2f} -> {new:.2f}")
    console.rule(f"labeltrail audit trace {result.trace_comment}")
    for line in result.trace:
        console.print(line, highlight=False, markup=False)


def _read_lines(path: str) -> list[bytes]:
    """The file's lines as bytes: each is decoded on its own, so a line that is not UTF-8 is
    reported with its number (and only \\n, \\r end a line, not the separators str knows)."""
    try:
        if path == "-":
            return sys.stdin.buffer.read().splitlines()
        return Path(path).read_bytes().splitlines()
    except OSError as exc:
        raise fail(exc, 2) from exc


@app.command()
def ingest(
    path: Annotated[str, typer.Argument(help="JSON-lines file of comments, or - for stdin.")],
) -> None:
    """Validate comments and produce them as CommentPosted; all or nothing."""
    from labeltrail.ingest import parse_comments
    from labeltrail.kafka.producer import EventProducer

    settings = Settings()
    lines = _read_lines(path)
    require_kafka(settings)
    producer = EventProducer(settings)
    try:
        events = parse_comments(lines, fits=producer.fits)
    except LabeltrailError as exc:
        raise fail(exc, 2) from exc
    for event in events:
        producer.send(event)
    try:
        producer.flush()
    except LabeltrailError as exc:
        raise fail(exc) from exc
    console.print(f"produced {len(events)} comment(s)")


@gold_app.command("publish")
def gold_publish(
    path: Annotated[
        str, typer.Argument(help="JSON-lines file of gold items (comment + verdict), or -.")
    ],
    gold_set: Annotated[str, typer.Option("--set", help="The gold set's name.")] = "gold",
    post: Annotated[
        bool, typer.Option("--post", help="Also post the comments (never ingested before).")
    ] = False,
) -> None:
    """Publish a gold set: verdicts to adjudications and gold, comments to gold; all or nothing.

    Each line is a comment as `labeltrail ingest` reads it, plus label, reviewer_id,
    schema_version and optional confidence and note. Publishing again adds nothing.
    """
    from labeltrail.events.topics import topic_name
    from labeltrail.gold import parse_gold
    from labeltrail.kafka.producer import EventProducer

    settings = Settings()
    lines = _read_lines(path)
    require_kafka(settings)
    producer = EventProducer(settings)
    try:
        items = parse_gold(lines, gold_set=gold_set, fits=producer.fits)
    except LabeltrailError as exc:
        raise fail(exc, 2) from exc
    gold = topic_name(settings.topic_prefix, "gold")
    for item in items:
        producer.send(item.verdict)
        producer.send(item.verdict, topic=gold)
        producer.send(item.comment, topic=gold)
        if post:
            producer.send(item.comment)
    try:
        producer.flush()
    except LabeltrailError as exc:
        raise fail(exc) from exc
    console.print(f"published {len(items)} gold item(s) to set {gold_set!r}")


@topics_app.command("create")
def topics_create() -> None:
    """Create every labeltrail topic that is missing (idempotent)."""
    from labeltrail.kafka.admin import ensure_topics

    settings = Settings()
    require_kafka(settings)
    try:
        result = ensure_topics(settings)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    for name, state in sorted(result.items()):
        console.print(f"{name}: {state}")


@topics_app.command("list")
def topics_list() -> None:
    """Every topic of the prefix: partitions, cleanup policy, retention, messages held
    (high minus low watermark; an upper bound on a compacted topic)."""
    from labeltrail.kafka.admin import describe_topics

    try:
        topics = describe_topics(Settings())
    except LabeltrailError as exc:
        raise fail(exc) from exc
    width = max([len("topic"), *(len(t.name) for t in topics)])
    rows = [("topic", "partitions", "cleanup", "retention.ms", "messages")]
    rows += [
        (t.name, str(t.partitions), t.cleanup_policy, t.retention_ms, str(t.messages))
        if t.exists
        else (t.name, "-", "-", "-", "missing: run labeltrail topics create")
        for t in topics
    ]
    for name, partitions, cleanup, retention, messages in rows:
        print(f"{name:<{width}}  {partitions:>10}  {cleanup:<8}  {retention:>13}  {messages:>9}")
