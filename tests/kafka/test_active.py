"""Active learning as a service on the real broker and the embedded ClickHouse (chdb).

A scored pool is on the log (a schema, a crowd, pool comments each scored by model m1, one
score naming a class the schema lacks). The registered active stage runs as its service does
(``STAGES["active"].make``, settings from the ``active`` section): with no new label it
requests nothing and dead-letters the bad score. Two labels are committed; the stage runs
again, restores its state from the log, and requests the day's budget (three tasks) of the
most uncertain comments by margin. Tasking turns the requests into crowd tasks (reason
``active_learning``, the request's id), the projector writes ClickHouse, and ``labeltrail audit
trace`` says why a comment was sampled and by which strategy.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import ActiveSettings, Settings
from labeltrail.events.base import Event
from labeltrail.events.models import (
    DeadLettered,
    TaskAssigned,
    TaskCreated,
    TaskRequested,
)
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from tests.cli.helpers import cli, run_registered_stage
from tests.folds.test_active import comment, crowd_member, label, schema, scored
from tests.probes import read_topic

pytestmark = pytest.mark.integration

CROWD = ["a1", "a2", "a3"]
# Margins 0.02 < 0.05 < 0.10 < 0.30 < 0.60: the three least sure are c1, c2, c3.
POOL = {
    "c1": [0.40, 0.38, 0.22],
    "c2": [0.45, 0.40, 0.15],
    "c3": [0.40, 0.30, 0.30],
    "c4": [0.55, 0.25, 0.20],
    "c5": [0.70, 0.10, 0.20],
}


def _pool() -> list[Event]:
    events: list[Event] = [schema(), *map(crowd_member, CROWD)]
    for cid, probs in POOL.items():
        events += [comment(cid), scored(cid, probs)]
    events += [comment("bad"), scored("bad", [0.5, 0.5], classes=["ok", "spam"])]
    return events


def _send(settings: Settings, events: list[Event]) -> None:
    producer = EventProducer(settings)
    for event in events:
        producer.send(event)
    producer.flush()


def test_the_active_stage_requests_a_budgeted_batch_that_tasking_serves_and_audit_explains(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings.model_copy(
        update={
            "active": ActiveSettings(
                strategy="margin",
                every_labels=2,
                every_minutes=0,
                batch_size=5,
                diversity=0.0,
                tasks_per_day=3,
            )
        }
    )
    ensure_topics(settings)
    _send(settings, _pool())

    stats = run_registered_stage("active", settings, tmp_path / "active-1")
    assert stats["rejected"] == 1
    assert read_topic(settings, "requests") == []
    letters = [e for e in read_topic(settings, "deadletter") if isinstance(e, DeadLettered)]
    assert len(letters) == 1 and letters[0].stage == "active"
    assert "score of bad (m1): unknown class 'spam'" in letters[0].reason

    _send(settings, [label("l1"), label("l2")])
    run_registered_stage("active", settings, tmp_path / "active-2")
    requests = sorted(
        (e for e in read_topic(settings, "requests") if isinstance(e, TaskRequested)),
        key=lambda r: r.rank,
    )
    assert [(r.comment_id, r.rank) for r in requests] == [("c1", 1), ("c2", 2), ("c3", 3)]
    assert {(r.reason, r.strategy, r.trigger, r.batch_size) for r in requests} == {
        ("active_learning", "margin", "labels", 3)
    }
    assert requests[0].score == pytest.approx(0.98) and requests[0].model_versions == ["m1"]
    assert [r.cost_usd for r in requests] == [pytest.approx(0.12)] * 3  # 3 votes at $0.04

    run_registered_stage("tasking", settings, tmp_path / "tasking")
    tasks = [e for e in read_topic(settings, "tasks") if isinstance(e, TaskCreated)]
    assert sorted((t.comment_id, t.reason, t.kind) for t in tasks) == [
        (cid, "active_learning", "crowd") for cid in ("c1", "c2", "c3")
    ]
    by_request = {r.request_id: r for r in requests}
    assert all(by_request[t.request_id or ""].comment_id == t.comment_id for t in tasks)
    assigned = [e for e in read_topic(settings, "tasks.crowd") if isinstance(e, TaskAssigned)]
    assert len(assigned) == 9

    client = client_from(settings)
    apply_ddl(client)
    run_until_caught_up(Projector(client, settings))
    rows = client.query(
        "SELECT comment_id, strategy, rank, trigger FROM v_task_requests ORDER BY rank"
    ).result_rows
    client.close()
    assert [tuple(r) for r in rows] == [
        ("c1", "margin", 1, "labels"),
        ("c2", "margin", 2, "labels"),
        ("c3", "margin", 3, "labels"),
    ]

    code, text = cli(settings, "audit", "trace", "c1")
    assert code == 0, text
    text = " ".join(re.sub(r"\n\s+\|\s+", " ", text).split())
    assert "sampled by active_learning: strategy=margin value=0.980 rank 1/3" in text
    assert "trigger=labels" in text and "models=m1" in text
    assert "reason=active_learning" in text
    # The request comes after the score it was picked on and before the task it asked for.
    assert (
        text.index("[CommentScored]") < text.index("[TaskRequested]") < text.index("[TaskCreated]")
    )
