"""Quality control that acts, on the real broker: the tasking, consensus and reliability stages
run as services run them; the test plays the annotators' frontends.

One of four crowd annotators answers every honeypot wrong and leaves their other tasks open.
Consensus scores the honeypots, reliability suspends the annotator with the evidence, tasking
gives their open tasks to the others and gives them nothing new; after an expert reinstates
them, they are drawn again.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.models import (
    AnnotatorRegistered,
    AnnotatorReinstated,
    AnnotatorSuspended,
    CommentPosted,
    CommentScored,
    TaskAssigned,
    TaskCreated,
    VoteCast,
)
from labeltrail.events.topics import topic_name
from labeltrail.gold import parse_gold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.ontology import MODERATION_CLASSES, moderation_schema_v3
from tests.folds.test_tasking_suspension import comment as posted
from tests.kafka.histories import read
from tests.kafka.runners import run_stage

pytestmark = pytest.mark.integration

T0 = dt.datetime(2024, 9, 2, 9, 0, tzinfo=dt.UTC)
CROWD = ("a0", "a1", "a2", "a3")
BAD = "a2"
GOLD = [f"g{i}" for i in range(4)]
"""Gold items, all harassment; the bad annotator calls everything non-toxic."""


def _settings(base: Settings) -> Settings:
    tasking = base.tasking.model_copy(
        update={"honeypot_rate": 1.0, "gold_set_size": len(GOLD), "min_crowd_pool": len(CROWD)}
    )
    return base.model_copy(update={"tasking": tasking})


def _scored(comment: CommentPosted) -> CommentScored:
    return CommentScored.create(
        producer="test",
        id_parts=("s", comment.comment_id),
        occurred_at=comment.posted_at,
        comment_id=comment.comment_id,
        model_version="m0",
        classes=list(MODERATION_CLASSES),
        probabilities=[0.4, 0.35, 0.1, 0.1, 0.05],
        margin=0.05,
        route="annotate",
        threshold=0.1,
    )


def _comments(producer: EventProducer, start: int, n: int) -> None:
    for i in range(start, start + n):
        comment = posted(f"c{i:03d}", T0 + dt.timedelta(minutes=i), "product_log")
        producer.send(comment)
        producer.send(_scored(comment))
    producer.flush()


def _setup(settings: Settings) -> EventProducer:
    ensure_topics(settings)
    producer = EventProducer(settings)
    producer.send(moderation_schema_v3())
    for annotator in CROWD:
        producer.send(
            AnnotatorRegistered.create(
                producer="test", annotator_id=annotator, pool="crowd", locale="en", languages=["en"]
            )
        )
    lines = [
        json.dumps(
            {
                "comment_id": cid,
                "video_id": "v0",
                "author_hash": "h",
                "text": f"coded harassment {cid}",
                "source": "pool",
                "posted_at": T0.isoformat(),
                "label": "harassment",
                "reviewer_id": "e1",
                "schema_version": "v3",
            }
        )
        for cid in GOLD
    ]
    gold = topic_name(settings.topic_prefix, "gold")
    for item in parse_gold(lines, gold_set="day1"):
        producer.send(item.verdict)
        producer.send(item.verdict, topic=gold)
        producer.send(item.comment, topic=gold)
    producer.flush()
    return producer


def _tasking(settings: Settings, tmp: Path) -> None:
    outcome = run_stage("confluent", "labeltrail.stages:make_tasking", settings, tmp)
    assert outcome.code == 0, outcome.error


def _assignments(settings: Settings) -> list[TaskAssigned]:
    return [e for _, _, e in read(settings, "tasks.crowd") if isinstance(e, TaskAssigned)]


def _answer(producer: EventProducer, assignments: list[TaskAssigned], voted: set[str]) -> None:
    """The frontends: every annotator answers what they were given, the gold items as gold
    says (the bad one: non-toxic, and nothing else at all), the rest non-toxic."""
    for a in assignments:
        if a.assignment_id in voted:
            continue
        honeypot = a.comment_id in GOLD
        if a.annotator_id == BAD and not honeypot:
            continue  # left open
        voted.add(a.assignment_id)
        label = "harassment" if honeypot and a.annotator_id != BAD else "non-toxic"
        producer.send(
            VoteCast.create(
                producer="test",
                id_parts=("vote", a.assignment_id),
                occurred_at=T0 + dt.timedelta(hours=2),
                vote_id=f"v-{a.assignment_id}",
                task_id=a.task_id,
                comment_id=a.comment_id,
                annotator_id=a.annotator_id,
                schema_version=a.schema_version,
                label=label,
                time_spent_ms=3000,
            )
        )
    producer.flush()


def _of(settings: Settings, suffix: str, kind: type[Event]) -> list[Event]:
    return [e for _, _, e in read(settings, suffix) if isinstance(e, kind)]


def test_a_failing_annotator_is_suspended_their_tasks_reassigned_until_reinstated(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = _settings(pipeline_settings)
    producer = _setup(settings)
    _comments(producer, 0, 60)
    _tasking(settings, tmp_path / "t1")
    before = _assignments(settings)
    assert {a.annotator_id for a in before} == set(CROWD)
    voted: set[str] = set()
    _answer(producer, before, voted)
    hp = [a for a in before if a.annotator_id == BAD and a.comment_id in GOLD]
    assert len(hp) >= 10, f"the draw gave the bad annotator only {len(hp)} honeypots"

    # Consensus scores the honeypots; reliability suspends the annotator, with the evidence.
    for stage in ("consensus", "reliability"):
        outcome = run_stage("confluent", f"labeltrail.stages:make_{stage}", settings, tmp_path)
        assert outcome.code == 0, outcome.error
    suspensions = _of(settings, "annotators.status", AnnotatorSuspended)
    assert [s.annotator_id for s in suspensions] == [BAD]  # type: ignore[attr-defined]
    (suspension,) = suspensions
    assert isinstance(suspension, AnnotatorSuspended) and suspension.actor == "qc"
    evidence = suspension.evidence
    assert evidence["correct"] == "0" and int(evidence["n"]) >= 10
    assert float(evidence["p_below_floor"]) > 0.95 and evidence["floor"] == "0.7"

    # Tasking: the open tasks of the suspended annotator go to the others. (Each change is
    # read before more work is produced: live, a status change acts from when it is read.)
    open_before = {a.task_id for a in before if a.annotator_id == BAD and a.comment_id not in GOLD}
    assert open_before
    _tasking(settings, tmp_path / "t2")
    tasks = [t for t in _of(settings, "tasks", TaskCreated) if isinstance(t, TaskCreated)]
    reassigned = [t for t in tasks if t.reason == "reassigned"]
    assert len(reassigned) == len(open_before)
    seen = {a.assignment_id for a in before}
    after = [a for a in _assignments(settings) if a.assignment_id not in seen]
    assert sorted(a.task_id for a in after) == sorted(t.task_id for t in reassigned)
    for task in reassigned:
        assert task.envelope.causation_id == suspension.event_id
        (successor,) = task.annotators
        assert successor != BAD

    # Nothing new for them.
    _comments(producer, 60, 20)
    _tasking(settings, tmp_path / "t3")
    seen |= {a.assignment_id for a in after}
    new = [a for a in _assignments(settings) if a.assignment_id not in seen]
    assert new and all(a.annotator_id != BAD for a in new)

    # An expert reinstates them: they are drawn again.
    producer.send(
        AnnotatorReinstated.create(
            producer="test", annotator_id=BAD, reason="retrained on the guideline", actor="e1"
        )
    )
    producer.flush()
    _tasking(settings, tmp_path / "t4")
    _comments(producer, 80, 20)
    _tasking(settings, tmp_path / "t5")
    seen |= {a.assignment_id for a in new}
    latest = [a for a in _assignments(settings) if a.assignment_id not in seen]
    assert any(a.annotator_id == BAD and a.comment_id not in GOLD for a in latest)
