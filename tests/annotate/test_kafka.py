"""The frontend against the real broker: own tasks only, votes on the log, restart rebuilds."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from labeltrail.annotate.queue import outcome_id
from labeltrail.annotate.server import AnnotateService, background_server
from labeltrail.config import Settings
from labeltrail.events.models import AdjudicationRecorded, PriorVote, VoteCast
from tests.annotate.helpers import (
    bearer,
    make_task,
    publish_tasks,
    read_events,
    service_settings,
    token_store,
)

pytestmark = pytest.mark.integration


def _call(url: str, annotator: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**bearer(annotator), "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_votes_reach_the_broker_and_restart_skips_answered(pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    mine = [make_task("a47", n, prelabel="mild", confidence=0.8) for n in range(3)]
    theirs = make_task("b12", 9)
    votes = [PriorVote(annotator_id="a47", label="mild", confidence=0.6)]
    expert = make_task("e-04", 1, pool="expert", prior_votes=votes, request_id="r-1")
    publish_tasks(settings, [*mine, theirs, expert])

    service = AnnotateService(service_settings(settings), tokens=token_store())
    with background_server(service):
        base = service.url
        status, body = _call(f"{base}/tasks/next", "a47")
        assert status == 200 and body["task"]["assignment_id"] == mine[0].assignment_id
        for task in mine[:2]:
            _call(f"{base}/tasks/{task.assignment_id}", "a47")  # served, then answered
            status, body = _call(f"{base}/tasks/{task.assignment_id}", "a47", {"label": "mild"})
            assert status == 200, body
        status, _ = _call(f"{base}/tasks/{theirs.assignment_id}", "a47", {"label": "hate"})
        assert status == 404
        _call(f"{base}/tasks/{expert.assignment_id}", "e-04")
        status, body = _call(
            f"{base}/tasks/{expert.assignment_id}", "e-04", {"label": "hate", "confidence": 0.9}
        )
        assert status == 200, body
        # a task assigned while the frontend runs is served live
        late = make_task("a47", 7)
        publish_tasks(settings, [late])
        for _ in range(50):
            if service.queue.is_pending("a47", late.assignment_id):
                break
            time.sleep(0.1)
        assert service.queue.is_pending("a47", late.assignment_id)

    produced = read_events(settings, "votes", want=2)
    assert sorted(e.vote_id for e in produced if isinstance(e, VoteCast)) == sorted(
        outcome_id(t) for t in mine[:2]
    )
    assert {e.annotator_id for e in produced if isinstance(e, VoteCast)} == {"a47"}
    assert all(e.prelabel_shown for e in produced if isinstance(e, VoteCast))
    (adjudication,) = read_events(settings, "adjudications", want=1)
    assert isinstance(adjudication, AdjudicationRecorded)
    assert adjudication.reviewer_id == "e-04" and adjudication.request_id == "r-1"

    restarted = AnnotateService(service_settings(settings), tokens=token_store())
    with background_server(restarted):
        status, body = _call(f"{restarted.url}/tasks/next", "a47")
        assert body["task"]["assignment_id"] == mine[2].assignment_id
        status, _ = _call(
            f"{restarted.url}/tasks/{mine[0].assignment_id}", "a47", {"label": "hate"}
        )
        assert status == 404
        assert restarted.queue.depth("a47") == 2  # mine[2] and the late one
        assert restarted.queue.depth("e-04") == 0
