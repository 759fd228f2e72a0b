"""An export made at T reproduces from the log after more votes, labels and a schema change,
and label-as-of at T agrees with it row for row."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from, run_named
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.clickhouse.trace import full_trace
from labeltrail.config import Settings
from labeltrail.events import Event, LabelCommitted, LabelSchemaPublished, ModelPublished, VoteCast
from labeltrail.export.build import (
    create_export,
    find_export,
    sql_time,
    verify_directory,
    verify_export,
)
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.ontology import moderation_schema_v3
from tests.audit.history import adjudicated_comment, simulated

pytestmark = pytest.mark.integration


def _later_history(labels: list[LabelCommitted]) -> list[Event]:
    """More votes, a changed v3 label, a v4 schema and a v4 label, all recorded after T."""
    changed = labels[0]
    v3 = moderation_schema_v3()
    v4 = LabelSchemaPublished.create(
        producer="tests",
        id_parts=("v4",),
        version="v4",
        classes=[*v3.classes, "spam"],
        questions=v3.questions,
        guideline_hash="sha256:v4",
        supersedes="v3",
        old_label_policy="keep_as_feature",
    )
    relabel = LabelCommitted.create(
        producer="tests",
        id_parts=("relabel", changed.comment_id),
        **{
            **changed.model_dump(exclude={"envelope"}),
            "label_id": "relabel-1",
            "label": "hate" if changed.label != "hate" else "mild",
        },
    )
    v4_label = LabelCommitted.create(
        producer="tests",
        id_parts=("v4-label", changed.comment_id),
        **{**changed.model_dump(exclude={"envelope"}), "label_id": "v4-1", "schema_version": "v4"},
    )
    vote = VoteCast.create(
        producer="tests",
        id_parts=("late-vote",),
        vote_id="late-vote",
        task_id="late-task",
        comment_id=changed.comment_id,
        annotator_id="annotator_late",
        schema_version="v3",
        label="threats",
        time_spent_ms=1000,
    )
    return [v4, relabel, v4_label, vote]


def test_export_reproduces_and_matches_label_as_of(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    events = simulated(60, seed=13)
    producer = EventProducer(settings)
    for event in events:
        producer.send(event)
    producer.flush()
    client = client_from(settings)
    apply_ddl(client)

    export = create_export(client, settings, schema_version="v3", out_dir=tmp_path / "exports")
    directory = Path(export.uri.removeprefix("file://"))
    jsonl = [json.loads(line) for line in (directory / "rows.jsonl").read_text().splitlines()]
    assert export.row_count == len(jsonl) > 0
    assert pq.read_table(directory / "rows.parquet").num_rows == len(jsonl)

    time.sleep(0.05)
    labels = [e for e in events if isinstance(e, LabelCommitted)]
    for event in _later_history(labels):
        producer.send(event)
    comment = adjudicated_comment(events)
    producer.send(
        ModelPublished.create(
            producer="tests",
            id_parts=("model-v2",),
            model_version="m-v2",
            artifact_uri="file:///tmp/m-v2.onnx",
            artifact_sha256="00",
            classes=list(moderation_schema_v3().classes),
            export_id=export.export_id,
            export_hash=export.content_hash,
            metrics={"recall@coded_harassment": 0.71},
        )
    )
    producer.flush()
    run_until_caught_up(Projector(client, settings), timeout=120)

    result = verify_export(settings, find_export(settings, export.export_id))
    assert result.ok, result
    assert result.rebuilt_hash == export.content_hash and result.rebuilt_rows == len(jsonl)
    again = verify_directory(settings, directory)
    assert again.ok, again.problems
    assert again.checked_files == ("rows.jsonl", "rows.parquet")

    as_of = run_named(
        client,
        "label_as_of",
        comment_id="",
        at=sql_time(export.as_of),
        schema_version="v3",
        time="recorded",
    )
    assert sorted(
        (r["comment_id"], r["label"], r["confidence"], r["distribution"], r["label_id"])
        for r in as_of
    ) == [
        (r["comment_id"], r["label"], r["confidence"], r["soft_label"], r["label_id"])
        for r in jsonl
    ]

    now = create_export(client, settings, schema_version="v3", out_dir=tmp_path / "exports")
    assert now.content_hash != export.content_hash  # the later relabel changes a new export
    tampered = dataclasses.replace(result, rebuilt_hash="sha256:0")
    assert not tampered.ok

    trace = full_trace(client, comment)
    links = {r["event_type"]: r["link"] for r in trace if r["link"]}
    assert links.get("ExportCreated") == "export includes its label"
    assert links.get("ModelPublished", "").startswith("trained on export")
    client.close()
