"""A real Kafka broker answers: records go round trip and consumer groups resume."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from labeltrail.config import Settings

pytestmark = pytest.mark.integration


def _producer(bootstrap: str) -> Producer:
    # murmur2_random: the Java/aiokafka partitioner, so faust consumers agree on placement.
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "acks": "all",
        }
    )


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = _producer(bootstrap)
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "records still queued after 30 s"
    assert errors == []


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def _poll(consumer: Consumer, count: int, timeout: float = 30.0) -> list[Message]:
    """Exactly ``count`` records, or fail after ``timeout`` seconds."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error() is not None:
            raise AssertionError(f"consumer error: {msg.error()}")
        out.append(msg)
    assert len(out) == count, f"read {len(out)} of {count} records in {timeout:.0f} s"
    return out


def test_produce_consume_round_trip(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    topic = kafka_topic_factory("round-trip", partitions=3)
    sent = [(f"key-{i}".encode(), f"value-{i}".encode()) for i in range(30)]
    _produce(kafka_bootstrap, topic, sent)

    consumer = _consumer(kafka_bootstrap, f"round-trip-{uuid.uuid4().hex}")
    try:
        consumer.subscribe([topic])
        received = _poll(consumer, len(sent))
    finally:
        consumer.close()

    assert sorted((m.key(), m.value()) for m in received) == sorted(sent)
    assert {m.partition() for m in received} <= {0, 1, 2}
    # One key, one partition: the same key always lands in the same partition.
    by_key: dict[bytes, set[int]] = {}
    for m in received:
        by_key.setdefault(m.key(), set()).add(m.partition())
    assert all(len(parts) == 1 for parts in by_key.values())


def test_consumer_group_commits_and_resumes(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    topic = kafka_topic_factory("group-resume")
    _produce(kafka_bootstrap, topic, [(b"k", str(i).encode()) for i in range(10)])
    group = f"resume-{uuid.uuid4().hex}"

    first = _consumer(kafka_bootstrap, group)
    try:
        first.subscribe([topic])
        head = _poll(first, 4)
        first.commit(message=head[-1], asynchronous=False)
    finally:
        first.close()
    assert [m.value() for m in head] == [b"0", b"1", b"2", b"3"]

    second = _consumer(kafka_bootstrap, group)
    try:
        committed = second.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == 4
        second.subscribe([topic])
        rest = _poll(second, 6)
        assert second.poll(1.0) is None, "read past the end: records delivered twice?"
    finally:
        second.close()
    assert [m.value() for m in rest] == [str(i).encode() for i in range(4, 10)]
    assert rest[0].offset() == 4


# --------------------------------------------------------------------------------------------
# One setting moves the broker for every command; `labeltrail topics list`


def test_kafka_port_moves_the_local_broker_and_every_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.kafka_fixture import load_local_kafka

    lk = load_local_kafka()
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("LABELTRAIL_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("LABELTRAIL_KAFKA_PORT", raising=False)
    assert Settings().kafka_bootstrap_servers == f"{lk.HOST}:{lk.DEFAULT_PORT}"

    monkeypatch.setenv("LABELTRAIL_KAFKA_PORT", "19392")
    assert lk.default_port() == 19392
    assert Settings().kafka_bootstrap_servers == f"{lk.HOST}:19392"

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-a:9092,kafka-b:9092")
    assert Settings().kafka_bootstrap_servers == "kafka-a:9092,kafka-b:9092"  # still wins


def test_topics_list_shows_partitions_policies_and_counts(pipeline_settings: Settings) -> None:
    from typer.testing import CliRunner

    from labeltrail.cli import app
    from labeltrail.events.topics import TOPICS, topic_name
    from labeltrail.kafka.admin import describe_topics, ensure_topics
    from labeltrail.kafka.producer import EventProducer
    from labeltrail.ontology import moderation_schema_v3
    from tests.events.samples import sample_event

    settings = pipeline_settings
    prefix = settings.topic_prefix
    before = describe_topics(settings)
    assert [t.name for t in before] == [topic_name(prefix, spec.suffix) for spec in TOPICS]
    assert not any(t.exists for t in before)

    ensure_topics(settings)
    producer = EventProducer(settings)
    comment = sample_event("CommentPosted")
    for i in range(5):
        producer.send(comment.model_copy(update={"comment_id": f"c{i}"}))
    producer.send(moderation_schema_v3())
    producer.flush()

    topics = {t.name: t for t in describe_topics(settings)}
    assert set(topics) == {topic_name(prefix, spec.suffix) for spec in TOPICS}
    comments, schemas = topics[f"{prefix}.comments"], topics[f"{prefix}.schemas"]
    assert (comments.partitions, comments.cleanup_policy, comments.retention_ms) == (
        3,
        "delete",
        "-1",
    )
    assert comments.messages == 5
    assert (schemas.partitions, schemas.cleanup_policy, schemas.messages) == (1, "compact", 1)
    assert topics[f"{prefix}.votes"].messages == 0

    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers}
    result = CliRunner().invoke(
        app, ["topics", "list"], env={**env, "LABELTRAIL_TOPIC_PREFIX": prefix}
    )
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()[1:]}
    assert rows[f"{prefix}.comments"] == ["3", "delete", "-1", "5"]
    assert rows[f"{prefix}.schemas"][:2] == ["1", "compact"]
    assert rows[f"{prefix}.schemas"][-1] == "1"
    assert len(rows) == len(TOPICS)
