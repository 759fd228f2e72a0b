"""Tasking and the simulated frontends derive their ids with ``stable_id``: the ids are the
``derive_id`` (uuid5) ones already in the log, unchanged."""

from __future__ import annotations

from labeltrail.events.ids import derive_id
from labeltrail.events.models import TaskAssigned, TaskCreated, VoteCast
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory


def test_task_assignment_and_vote_ids_are_the_uuid5_ones() -> None:
    replay = run_in_memory(Platform(PlatformConfig(n_comments=150, n_gold=15, seed=8)))
    events = [e for topic in replay.log.values() for e in topic]
    tasks = [e for e in events if isinstance(e, TaskCreated)]
    assigned = [e for e in events if isinstance(e, TaskAssigned)]
    votes = [e for e in events if isinstance(e, VoteCast)]
    assert tasks and assigned and votes
    assert {t.kind for t in tasks} >= {"crowd", "expert"}
    for t in tasks:
        assert t.event_id == derive_id("TaskCreated", t.task_id)
        if t.kind in ("crowd", "expert"):
            assert t.task_id == derive_id("task", t.comment_id, t.schema_version, t.kind)
    for a in assigned:
        assert a.assignment_id == derive_id("assignment", a.task_id, a.annotator_id)
        assert a.event_id == derive_id("TaskAssigned", a.assignment_id)
    by_task_annotator = {(a.task_id, a.annotator_id): a.assignment_id for a in assigned}
    for v in votes:
        salt = by_task_annotator[(v.task_id, v.annotator_id)]
        assert v.vote_id == derive_id("vote", salt)
        assert v.event_id == derive_id("VoteCast", "vote", salt)
