"""Production feedback end to end on the real broker and the embedded ClickHouse.

A small live history is on the log (a schema, a crowd and an expert, three labelled
comments). ``labeltrail feedback ingest`` produces an appeal and an override that contradict
their labels, an appeal that agrees, a user flag and an appeal on a comment nobody posted. The
registered stages run as their services do (``STAGES[...].make``): feedback opens two reviews
and dead-letters the unknown comment, tasking turns the reviews into expert tasks (reason
``production_feedback``), the expert answers through the annotation frontend's own validation,
and labels commits the verdicts on route ``adjudication`` naming the feedback. ClickHouse then
answers ``audit overturns``, ``audit trace`` and ``audit label-as-of``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from labeltrail.annotate.validate import build_outcome
from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.models import (
    AdjudicationRequested,
    AnnotatorRegistered,
    CommentPosted,
    DeadLettered,
    FeedbackReceived,
    LabelCommitted,
    LabelSchemaPublished,
    TaskAssigned,
    TaskCreated,
    VoteCast,
)
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from tests.cli.helpers import cli, cli_rows, run_registered_stage
from tests.folds.test_feedback import CLASSES, label
from tests.probes import read_topic

pytestmark = pytest.mark.integration

AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
CROWD = ["a1", "a2", "a3"]


def _history() -> list[Event]:
    """Schema v1, three crowd annotators and an expert, comments c1-c3 with three votes each
    and a consensus label: c1 toxic, c2 ok, c3 toxic."""
    schema = LabelSchemaPublished.create(
        producer="test",
        id_parts=("v1",),
        occurred_at=AT,
        version="v1",
        classes=CLASSES,
        questions=[],
        guideline_hash="sha256:00",
    )
    events: list[Event] = [schema]
    for who, pool in [*((a, "crowd") for a in CROWD), ("e1", "expert")]:
        events.append(
            AnnotatorRegistered.create(
                producer="test",
                id_parts=(who,),
                occurred_at=AT,
                annotator_id=who,
                pool=pool,
                locale="en",
                languages=["en"],
            )
        )
    for n, value in enumerate(["toxic", "ok", "toxic"], start=1):
        cid = f"c{n}"
        events.append(
            CommentPosted.create(
                producer="test",
                id_parts=(cid,),
                occurred_at=AT,
                comment_id=cid,
                video_id="v",
                author_hash="h",
                text=f"comment {n}",
                posted_at=AT,
                source="product_log",
                attributes={"slice": "en" if n < 3 else "de"},
            )
        )
        votes = [
            VoteCast.create(
                producer="test",
                id_parts=(cid, who),
                occurred_at=AT + dt.timedelta(minutes=n),
                vote_id=f"{cid}-{who}",
                task_id=f"t-{cid}",
                comment_id=cid,
                annotator_id=who,
                schema_version="v1",
                label=value,
                time_spent_ms=1000,
            )
            for who in CROWD
        ]
        events += votes
        at = AT + dt.timedelta(minutes=n)
        events.append(label(cid, value, vote_ids=[v.vote_id for v in votes], at=at))
    return events


def _line(fid: str, cid: str, kind: str, label: str | None, **more: Any) -> str:
    fields = {"feedback_id": fid, "comment_id": cid, "kind": kind, "actor_hash": f"h-{fid}"}
    fields["at"] = "2026-03-03T10:00:00+00:00"
    if label is not None:
        fields["label"] = label
    return json.dumps(fields | more)


FEEDBACK = [
    _line("f1", "c1", "appeal", "ok", note="this is a quote, not an insult"),
    _line("f2", "c2", "moderator_override", "toxic"),
    _line("f3", "c3", "appeal", "toxic"),  # agrees with the label: no review
    _line("f4", "c1", "user_flag", "toxic", actor_kind="trusted_flagger"),
    _line("f5", "nope", "appeal", "ok"),  # nobody posted "nope"
]


def test_feedback_reaches_an_expert_and_the_verdict_supersedes_the_label(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    producer = EventProducer(settings)
    for event in _history():
        producer.send(event)
    producer.flush()

    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(FEEDBACK) + "\n")
    code, out = cli(settings, "feedback", "ingest", str(path))
    assert code == 0, out
    assert "produced 5 feedback event(s)" in out
    code, out = cli(settings, "feedback", "ingest", str(path))  # again: the same events
    assert code == 0, out
    on_log = [e for e in read_topic(settings, "feedback") if isinstance(e, FeedbackReceived)]
    assert len(on_log) == 10 and len({e.event_id for e in on_log}) == 5
    flag = next(e for e in on_log if e.feedback_id == "f4")
    assert flag.actor_kind == "trusted_flagger"
    assert next(e for e in on_log if e.feedback_id == "f1").actor_kind == "author"

    stats = run_registered_stage("feedback", settings, tmp_path / "feedback")
    assert stats["rejected"] == 1
    consensus = read_topic(settings, "consensus")
    requests = [e for e in consensus if isinstance(e, AdjudicationRequested)]
    assert sorted(r.request_id for r in requests) == ["feedback:f1", "feedback:f2"]
    assert {r.reason for r in requests} == {"production_feedback"}
    letters = [e for e in read_topic(settings, "deadletter") if isinstance(e, DeadLettered)]
    assert [d.reason for d in letters] == ["feedback f5 for unknown comment nope"]

    run_registered_stage("tasking", settings, tmp_path / "tasking")
    made = read_topic(settings, "tasks")
    tasks = [e for e in made if isinstance(e, TaskCreated) and e.kind == "expert"]
    assert sorted(t.request_id or "" for t in tasks) == ["feedback:f1", "feedback:f2"]
    assert {t.reason for t in tasks} == {"production_feedback"}
    assigned = [e for e in read_topic(settings, "tasks.expert") if isinstance(e, TaskAssigned)]
    assert len(assigned) == 2 and all(len(a.prior_votes) == 3 for a in assigned)

    # The expert overturns c1's label (f1 was right) and keeps c2's (f2 was not).
    schema = next(e for e in _history() if isinstance(e, LabelSchemaPublished))
    verdicts = {"c1": "ok", "c2": "ok"}
    for task in assigned:
        form = {"label": verdicts[task.comment_id], "confidence": "0.95", "note": "reviewed"}
        outcome = build_outcome(
            task,
            schema,
            form,
            vote_or_adjudication_id=f"adj-{task.comment_id}",
            server_elapsed_ms=5000,
        )
        producer.send(outcome)
    producer.flush()

    run_registered_stage("labels", settings, tmp_path / "labels")
    labels = [
        e
        for e in read_topic(settings, "labels")
        if isinstance(e, LabelCommitted) and e.route == "adjudication"
    ]
    by_comment = {e.comment_id: e for e in labels}
    assert set(by_comment) == {"c1", "c2"}
    assert by_comment["c1"].label == "ok" and by_comment["c1"].method_params["feedback"] == "f1"
    assert by_comment["c1"].method_params["overrides"] == "label"
    assert by_comment["c1"].vote_ids == ["c1-a1", "c1-a2", "c1-a3"]
    assert by_comment["c2"].method_params["feedback"] == "f2"

    client = client_from(settings)
    apply_ddl(client)
    run_until_caught_up(Projector(client, settings))
    client.close()

    rows = cli_rows(settings, "audit", "overturns", "--by", "class")
    assert {r["key"]: (r["reviews"], r["overturned"], r["upheld"]) for r in rows} == {
        "toxic": (1, 1, 0),
        "ok": (1, 0, 1),
    }
    assert next(r for r in rows if r["key"] == "toxic")["overturn_rate"] == 1.0
    rows = cli_rows(settings, "audit", "overturns", "--by", "annotator")
    assert {r["key"]: r["overturned"] for r in rows} == {"a1": 1, "a2": 1, "a3": 1}
    assert all(r["reviews"] == 2 for r in rows)
    rows = cli_rows(settings, "audit", "overturns", "--by", "slice")
    assert {r["key"]: r["reviews"] for r in rows} == {"en": 2}
    rows = cli_rows(settings, "audit", "overturns", "--by", "kind")
    assert {r["key"] for r in rows} == {"appeal by author", "moderator_override by moderator"}
    rows = cli_rows(settings, "audit", "overturns", "--by", "schema_version")
    assert [(r["key"], r["decided"], r["pending"]) for r in rows] == [("v1", 2, 0)]

    code, text = cli(settings, "audit", "trace", "c1")
    assert code == 0, text
    # The trace wraps long lines to the console's width (which the suite's other tests may have
    # changed): read it with every wrap and continuation mark undone.
    text = " ".join(re.sub(r"\n\s+\|\s+", " ", text).split())
    assert "feedback f1: appeal by author" in text and "says 'ok'" in text
    assert "feedback f4: user_flag by trusted_flagger" in text
    assert "supersedes the label after feedback f1" in text
    assert "reason=production_feedback" in text

    rows = cli_rows(settings, "audit", "label-as-of", "c1", "--at", "now")
    assert [(r["label"], r["route"]) for r in rows] == [("ok", "adjudication")]
    count = client_from(settings).query("SELECT count() FROM feedback FINAL").result_rows
    assert count == [(5,)]


def test_bad_feedback_is_refused_whole_with_every_line(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    path = tmp_path / "bad.jsonl"
    lines = [
        FEEDBACK[0],
        _line("g1", "c1", "moderator_override", None),
        _line("g2", "c1", "complaint", "ok"),
        json.dumps({"feedback_id": "g3", "comment_id": "c1", "kind": "appeal", "actor_hash": "h"}),
        _line("g4", "c1", "appeal", "ok", actor_kind="robot"),
        _line("g5", "c1", "appeal", "ok", at="yesterday"),
        _line("f1", "c1", "appeal", "toxic"),  # f1 again with another content
        _line("g6", "c1", "appeal", "ok", stars=5),
        "not json",
    ]
    path.write_text("\n".join(lines) + "\n")
    code, out = cli(settings, "feedback", "ingest", str(path))
    assert code == 2, out
    assert "8 invalid feedback line(s), nothing produced" in out
    for number, words in [
        (2, "a moderator override names the label"),
        (3, "kind"),
        (4, "at: required"),
        (5, "actor_kind"),
        (6, "at: 'yesterday' is not an ISO 8601 time"),
        (7, "is on line 1 with another content"),
        (8, "'stars': not a field of a feedback"),
        (9, "not JSON"),
    ]:
        assert f"line {number}: " in out and words in out, (number, out)
    assert read_topic(settings, "feedback") == []
