"""Publishing a gold set: verdicts where the folds read them, comments on the gold topic."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from labeltrail.cli import app
from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.config import Settings
from labeltrail.events import AdjudicationRecorded, CommentPosted
from labeltrail.events.base import Event, LogPosition
from labeltrail.events.crypto import reveal_event
from labeltrail.folds.tasking import TaskingFold
from labeltrail.gold import InvalidGoldError, parse_gold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.keys import KafkaKeyStore
from tests.audit.history import project
from tests.folds.test_tasking_suspension import comment as posted
from tests.probes import read_topic

T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)

ITEM = {
    "comment_id": "g-1",
    "video_id": "v-9",
    "author_hash": "a1",
    "text": "people like you should know your place",
    "source": "pool",
    "posted_at": "2024-09-01T08:00:00+00:00",
    "label": "harassment",
    "reviewer_id": "e-01",
    "schema_version": "v3",
}
SECOND = {**ITEM, "comment_id": "g-2", "text": "lovely video", "label": "non-toxic"}


def _env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
    }


def _errors(lines: list[bytes | str], **kwargs: Any) -> str:
    with pytest.raises(InvalidGoldError) as info:
        parse_gold(lines, gold_set="g", **kwargs)
    return str(info.value)


def test_a_gold_line_becomes_a_gold_verdict_and_its_comment() -> None:
    (item,) = parse_gold([json.dumps(ITEM)], gold_set="2024-09")
    assert item.comment.comment_id == item.verdict.comment_id == "g-1"
    assert item.verdict.request_id == "gold:2024-09"  # the marker tasking and reliability read
    assert (item.verdict.label, item.verdict.confidence) == ("harassment", 1.0)
    (again,) = parse_gold([json.dumps(ITEM)], gold_set="2024-09")
    assert again.verdict.event_id == item.verdict.event_id
    assert again.comment.event_id == item.comment.event_id
    (other,) = parse_gold([json.dumps(ITEM)], gold_set="2024-10")
    assert other.verdict.event_id != item.verdict.event_id


def test_malformed_gold_lines_are_line_errors_not_tracebacks() -> None:
    lines: list[bytes | str] = [
        json.dumps(ITEM).encode(),
        b'{"comment_id": "\xff"}',
        "[" * 100_000 + "]" * 100_000,
        json.dumps({**SECOND, "comment_id": ["g-2"]}),  # not hashable: once a TypeError
        json.dumps({**SECOND, "id_parts": ["mine"]}),
        json.dumps({**SECOND, "attributes": {"blob": "x" * 50_000}}),
    ]
    message = _errors(lines, fits=lambda key, value: len(key) + len(value) < 10_000)
    assert "5 invalid gold item(s), nothing produced" in message
    assert "line 2: not UTF-8" in message
    assert "line 3: not accepted: JSON nested too deeply" in message
    assert "line 4: comment_id: Input should be a valid string" in message
    assert "line 5: 'id_parts': not a field of a gold item" in message
    assert "line 6: attributes: too large" in message


def test_invalid_gold_lines_are_all_reported() -> None:
    lines: list[bytes | str] = [
        json.dumps(ITEM),
        "{oops",
        json.dumps({k: v for k, v in ITEM.items() if k != "label"}),
        json.dumps({**SECOND, "confidence": 1.5}),
        json.dumps({**SECOND, "text": ""}),
        json.dumps({**ITEM, "text": "the same comment again"}),
    ]
    message = _errors(lines)
    assert "5 invalid gold item(s), nothing produced" in message
    assert "line 2: not JSON" in message
    assert "line 3: missing label" in message
    assert "line 4: confidence" in message
    assert "line 5: text" in message
    assert "line 6: comment g-1 is already in this gold set" in message


@pytest.mark.integration
def test_publish_reaches_the_folds_and_twice_adds_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(ITEM) + "\n" + json.dumps(SECOND) + "\n")
    for _ in range(2):
        result = CliRunner().invoke(
            app, ["gold", "publish", str(path), "--set", "s1"], env=_env(settings)
        )
        assert result.exit_code == 0, result.output
        assert "published 2 gold item(s)" in result.output

    gold = read_topic(settings, "gold")
    verdicts = read_topic(settings, "adjudications")
    assert read_topic(settings, "comments") == []  # without --post: on the gold topic only
    assert len(verdicts) == 4 and len({e.event_id for e in verdicts}) == 2
    assert (
        sorted(type(e).__name__ for e in gold)
        == ["AdjudicationRecorded"] * 4 + ["CommentPosted"] * 4
    )
    fold = TaskingFold()
    for offset, event in enumerate(gold):
        fold.apply(event, LogPosition(topic="gold", partition=0, offset=offset))
    assert fold.gold == {"g-1": "harassment", "g-2": "non-toxic"}
    assert set(fold.comments) == {"g-1", "g-2"}
    assert all(isinstance(e, AdjudicationRecorded) for e in verdicts)

    result = CliRunner().invoke(
        app, ["gold", "publish", str(path), "--set", "s1", "--post"], env=_env(settings)
    )
    assert result.exit_code == 0, result.output
    posted = read_topic(settings, "comments")
    assert sorted(e.comment_id for e in posted if isinstance(e, CommentPosted)) == ["g-1", "g-2"]


@pytest.mark.integration
def test_an_oversize_gold_item_among_good_ones_produces_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(pipeline_settings)
    good = [json.dumps({**ITEM, "comment_id": f"g-{i}"}) for i in range(20)]
    oversize = {**SECOND, "comment_id": "g-big", "attributes": {"blob": "x" * 2_000_000}}
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join([*good, json.dumps(oversize)]) + "\n")
    result = CliRunner().invoke(
        app, ["gold", "publish", str(path), "--post"], env=_env(pipeline_settings)
    )
    assert result.exit_code == 2, result.output
    assert "line 21: attributes: too large" in result.output
    for topic in ("gold", "adjudications", "comments"):
        assert read_topic(pipeline_settings, topic) == []


@pytest.mark.integration
def test_an_invalid_gold_file_produces_nothing(pipeline_settings: Settings, tmp_path: Path) -> None:
    ensure_topics(pipeline_settings)
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(ITEM) + "\n" + json.dumps({**SECOND, "label": None}) + "\n")
    result = CliRunner().invoke(app, ["gold", "publish", str(path)], env=_env(pipeline_settings))
    assert result.exit_code == 2
    assert "1 invalid gold item(s), nothing produced" in result.output
    assert "line 2: label" in result.output
    assert read_topic(pipeline_settings, "gold") == []
    assert read_topic(pipeline_settings, "adjudications") == []


# gold candidates: confident expert verdicts, promoted into a gold set ------------------------


def _verdict(cid: str, label: str, confidence: float, n: int = 1) -> AdjudicationRecorded:
    return AdjudicationRecorded.create(
        producer="annotate",
        id_parts=("adj", cid, n),
        occurred_at=T0 + dt.timedelta(hours=n),
        adjudication_id=f"adj-{cid}-{n}",
        request_id=f"r-{cid}",
        task_id=f"t-{cid}-{n}",
        comment_id=cid,
        schema_version="v3",
        reviewer_id=f"e-0{n}",
        label=label,
        confidence=confidence,
    )


@pytest.fixture
def adjudicated(pipeline_settings: Settings) -> Iterator[dict[str, Event]]:
    """ClickHouse (the test's chdb) holding: a confident verdict (c-sure), an unsure one (c-unsure),
    two experts who disagree (c-split), an item already in gold (g-1), a comment never
    adjudicated (c-none). The client stays open: chdb shares its path within a process."""
    comments = {
        cid: posted(cid, T0, "product_log") for cid in ("c-sure", "c-unsure", "c-split", "c-none")
    }
    (gold,) = parse_gold([json.dumps(ITEM)], gold_set="s0")
    events: list[Event] = [
        *comments.values(),
        _verdict("c-sure", "harassment", 0.95),
        _verdict("c-unsure", "mild", 0.6),
        _verdict("c-split", "harassment", 0.95),
        _verdict("c-split", "non-toxic", 0.97, n=2),
        gold.comment,
        gold.verdict,
        _verdict("g-1", "harassment", 0.99),
    ]
    client = client_from(pipeline_settings)
    apply_ddl(client)
    project(client, events)
    yield dict(comments)
    client.close()


def _cli(settings: Settings, *args: str) -> Result:
    env = {**_env(settings), "LABELTRAIL_CLICKHOUSE_DSN": settings.clickhouse_dsn}
    return CliRunner().invoke(app, ["gold", *args], env=env)


@pytest.mark.integration
def test_confident_agreeing_expert_verdicts_are_the_candidates(
    pipeline_settings: Settings, adjudicated: dict[str, Event]
) -> None:
    result = _cli(pipeline_settings, "candidates", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["comment_id"], row["label"], row["reviewer_id"]) == ("c-sure", "harassment", "e-01")
    assert row["confidence"] == 0.95 and row["text"] == "text of c-sure"
    result = _cli(pipeline_settings, "candidates", "--json", "--min-confidence", "0.5")
    assert sorted(r["comment_id"] for r in json.loads(result.output)) == ["c-sure", "c-unsure"]
    table = _cli(pipeline_settings, "candidates")
    assert table.exit_code == 0 and "c-sure" in table.output


@pytest.mark.integration
def test_promote_copies_the_posted_comment_and_the_verdict_into_the_gold_set(
    pipeline_settings: Settings, adjudicated: dict[str, Event]
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    # All or nothing: one id that is not a candidate, nothing published.
    refused = _cli(settings, "promote", "c-sure", "c-split", "c-none", "--set", "day2")
    assert refused.exit_code == 2, refused.output
    assert "c-split: not a gold candidate" in refused.output
    assert "c-none: not a gold candidate" in refused.output
    assert read_topic(settings, "gold") == [] and read_topic(settings, "adjudications") == []

    for _ in range(2):
        result = _cli(settings, "promote", "c-sure", "--set", "day2")
        assert result.exit_code == 0, result.output
        assert "promoted 1 item(s) to gold set 'day2'" in result.output
    gold = read_topic(settings, "gold")
    assert len({e.event_id for e in gold}) == 2  # promoting again added nothing new
    comment = next(e for e in gold if isinstance(e, CommentPosted))
    # the very event that was posted, sealed for erasure (docs/erasure.md)
    keyring = KafkaKeyStore(settings)
    try:
        assert reveal_event(comment, keyring) == adjudicated["c-sure"]
    finally:
        keyring.close()
    verdict = next(e for e in read_topic(settings, "adjudications"))
    assert isinstance(verdict, AdjudicationRecorded)
    assert verdict.request_id == "gold:day2" and verdict.task_id == "gold:c-sure"
    assert (verdict.label, verdict.reviewer_id, verdict.confidence) == ("harassment", "e-01", 0.95)

    # Tasking, which saw the comment posted, takes its gold copy and the verdict as gold.
    fold = TaskingFold()
    out = fold.apply(adjudicated["c-sure"], LogPosition(topic="comments", partition=0, offset=0))
    for offset, event in enumerate(gold):
        out += fold.apply(event, LogPosition(topic="gold", partition=0, offset=offset))
    assert out == [] and fold.gold == {"c-sure": "harassment"}
    # Once the projector has written the gold verdict, the item is no longer a candidate.
    project(client_from(settings), [verdict], consumer="promoted")
    assert json.loads(_cli(settings, "candidates", "--json").output) == []
