"""The producer CLI: valid comments reach the broker; invalid input is refused, loudly.

All or nothing: whatever is wrong with any line (not UTF-8, not JSON, nested too deeply, a bad
field, a record over the producer's size limit, a comment id given twice with two contents),
the command exits 2 with one message per bad line and produces nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.config import Settings
from labeltrail.events import CommentPosted
from labeltrail.ingest import InvalidCommentError, parse_comments
from labeltrail.kafka.admin import ensure_topics
from tests.probes import read_topic

GOOD = {
    "comment_id": "c-1f8a",
    "video_id": "v-3201",
    "author_hash": "9f2c",
    "text": "you're really not what we said you'd be lol",
    "source": "product_log",
    "posted_at": "2024-09-02T10:23:00+00:00",
    "parent_ids": ["c-0001"],
}


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        **extra,
    }


def _comments(settings: Settings) -> list[CommentPosted]:
    out = read_topic(settings, "comments")
    assert all(isinstance(e, CommentPosted) for e in out)
    return [e for e in out if isinstance(e, CommentPosted)]


def _ingest(settings: Settings, path: Path, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ingest", str(path)], env=_env(settings, **env))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _refused(settings: Settings, path: Path, lines: list[str], **env: str) -> str:
    """Ingest ``lines`` (str, encoded with surrogateescape so a test can write any bytes):
    exit 2 and nothing produced. The output."""
    ensure_topics(settings)
    data = "\n".join(lines).encode(errors="surrogateescape") + b"\n"
    path.write_bytes(data)
    code, out = _ingest(settings, path, **env)
    assert code == 2, out
    assert _comments(settings) == []
    return out


def _good(n: int) -> list[str]:
    return [json.dumps({**GOOD, "comment_id": f"c-{i}", "text": f"comment {i}"}) for i in range(n)]


@pytest.mark.integration
def test_valid_comments_are_produced(pipeline_settings: Settings, tmp_path: Path) -> None:
    ensure_topics(pipeline_settings)
    path = tmp_path / "comments.jsonl"
    second = {**GOOD, "comment_id": "c-2"}
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(second) + "\n")
    code, out = _ingest(pipeline_settings, path)
    assert code == 0, out
    assert "produced 2 comment(s)" in out
    produced = _comments(pipeline_settings)
    assert sorted(e.comment_id for e in produced) == ["c-1f8a", "c-2"]
    assert produced[0].posted_at.isoformat() == "2024-09-02T10:23:00+00:00"


@pytest.mark.integration
def test_invalid_comments_are_refused_and_nothing_is_produced(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    lines = [
        json.dumps(GOOD),
        "{not json",
        json.dumps({**GOOD, "text": ""}),
        json.dumps({**GOOD, "source": "twitter"}),
        json.dumps({**GOOD, "posted_at": "2024-09-02T10:23:00"}),
        json.dumps({k: v for k, v in GOOD.items() if k != "video_id"}),
        json.dumps(["a", "list"]),
        json.dumps({**GOOD, "comment_id": "c-9", "id_parts": ["chosen"], "producer": "me"}),
    ]
    out = _refused(pipeline_settings, tmp_path / "bad.jsonl", lines)
    assert "7 invalid comment(s), nothing produced" in out
    assert "line 2: not JSON" in out
    assert "line 3: text" in out
    assert "line 4: source" in out
    assert "line 5: posted_at" in out and "timezone" in out
    assert "line 6: video_id: Field required" in out
    assert "line 7: expected a JSON object" in out
    assert "line 8: 'id_parts', 'producer': not a field of a comment" in out


@pytest.mark.integration
def test_one_oversize_record_among_fifty_good_produces_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    """Every record is encoded and checked against the producer's limit before any is sent."""
    oversize = {**GOOD, "comment_id": "c-big", "attributes": {"blob": "x" * 2_000_000}}
    out = _refused(pipeline_settings, tmp_path / "c.jsonl", [*_good(50), json.dumps(oversize)])
    assert "1 invalid comment(s), nothing produced" in out
    assert "line 51: attributes: too large" in out
    assert "LABELTRAIL_KAFKA_MESSAGE_MAX_BYTES" in out


@pytest.mark.integration
def test_the_limit_is_the_producers_own_setting(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    """A 300 kB comment fits the default limit; with the producer's limit lowered, it is refused."""
    line = json.dumps({**GOOD, "attributes": {"blob": "x" * 300_000}})
    path = tmp_path / "comments.jsonl"
    out = _refused(pipeline_settings, path, [line], LABELTRAIL_KAFKA_MESSAGE_MAX_BYTES="200000")
    assert "line 1: attributes: too large" in out
    code, out = _ingest(pipeline_settings, path)
    assert code == 0, out
    assert [e.comment_id for e in _comments(pipeline_settings)] == [GOOD["comment_id"]]


@pytest.mark.integration
def test_undecodable_and_too_deep_lines_are_line_errors(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    lines = [*_good(3), '{"comment_id": "\udcff"}', deep, *_good(2)]  # \udcff: the byte 0xff
    out = _refused(pipeline_settings, tmp_path / "c.jsonl", lines)
    assert "2 invalid comment(s), nothing produced" in out
    assert "line 4: not UTF-8: invalid start byte at byte 17" in out
    assert "line 5: not accepted: JSON nested too deeply" in out


@pytest.mark.integration
def test_a_comment_id_with_two_contents_is_refused(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    changed = {**GOOD, "text": "an edited text"}
    lines = [json.dumps(GOOD), *_good(2), json.dumps(changed)]
    out = _refused(pipeline_settings, tmp_path / "c.jsonl", lines)
    assert "line 4: comment_id: 'c-1f8a' is on line 1 with another content" in out


@pytest.mark.integration
def test_ingesting_the_same_comments_again_adds_no_event_ids(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    """Event ids are derived from the content: a repeated line is produced once, a file
    ingested twice gives the same ids, even where ingest fills in posted_at."""
    ensure_topics(pipeline_settings)
    undated = {k: v for k, v in GOOD.items() if k != "posted_at"}
    path = tmp_path / "comments.jsonl"
    path.write_text("\n".join([json.dumps(undated), *_good(3), json.dumps(undated)]) + "\n")
    code, out = _ingest(pipeline_settings, path)
    assert code == 0, out
    assert "produced 4 comment(s)" in out
    first = _comments(pipeline_settings)
    assert len(first) == 4
    code, out = _ingest(pipeline_settings, path)
    assert code == 0, out
    both = _comments(pipeline_settings)
    assert len(both) == 8  # the log holds both runs ...
    assert {e.event_id for e in both} == {e.event_id for e in first}  # ... as the same events


def test_a_different_content_is_a_different_event() -> None:
    (one,) = parse_comments([json.dumps(GOOD)])
    (same,) = parse_comments([json.dumps(GOOD).encode()])
    (other,) = parse_comments([json.dumps({**GOOD, "attributes": {"slice": "x"}})])
    assert one.event_id == same.event_id != other.event_id
    with pytest.raises(InvalidCommentError, match="line 2: comment_id"):
        parse_comments([json.dumps(GOOD), json.dumps({**GOOD, "video_id": "v-2"})])


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "No such file" in result.output
