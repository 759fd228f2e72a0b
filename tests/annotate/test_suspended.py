"""A suspended annotator against the real broker: no task served, answers refused with 403 and
the reason, until reinstated (``AnnotatorSuspended`` / ``AnnotatorReinstated`` on
``annotators.status``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from labeltrail.annotate.server import AnnotateService, background_server
from labeltrail.config import Settings
from labeltrail.events.models import AnnotatorReinstated, AnnotatorSuspended, VoteCast
from labeltrail.kafka.producer import EventProducer
from tests.annotate.helpers import (
    make_task,
    publish_tasks,
    read_events,
    service_settings,
    token_store,
)
from tests.annotate.test_kafka import _call

pytestmark = pytest.mark.integration


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("the frontend did not read the status change in time")


def test_a_suspended_annotator_gets_no_task_and_cannot_vote(pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    tasks = [make_task("a47", n) for n in range(2)]
    publish_tasks(settings, [*tasks, make_task("b12", 5)])
    producer = EventProducer(settings)
    producer.send(
        AnnotatorSuspended.create(
            producer="test",
            annotator_id="a47",
            reason="honeypot accuracy below the floor",
            actor="qc",
        )
    )
    producer.flush(30)

    service = AnnotateService(service_settings(settings), tokens=token_store())
    with background_server(service):
        base = service.url
        status, body = _call(f"{base}/tasks/next", "a47")
        assert status == 403, body
        assert "suspended" in body["detail"] and "honeypot accuracy" in body["detail"]
        first = tasks[0].assignment_id
        assert _call(f"{base}/tasks/{first}", "a47")[0] == 403
        status, body = _call(f"{base}/tasks/{first}", "a47", {"label": "mild"})
        assert status == 403 and "suspended" in body["detail"], body
        assert _call(f"{base}/tasks/next", "b12")[0] == 200  # others are served as before

        producer.send(
            AnnotatorReinstated.create(
                producer="test", annotator_id="a47", reason="reviewed", actor="expert-01"
            )
        )
        producer.flush(30)
        _wait(lambda: service.queue.suspension("a47") is None)
        status, body = _call(f"{base}/tasks/next", "a47")
        assert status == 200 and body["task"]["assignment_id"] == first
        status, body = _call(f"{base}/tasks/{first}", "a47", {"label": "mild"})
        assert status == 200, body

    (vote,) = read_events(settings, "votes", want=1)
    assert isinstance(vote, VoteCast) and vote.annotator_id == "a47"
