"""A real Kafka broker answers: records go round trip and consumer groups resume."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

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
