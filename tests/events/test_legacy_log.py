"""A log written by labeltrail 0.1.0 (the fingerprint's bytes in reverse order in every header)
is read by today's stages on the real broker: nothing is dead-lettered, everything projects,
tasking works from it (``LEGACY_ORDER_REMOVED_IN`` says until when)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings
from labeltrail.events import CommentPosted
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory
from tests.kafka.runners import run_stage
from tests.probes import read_topic

pytestmark = pytest.mark.integration


def _legacy(value: bytes) -> bytes:
    """The header labeltrail 0.1.0 wrote: the fingerprint big-endian."""
    return value[:2] + value[2:10][::-1] + value[10:]


def test_a_log_written_the_old_way_is_read_by_the_projector_and_a_stage(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    log = run_in_memory(Platform(PlatformConfig.sized(30, seed=2))).log
    events = [e for suffix in ("schemas", "annotators", "comments", "scores") for e in log[suffix]]
    ensure_topics(settings)
    producer = EventProducer(settings)
    for topic, key, value in producer.records(events):
        producer.send_raw(topic, key, _legacy(value))
    producer.flush()

    with closing(client_from(settings)) as client:
        apply_ddl(client)
        stats = run_until_caught_up(Projector(client, settings), timeout=120)
        assert (stats.consumed, stats.rejected) == (len(events), 0)
        comments = sum(isinstance(e, CommentPosted) for e in events)
        assert client.query("SELECT count() FROM comments FINAL").result_rows == [(comments,)]

    outcome = run_stage("confluent", "labeltrail.stages:make_tasking", settings, tmp_path)
    assert outcome.code == 0, outcome.log[-3000:]
    assert outcome.stats["rejected"] == 0 and outcome.stats["processed"] > comments
    tasks = read_topic(settings, "tasks")
    assert tasks, "tasking made no task from the old log"
    assert {t.key for t in tasks} <= {e.key for e in events if isinstance(e, CommentPosted)}
