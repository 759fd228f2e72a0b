"""Erasure on the real broker and the real ClickHouse engine: the demo's pipeline over two
authors' comments, one author erased; then no plaintext of theirs in any topic, table or file,
while the other's text, and every vote and label, stay (``docs/erasure.md``)."""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import lz4.block
import pytest
from confluent_kafka import TopicPartition

from labeltrail.clickhouse.client import Client, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings
from labeltrail.events.crypto import ERASED, reveal_event
from labeltrail.events.models import CommentPosted, TaskAssigned
from labeltrail.export.build import create_export, verify_directory
from labeltrail.kafka.consumer import high_watermark, make_consumer
from labeltrail.kafka.keys import KafkaKeyStore, erase
from labeltrail.kafka.log import read_kinds
from labeltrail.sim import Platform, PlatformConfig, demo
from labeltrail.sim.demo import DEMO_DAYS, run_demo
from tests.cli.test_registry import _run as _cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = PlatformConfig.sized(120, seed=11, days=DEMO_DAYS)


def _records(settings: Settings) -> Iterator[bytes]:
    """The key and value bytes of every record of every topic of the test's prefix."""
    consumer = make_consumer(settings, f"{settings.topic_prefix}.scan")
    try:
        meta = consumer.list_topics(timeout=30)
        parts = [
            TopicPartition(name, p)
            for name, topic in meta.topics.items()
            if name.startswith(f"{settings.topic_prefix}.")
            for p in topic.partitions
        ]
        ends = {(tp.topic, tp.partition): high_watermark(consumer, tp) for tp in parts}
        wanted = {k: v for k, v in ends.items() if v > 0}
        consumer.assign([TopicPartition(t, p, 0) for (t, p) in wanted])
        read: dict[tuple[str, int], int] = {}
        while any(read.get(k, 0) < v for k, v in wanted.items()):
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error() is None:
                    read[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
                    yield (msg.key() or b"") + b"\x00" + (msg.value() or b"")
    finally:
        consumer.close()


def _in_topics(settings: Settings, needles: list[bytes]) -> set[bytes]:
    found: set[bytes] = set()
    for record in _records(settings):
        found.update(n for n in needles if n in record)
    return found


def _clickhouse_blocks(data: bytes) -> bytes:
    """A ClickHouse ``.bin`` file's blocks decompressed (16-byte checksum, method, compressed
    size with the 9-byte header, plain size, body); what is not such a file, as it is."""
    out, at = bytearray(), 0
    while at + 25 <= len(data):
        method = data[at + 16]
        compressed, plain = struct.unpack_from("<II", data, at + 17)
        body = data[at + 25 : at + 16 + compressed]
        if method == 0x82:
            out += lz4.block.decompress(body, uncompressed_size=plain)
        elif method == 0x02:
            out += body
        else:
            return data
        at += 16 + compressed
    return bytes(out) if at == len(data) else data


def _in_files(root: Path, needles: list[bytes]) -> set[bytes]:
    """Which needles are in any file under ``root``: its raw bytes, and ClickHouse's column
    files decompressed (compression can split a text into back-references)."""
    found: set[bytes] = set()
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".bin":
                data += _clickhouse_blocks(data)
            found.update(n for n in needles if n in data)
    return found


def _in_tables(client: Client, needles: list[bytes]) -> dict[bytes, list[str]]:
    """Which tables hold each needle in any column (rows read whole, searched here, so no
    needle is ever sent to ClickHouse)."""
    tables = [
        t
        for (t,) in client.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine LIKE '%MergeTree'"
        ).result_rows
    ]
    found: dict[bytes, list[str]] = {}
    for table in tables:
        for row in client.query(f"SELECT * FROM {table}").result_rows:
            text = repr(row).encode()
            for n in needles:
                if n in text or n.decode() in repr(row):
                    found.setdefault(n, []).append(table)
    return {n: sorted(set(t)) for n, t in found.items()}


def _counts(client: Client) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        int(client.query(f"SELECT count() FROM {t} FINAL").result_rows[0][0])
        for t in ("votes", "labels", "consensus")
    )


def _world() -> tuple[Platform, list[CommentPosted], list[CommentPosted]]:
    """The demo's world with every text made unique (so a search for it is exact), and two
    authors: A wrote a thread parent (its text travels as context in its replies' tasks) and
    three more comments, B three others."""
    platform = Platform(CONFIG)
    parents = sorted({p for c in platform.comments for p in c.event.parent_ids})
    others = [c.comment_id for c in platform.comments if c.slice != "thread_context"]
    authors = {parents[0]: "author-A"} | dict.fromkeys(others[:3], "author-A")
    authors |= dict.fromkeys(others[3:6], "author-B")
    platform.comments = [
        dataclasses.replace(
            c,
            event=c.event.model_copy(
                update={
                    "text": f"{c.event.text} #{c.comment_id}",
                    "author_hash": authors.get(c.comment_id, c.event.author_hash),
                }
            ),
        )
        for c in platform.comments
    ]
    platform._by_id = {c.comment_id: c for c in platform.comments}
    posted = [c.event for c in platform.comments]
    return (
        platform,
        [e for e in posted if e.author_hash == "author-A"],
        [e for e in posted if e.author_hash == "author-B"],
    )


def test_an_erased_author_leaves_no_plaintext_and_every_label_stays(
    pipeline_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pipeline_settings
    platform, a_comments, b_comments = _world()
    monkeypatch.setattr(demo, "Platform", lambda _config: platform)
    author_a = "author-A"
    a_texts = [e.text.encode() for e in a_comments]
    b_texts = [e.text.encode() for e in b_comments]

    with closing(client_from(settings)) as client:
        run_demo(settings, config=CONFIG, client=client, timeout=300)
        export = create_export(client, settings, schema_version="v3", out_dir=tmp_path / "x")
        before = _counts(client)
        # Sealed on the log: neither author's text is on any topic, not even in task copies.
        tasks = read_kinds(
            settings,
            [f"{settings.topic_prefix}.tasks.crowd", f"{settings.topic_prefix}.tasks.expert"],
            frozenset({"TaskAssigned"}),
        )
        copies = [t for t in tasks if isinstance(t, TaskAssigned) and t.context]
        assert copies, "no task carried thread context"
        assert not _in_topics(settings, a_texts + b_texts + [author_a.encode()])
        # Revealed in ClickHouse, and found by the file scan (a control for the check below).
        assert set(_in_tables(client, a_texts)) == set(a_texts)
        assert _in_files(tmp_path, a_texts + b_texts) == set(a_texts + b_texts)

        code, out = _cli(settings, "erase", "--author", "nobody-at-all")
        assert code == 2 and "no sealed comment of author 'nobody-at-all'" in out, out
        assert not read_kinds(
            settings, [f"{settings.topic_prefix}.erasures"], frozenset({"CommentsErased"})
        )

        erasure = erase(settings, author=author_a, actor="dpo-1", reason="request 42")
        assert sorted(erasure.comment_ids) == sorted(e.comment_id for e in a_comments)
        run_until_caught_up(Projector(client, settings), timeout=180)

        # ClickHouse: re-projected as erased, every copy; the other author untouched.
        rows = client.query(
            "SELECT comment_id, text, author_hash FROM comments FINAL "
            "WHERE comment_id IN {ids:Array(String)}",
            parameters={"ids": erasure.comment_ids},
        ).result_rows
        assert rows and all(t == ERASED and a == ERASED for _, t, a in rows), rows
        assert not _in_tables(client, [*a_texts, author_a.encode()])
        assert set(_in_tables(client, b_texts)) == set(b_texts)
        context = client.query(
            "SELECT count() FROM assignments FINAL WHERE has(context, {e:String})",
            parameters={"e": ERASED},
        ).result_rows[0][0]
        assert context > 0
        assert _counts(client) == before
        audited = client.query("SELECT actor, reason, comment_ids FROM erasures FINAL")
        assert audited.result_rows == [("dpo-1", "request 42", erasure.comment_ids)]

        # Files: no copy of the author's text anywhere under the test's directory (ClickHouse's
        # old parts included); the other author's text still there.
        assert not _in_files(tmp_path, a_texts)
        assert _in_files(tmp_path, b_texts) == set(b_texts)

        # One comment of B, through the command: only it goes.
        code, out = _cli(settings, "erase", "--comment", b_comments[0].comment_id)
        assert code == 0 and "erased 1 comment(s)" in out, out
        run_until_caught_up(Projector(client, settings), timeout=180)
        assert set(_in_tables(client, b_texts)) == set(b_texts[1:])
        assert _in_files(tmp_path, b_texts) == set(b_texts[1:])
        code, out = _cli(settings, "erase", "--comment", b_comments[0].comment_id)
        assert code == 2 and "erased already" in out, out

    # Topics: the raw bytes of every record carry neither text nor author id.
    assert not _in_topics(settings, [*a_texts, author_a.encode()])
    # The log reads it as erased, other comments as they were.
    posted = read_kinds(
        settings, [f"{settings.topic_prefix}.comments"], frozenset({"CommentPosted"})
    )
    keyring = KafkaKeyStore(settings)
    try:
        read = {
            e.comment_id: e
            for e in (reveal_event(p, keyring) for p in posted)
            if isinstance(e, CommentPosted)
        }
    finally:
        keyring.close()
    assert all(read[e.comment_id].text == ERASED for e in a_comments)
    assert all(read[e.comment_id].author_hash == ERASED for e in a_comments)
    assert read[b_comments[0].comment_id].text == ERASED
    assert all(read[e.comment_id].text == e.text for e in b_comments[1:])
    # An export made before still verifies, and says what is now erased.
    result = verify_directory(settings, Path(export.uri.removeprefix("file://")))
    assert result.erased
    assert result.ok, result.problems
    directory = Path(export.uri.removeprefix("file://"))
    lines = (directory / "rows.jsonl").read_text().splitlines()
    exported = {json.loads(line)["comment_id"] for line in lines if line}
    gone = {*erasure.comment_ids, b_comments[0].comment_id}
    assert set(result.erased) == exported & gone
