"""Re-projecting erased comments in the real engine (chdb): the rows read as a projection after
the erasure would write them, the other comments' text stays, and no replaced part is left on
disk with the erased text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.erasure import erase_comments, outdated_parts
from labeltrail.clickhouse.writer import BatchWriter
from labeltrail.config import Settings
from labeltrail.events.crypto import ERASED, erased
from labeltrail.events.models import CommentPosted, TaskAssigned
from tests.events.samples import sample_event
from tests.kafka.test_erasure import _in_files

pytestmark = pytest.mark.integration


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """A fresh chdb database (as tests/clickhouse/test_tables.py's)."""
    ch = client_from(Settings(clickhouse_dsn=f"chdb://{tmp_path}"))
    apply_ddl(ch)
    yield ch
    ch.close()


def _comment(cid: str, author: str, text: str, parents: list[str]) -> CommentPosted:
    base = sample_event("CommentPosted")
    assert isinstance(base, CommentPosted)
    envelope = base.envelope.model_copy(update={"event_id": f"e-{cid}"})
    fields = {"comment_id": cid, "author_hash": author, "text": text, "parent_ids": parents}
    return base.model_copy(update={"envelope": envelope, **fields})


def _thread() -> tuple[CommentPosted, CommentPosted, TaskAssigned]:
    """A parent by one author, a reply by another, and the reply's task carrying the parent."""
    parent = _comment("c-parent", "author-a", "the parent, written by A, secret-parent-text", [])
    reply = _comment(
        "c-reply", "author-b", "the reply, written by B, kept-reply-text", ["c-parent"]
    )
    task = sample_event("TaskAssigned")
    assert isinstance(task, TaskAssigned)
    task = task.model_copy(
        update={"comment_id": "c-reply", "text": reply.text, "context": [parent.text, "other"]}
    )
    return parent, reply, task


def test_erased_rows_read_as_a_projection_after_the_erasure_and_leave_no_part(
    client: Client, tmp_path: Path
) -> None:
    parent, reply, task = _thread()
    writer = BatchWriter(client, "tests")
    writer.write_events([(parent, "t.comments", 0, 1), (reply, "t.comments", 1, 2)])
    writer.write_events([(task, "t.tasks.crowd", 0, 7)])
    secret, kept = parent.text.encode(), reply.text.encode()
    assert _in_files(tmp_path, [secret, kept]) == {secret, kept}

    result = erase_comments(client, ["c-parent"], purge_timeout=60)
    assert result.rows == {"events": 2, "comments": 1, "assignments": 1}
    assert result.lingering == []
    assert not outdated_parts(client, "events")

    rows = client.query("SELECT comment_id, text, author_hash FROM comments FINAL").result_rows
    comments = {r[0]: (r[1], r[2]) for r in rows}
    assert comments == {"c-parent": (ERASED, ERASED), "c-reply": (reply.text, "author-b")}
    context = client.query("SELECT context FROM assignments FINAL").result_rows
    assert context == [([ERASED, "other"],)]
    rows = client.query("SELECT event_id, payload FROM events FINAL").result_rows
    payloads = {r[0]: r[1] for r in rows}
    expected = [erased(e, ["c-parent"], [parent.text]) for e in (parent, reply, task)]
    assert payloads == {e.event_id: e.model_dump_json(exclude={"envelope"}) for e in expected}
    assert _in_files(tmp_path, [secret, kept]) == {kept}

    again = erase_comments(client, ["c-parent"], purge_timeout=60)
    assert again.rows == {}
