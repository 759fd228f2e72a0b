"""The top-level commands (demo, ingest, topics, gold) and the root app the groups join."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from labeltrail.cli.common import console, err, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

if TYPE_CHECKING:
    from labeltrail.gold import GoldItem
    from labeltrail.kafka.producer import EventProducer

app = typer.Typer(help="labeltrail: an event-sourced labeling pipeline.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit queries, read from ClickHouse.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
gold_app = typer.Typer(help="The gold set that honeypots are made from.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(topics_app, name="topics")
app.add_typer(gold_app, name="gold")


@app.command()
def demo(
    comments: Annotated[
        int | None, typer.Option(help="Comments to simulate [default: the demo's 6,000].")
    ] = None,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
    timeout: Annotated[float, typer.Option(help="Seconds before giving up.")] = 900.0,
) -> None:
    """Run the simulated platform through the real broker into ClickHouse, then trace."""
    from labeltrail.clickhouse.client import shown_dsn
    from labeltrail.sim import PlatformConfig
    from labeltrail.sim.demo import DEMO_COMMENTS, DEMO_DAYS, run_demo

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
            config=PlatformConfig.sized(
                DEMO_COMMENTS if comments is None else comments, seed=seed, days=DEMO_DAYS
            ),
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
    from labeltrail.kafka.keys import seal_comments
    from labeltrail.kafka.producer import EventProducer

    settings = Settings()
    lines = _read_lines(path)
    require_kafka(settings)
    producer = EventProducer(settings)
    try:
        events = parse_comments(lines, fits=producer.fits)
    except LabeltrailError as exc:
        raise fail(exc, 2) from exc
    try:
        for event in seal_comments(settings, events):
            producer.send(event)
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
    _send_gold(settings, producer, items, post=post)
    console.print(f"published {len(items)} gold item(s) to set {gold_set!r}")


def _send_gold(
    settings: Settings, producer: EventProducer, items: list[GoldItem], *, post: bool = False
) -> None:
    """Each item's verdict to adjudications and gold, its comment to gold (and with ``post``
    to comments), flushed."""
    from labeltrail.events.topics import topic_name
    from labeltrail.kafka.keys import seal_comments

    gold = topic_name(settings.topic_prefix, "gold")
    try:
        comments = seal_comments(settings, [item.comment for item in items])
        for item, comment in zip(items, comments, strict=True):
            producer.send(item.verdict)
            producer.send(item.verdict, topic=gold)
            producer.send(comment, topic=gold)
            if post:
                producer.send(comment)
        producer.flush()
    except LabeltrailError as exc:
        raise fail(exc) from exc


MinConfidence = Annotated[
    float,
    typer.Option(min=0.0, max=1.0, help="The least expert confidence a candidate may have."),
]
CANDIDATE_COLUMNS = ("comment_id", "schema_version", "label", "confidence", "reviewer_id", "text")


def _candidates(min_confidence: float, comment_ids: list[str]) -> list[dict[str, Any]]:
    from labeltrail.cli.audit import run_query

    return run_query("gold_candidates", min_confidence=min_confidence, comment_ids=comment_ids)


@gold_app.command("candidates")
def gold_candidates(
    min_confidence: MinConfidence = 0.9,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Items an expert adjudicated with a confident verdict (every verdict agreeing, the least
    confident at least --min-confidence) that are not in a gold set yet, from ClickHouse."""
    from labeltrail.audit import emit

    rows = _candidates(min_confidence, [])
    if as_json:
        for row in rows:
            row.pop("comment_payload")
    emit(rows, as_json=as_json, title="gold candidates", console=console, columns=CANDIDATE_COLUMNS)


@gold_app.command("promote")
def gold_promote(
    items: Annotated[list[str], typer.Argument(help="Comment ids of gold candidates.")],
    gold_set: Annotated[str, typer.Option("--set", help="The gold set's name.")] = "gold",
    min_confidence: MinConfidence = 0.9,
) -> None:
    """Add gold candidates to a gold set, as `gold publish` would: their verdicts to
    adjudications and gold, their comments (as posted) to gold. All or nothing: an id that is
    not a candidate is an error and nothing is published; promoting again adds nothing."""
    from labeltrail.gold import promoted
    from labeltrail.kafka.producer import EventProducer

    settings = Settings()
    rows = _candidates(min_confidence, sorted(set(items)))
    found = {row["comment_id"] for row in rows}
    missing = [item for item in dict.fromkeys(items) if item not in found]
    if missing:
        why = "no confident, agreeing expert verdict, or in gold already"
        for item in missing:
            err.print(f"{item}: not a gold candidate ({why})", markup=False, soft_wrap=True)
        n = len(set(items))
        raise fail(f"{len(missing)} of {n} item(s) not gold candidates; nothing published", 2)
    require_kafka(settings)
    producer = EventProducer(settings)
    promotions = [promoted(row, gold_set) for row in rows]
    _send_gold(settings, producer, promotions)
    console.print(f"promoted {len(promotions)} item(s) to gold set {gold_set!r}")


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
