"""Per-question consensus live: the consensus, questions and tasking stages on the real broker,
then the projector into ClickHouse (chdb), read back as an auditor would."""

from __future__ import annotations

import datetime as dt
import json
import threading
from contextlib import closing
from pathlib import Path

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.models import (
    AdjudicationRequested,
    AnnotatorRegistered,
    CommentPosted,
    QuestionLabelCommitted,
    TaskAssigned,
    VoteCast,
)
from labeltrail.export.build import create_export, read_parquet_rows, verify_export
from labeltrail.folds.questions import NEEDS_CONTEXT
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.ontology import V3_QUESTIONS, moderation_schema_v3
from tests.folds.test_questions import CROWD, task
from tests.kafka.runners import run_stage
from tests.kafka.test_reliability_iaa import read

pytestmark = pytest.mark.integration

T0 = dt.datetime(2024, 9, 2, 9, 0, tzinfo=dt.UTC)
THREAD = "the thread this reply answers"


def story() -> list[Event]:
    """A thread root and two replies: the crowd agrees both are non-toxic, but says c-1 needs
    its thread to be read (two of three) and c-2 does not."""
    events: list[Event] = [moderation_schema_v3()]
    for annotator, pool in [*((a, "crowd") for a in CROWD), ("e1", "expert")]:
        events.append(
            AnnotatorRegistered.create(
                producer="test",
                id_parts=("ann", annotator),
                occurred_at=T0,
                annotator_id=annotator,
                pool=pool,
                locale="en-US",
                languages=["en"],
            )
        )
    for cid, parents, text in [
        ("p-1", [], THREAD),
        ("c-1", ["p-1"], "you're really not what we said you'd be lol"),
        ("c-2", ["p-1"], "nice video"),
    ]:
        events.append(
            CommentPosted.create(
                producer="test",
                id_parts=("c", cid),
                occurred_at=T0,
                comment_id=cid,
                video_id="v-1",
                author_hash="h",
                text=text,
                posted_at=T0,
                source="product_log",
                parent_ids=parents,
            )
        )
    for cid, context in [("c-1", ("yes", "yes", "no")), ("c-2", ("no", "no", "no"))]:
        events.append(task(cid))
        for j, (annotator, needs) in enumerate(zip(CROWD, context, strict=True)):
            events.append(
                VoteCast.create(
                    producer="test",
                    id_parts=("v", cid, annotator),
                    occurred_at=T0 + dt.timedelta(minutes=j + 1),
                    vote_id=f"v-{cid}-{annotator}",
                    task_id=f"t-{cid}",
                    comment_id=cid,
                    annotator_id=annotator,
                    schema_version="v3",
                    label="non-toxic",
                    answers={
                        "q1_slur": "no",
                        "q2_targets_group": "yes" if j == 0 else "no",
                        "q3_threat": "no",
                        "q4_needs_context": needs,
                    },
                    time_spent_ms=4000,
                )
            )
    return events


def test_questions_are_committed_projected_and_route_to_an_expert(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    producer = EventProducer(settings)
    for event in story():
        producer.send(event)
    producer.flush()

    for stage in ("consensus", "questions", "tasking", "labels"):
        outcome = run_stage("confluent", f"labeltrail.stages:make_{stage}", settings, tmp_path)
        assert outcome.code == 0 and outcome.stats["rejected"] == 0, (stage, outcome)

    labels = [e for e in read(settings, "questions", 8) if isinstance(e, QuestionLabelCommitted)]
    by = {(e.comment_id, e.question_id): e for e in labels}
    assert len(labels) == len(by) == 8
    group = by[("c-1", "q2_targets_group")]
    assert (group.answer, group.distribution, group.agreement) == ("no", [1 / 3, 2 / 3], 2 / 6)
    assert by[("c-1", "q4_needs_context")].answer == "yes"
    assert by[("c-2", "q4_needs_context")].answer == "no"

    requests = [
        e
        for e in read(settings, "consensus", 3)
        if isinstance(e, AdjudicationRequested) and e.reason == NEEDS_CONTEXT
    ]
    assert [r.comment_id for r in requests] == ["c-1"]
    expert = [
        e
        for e in read(settings, "tasks.expert", 1)
        if isinstance(e, TaskAssigned) and e.request_id == requests[0].request_id
    ]
    assert len(expert) == 1 and expert[0].context == [THREAD]
    assert expert[0].annotator_id == "e1"

    with closing(client_from(settings)) as client:
        apply_ddl(client)
        projector = Projector(client, settings)
        stop = threading.Event()
        thread = threading.Thread(target=projector.run, args=(stop,))
        thread.start()
        try:
            assert projector.caught_up.wait(120)
        finally:
            stop.set()
            thread.join(30)
        rows = client.query(
            "SELECT comment_id, question_id, answer, agreement, length(vote_ids)"
            " FROM v_question_labels ORDER BY comment_id, question_id"
        ).result_rows
        assert len(rows) == 8
        assert ("c-1", "q2_targets_group", "no", pytest.approx(1 / 3), 3) in [
            tuple(r) for r in rows
        ]
        routed = client.query(
            "SELECT comment_id FROM v_adjudication_requests WHERE reason = 'needs_context'"
        ).result_rows
        assert [r[0] for r in routed] == ["c-1"]

        # Exported per question: each row carries every question's answer and agreement, and
        # the export is rebuilt from the log (the questions topic is among its positions).
        export = create_export(client, settings, schema_version="v3", out_dir=tmp_path / "x")
    assert any(p.topic.endswith(".questions") for p in export.log_positions)
    directory = tmp_path / "x" / export.export_id
    rows = {
        r["comment_id"]: r
        for r in map(json.loads, (directory / "rows.jsonl").read_text().splitlines())
    }
    assert sorted(rows) == ["c-1", "c-2"]
    asked = {q["question_id"]: q for q in rows["c-1"]["questions"]}
    assert sorted(asked) == sorted(q.question_id for q in V3_QUESTIONS)
    assert asked["q2_targets_group"]["answer"] == "no"
    assert asked["q2_targets_group"]["agreement"] == pytest.approx(1 / 3)
    assert asked["q4_needs_context"]["answer"] == "yes"
    parquet = {r["comment_id"]: r for r in read_parquet_rows(directory / "rows.parquet")}
    assert parquet == rows
    result = verify_export(settings, export)
    assert not result.problems and result.rebuilt_hash == export.content_hash
