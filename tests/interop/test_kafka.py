"""Java Kafka clients on the real broker: a Java producer feeds the live pipeline, a Java
frontend reads its tasks, and a foreign client's bad messages are dead-lettered.

The comments are posted by the Apache Kafka Java producer, encoded by Apache Avro's Java
``BinaryMessageEncoder`` (``tests/interop/java.py``); every stage of the demo pipeline then
runs on them (scorer, tasking, annotators, consensus, labels, projector) and must commit the
labels of the in-memory reference run. The crowd task topic is then read by the Java consumer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labeltrail.config import Settings
from labeltrail.events import CommentPosted, DeadLettered, Event, TaskAssigned
from labeltrail.events.avro import schema_dir
from labeltrail.events.topics import topic_name
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.sim import Platform, PlatformConfig
from labeltrail.sim.demo import DEMO_DAYS, run_demo
from tests.events.samples import sample_event
from tests.folds.helpers import final_labels, run_in_memory
from tests.interop.java import Java, to_json
from tests.kafka.histories import read
from tests.kafka.runners import run_stage
from tests.probes import read_topic
from tests.sim.test_demo import _labels_from_clickhouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = PlatformConfig.sized(120, seed=11, days=DEMO_DAYS)


def _seed_all_but_comments(settings: Settings, platform: Platform) -> list[CommentPosted]:
    """What the demo seeds, except the comments, which are the Java producer's: returned."""
    producer = EventProducer(settings)
    for copy in platform.gold_topic_events():
        producer.send(copy, topic=topic_name(settings.topic_prefix, "gold"))
    comments = []
    for event in platform.inputs():
        if isinstance(event, CommentPosted):
            comments.append(event)
        else:
            producer.send(event)
    producer.flush()
    return comments


def test_a_java_producer_feeds_the_live_pipeline_and_a_java_consumer_reads_tasks(
    pipeline_settings: Settings, java: Java
) -> None:
    settings = pipeline_settings
    platform = Platform(CONFIG)
    ensure_topics(settings)
    comments = _seed_all_but_comments(settings, platform)
    topic = topic_name(settings.topic_prefix, "comments")
    partitions = java.produce(settings.kafka_bootstrap_servers, topic, comments)
    assert len(partitions) == len(comments)

    # The demo sees its comments on the log already and runs every stage over them.
    result = run_demo(settings, config=CONFIG, timeout=300)
    assert result.produced == 0
    assert result.table_counts["CommentPosted"] == len(comments)
    assert result.table_counts["TaskCreated"] > 0 and result.table_counts["VoteCast"] > 0
    assert result.dead_letters == 0
    reference = final_labels(run_in_memory(Platform(CONFIG)).log["labels"])
    assert _labels_from_clickhouse(settings) == reference

    # Java's default partitioner (murmur2) put each comment where labeltrail puts its key: the
    # scorer's output for a comment is on the comment's partition.
    scored = {event.key: p for p, _, event in read(settings, "scores")}
    assert scored
    for comment, partition in zip(comments, partitions, strict=True):
        assert scored.get(comment.key, partition) == partition

    # A frontend in Java reads the crowd's tasks: the same events labeltrail reads.
    tasks = [e for e in read_topic(settings, "tasks.crowd") if isinstance(e, TaskAssigned)]
    assert tasks
    crowd = topic_name(settings.topic_prefix, "tasks.crowd")
    theirs = java.consume(settings.kafka_bootstrap_servers, crowd, len(tasks))
    by_id = {e.envelope.event_id: e for _, _, e in theirs}
    assert len(by_id) == len(theirs)  # each once
    assert by_id == {t.envelope.event_id: t for t in tasks}
    assert all(key == e.key for _, key, e in theirs)


def _foreign_contracts(tmp: Path) -> str:
    """Our contracts, with a CommentPosted that grew a field labeltrail has never seen."""
    for path in schema_dir().glob("*.avsc"):
        raw = json.loads(path.read_text())
        if raw["name"] == "CommentPosted":
            raw["fields"].append({"name": "region", "type": ["null", "string"], "default": None})
        (tmp / path.name).write_text(json.dumps(raw))
    return str(tmp)


def _comment(comment_id: str, **update: object) -> Event:
    sample = sample_event("CommentPosted")
    envelope = sample.envelope.model_copy(update={"event_id": f"e-{comment_id}"})
    return sample.model_copy(update={"comment_id": comment_id, "envelope": envelope, **update})


def test_a_foreign_clients_bad_messages_are_dead_lettered_and_the_stage_goes_on(
    pipeline_settings: Settings, java: Java, tmp_path: Path
) -> None:
    """Java-written: an unknown fingerprint (a contract labeltrail does not have), a body cut
    short, a value the contract's model refuses; between two good comments, all on one key."""
    settings = pipeline_settings.model_copy(update={"topic_partitions": 1})
    ensure_topics(settings)
    foreign = tmp_path / "contracts"
    foreign.mkdir()
    good = java.encode([_comment("c-good-1"), _comment("c-good-2")])
    newer_json = {**json.loads(to_json(_comment("c-newer"))), "region": {"string": "eu"}}
    [newer] = java.encode_json(
        [("CommentPosted", json.dumps(newer_json))], _foreign_contracts(foreign)
    )
    [invalid] = java.encode([_comment("c-invalid", source="a-crawler")])  # (not validated)
    records = [good[0], newer, good[1][:-3], invalid, good[1]]
    topic = topic_name(settings.topic_prefix, "comments")
    java.produce_raw(settings.kafka_bootstrap_servers, topic, [("c-1", r) for r in records])

    outcome = run_stage(
        "confluent", "labeltrail.stages:make_tasking", settings, tmp_path / "run", consumed=5
    )
    assert outcome.code == 0, outcome.log[-3000:]
    stats = outcome.stats
    assert stats["consumed"] == 5 and stats["processed"] == 2
    assert stats["reasons"] == {"unknown_event_type": 1, "undecodable": 1, "schema_invalid": 1}
    dead = {
        e.source_offset: e
        for e in read_topic(settings, "deadletter")
        if isinstance(e, DeadLettered) and e.stage == "tasking"
    }
    assert sorted(dead) == [1, 2, 3]
    assert dead[1].reason_code == "unknown_event_type" and newer[2:10].hex() in dead[1].reason
    assert dead[2].reason_code == "undecodable"
    assert dead[3].reason_code == "schema_invalid" and "source" in dead[3].reason
    assert [dead[o].payload for o in (1, 2, 3)] == records[1:4]
