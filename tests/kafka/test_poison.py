"""The projector and poison input: dead-lettered with its reason, and projecting goes on.

The stage runners' side of poison input (every stage, under both runners) is the runner
contract: ``tests/kafka/test_runner_contract.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.clickhouse.writer import BatchWriter
from labeltrail.config import Settings
from labeltrail.events import encode
from labeltrail.events.topics import topic_name
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from tests.events.samples import sample_event
from tests.kafka.test_runner_contract import OVERSIZED, _event, junk

pytestmark = pytest.mark.integration


@pytest.fixture
def one_partition(pipeline_settings: Settings) -> Iterator[Settings]:
    settings = pipeline_settings.model_copy(update={"topic_partitions": 1})
    ensure_topics(settings)
    yield settings


def test_the_projector_dead_letters_poison_and_keeps_projecting(
    one_partition: Settings,
) -> None:
    settings = one_partition
    client = client_from(settings)
    apply_ddl(client)
    votes = topic_name(settings.topic_prefix, "votes")
    oversized = junk(OVERSIZED)
    injector = EventProducer(settings.model_copy(update={"kafka_message_max_bytes": 1_048_576}))
    injector.send_raw(votes, b"c-1", encode(_event("VoteCast", "ordinary-1")))
    injector.send_raw(votes, b"c-1", oversized)
    injector.send_raw(votes, b"c-1", encode(sample_event("CommentPosted")))
    injector.send_raw(votes, b"c-1", encode(_event("VoteCast", "ordinary-2")))
    injector.flush()

    try:
        stats = run_until_caught_up(Projector(client, settings), timeout=120)
        # It also reads the dead letters it wrote (they are on the log): at least the 4 records.
        assert stats.rejected == 2 and stats.consumed >= 4
        assert stats.consumed == stats.projected + stats.rejected
        assert (
            BatchWriter(client, f"{settings.topic_prefix}.projector").stored_positions()[(votes, 0)]
            == 4
        )
        again = run_until_caught_up(Projector(client, settings), timeout=120)
        assert again.rejected == 0  # resumed past them: nothing is dead-lettered twice
        rows = client.query(
            "SELECT source_offset, reason_code, payload_size, payload_truncated, payload_sha256 "
            "FROM dead_letters FINAL WHERE stage = 'projector' ORDER BY source_offset"
        ).result_rows
        assert [tuple(r[:4]) for r in rows] == [
            (1, "undecodable", OVERSIZED, True),
            (2, "wrong_topic", len(encode(sample_event("CommentPosted"))), False),
        ]
        assert rows[0][4] == hashlib.sha256(oversized).hexdigest()
        assert client.query("SELECT count() FROM comments FINAL").result_rows == [(0,)]
        assert client.query("SELECT count() FROM votes FINAL").result_rows == [(2,)]
    finally:
        client.close()  # chdb serves one directory per process at a time
