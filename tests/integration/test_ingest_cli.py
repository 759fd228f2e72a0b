"""The producer CLI: valid comments reach the broker; invalid input is refused, loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.config import Settings
from labeltrail.events import CommentPosted, decode
from labeltrail.events.topics import topic_name
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.runner import consumer_config

GOOD = {
    "comment_id": "c-1f8a",
    "video_id": "v-3201",
    "author_hash": "9f2c",
    "text": "you're really not what we said you'd be lol",
    "source": "product_log",
    "posted_at": "2024-09-02T10:23:00+00:00",
    "parent_ids": ["c-0001"],
}


def _env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
    }


def _count(settings: Settings) -> list[CommentPosted]:
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.probe"))
    consumer.subscribe([topic_name(settings.topic_prefix, "comments")])
    out: list[CommentPosted] = []
    try:
        for _ in range(15):
            for msg in consumer.consume(100, timeout=0.3):
                if msg.error() is None:
                    event = decode(msg.value() or b"")
                    assert isinstance(event, CommentPosted)
                    out.append(event)
    finally:
        consumer.close()
    return out


@pytest.mark.integration
def test_valid_comments_are_produced(pipeline_settings: Settings, tmp_path: Path) -> None:
    ensure_topics(pipeline_settings)
    path = tmp_path / "comments.jsonl"
    second = {**GOOD, "comment_id": "c-2"}
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(second) + "\n")
    result = CliRunner().invoke(app, ["ingest", str(path)], env=_env(pipeline_settings))
    assert result.exit_code == 0, result.output
    assert "produced 2 comment(s)" in result.output
    produced = _count(pipeline_settings)
    assert sorted(e.comment_id for e in produced) == ["c-1f8a", "c-2"]
    assert produced[0].posted_at.isoformat() == "2024-09-02T10:23:00+00:00"


@pytest.mark.integration
def test_invalid_comments_are_refused_and_nothing_is_produced(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(pipeline_settings)
    lines = [
        json.dumps(GOOD),
        "{not json",
        json.dumps({**GOOD, "text": ""}),
        json.dumps({**GOOD, "source": "twitter"}),
        json.dumps({**GOOD, "posted_at": "2024-09-02T10:23:00"}),
        json.dumps({k: v for k, v in GOOD.items() if k != "video_id"}),
        json.dumps(["a", "list"]),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["ingest", str(path)], env=_env(pipeline_settings))
    assert result.exit_code == 2
    out = result.output
    assert "6 invalid comment(s), nothing produced" in out
    assert "line 2: not JSON" in out
    assert "line 3: text" in out
    assert "line 4: source" in out
    assert "line 5: posted_at" in out and "timezone" in out
    assert "line 6: video_id: Field required" in out
    assert "line 7: expected a JSON object" in out
    assert _count(pipeline_settings) == []


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "No such file" in result.output
