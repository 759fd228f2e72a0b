"""The one way labeltrail builds a Kafka consumer, and what it asks of the log's ends.

Every consumer (stage runners, the projector, the frontend's feed, exports, probes) is built
by :func:`make_consumer` from the settings, so security, timeouts and isolation are the same
everywhere.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from labeltrail.config import Settings
from labeltrail.kafka.registry import codec_for

__all__ = ["consumer_config", "drained", "high_watermark", "make_consumer", "unread"]


def consumer_config(settings: Settings, group: str, **overrides: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        **settings.kafka_config(),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "isolation.level": "read_committed",
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "heartbeat.interval.ms": max(settings.kafka_session_timeout_ms // 5, 1000),
    }
    conf.update(overrides)
    return conf


def high_watermark(consumer: Consumer, tp: TopicPartition, *, attempts: int = 50) -> int:
    """The partition's high watermark from the broker, retrying while leadership settles."""
    for attempt in range(attempts):
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1])
        except KafkaException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")  # pragma: no cover


def drained(consumer: Consumer, next_offsets: dict[tuple[str, int], int]) -> bool:
    """True when every assigned partition has been read to its high watermark.

    ``next_offsets`` is what the caller has read up to (its own record: the client's position
    is unknown until a partition's first fetch). Watermarks come from the fetch responses'
    cache; the broker is asked only where none is cached yet.
    """
    for tp in consumer.assignment():
        low, high = consumer.get_watermark_offsets(tp, cached=True)
        if high < 0:
            try:
                high = high_watermark(consumer, tp, attempts=3)
            except KafkaException:
                return False  # the broker is not answering: certainly not known to be drained
            low = 0
        if next_offsets.get((tp.topic, tp.partition), low) < high:
            return False
    return True


def unread(
    consumer: Consumer, next_offsets: dict[tuple[str, int], int]
) -> dict[tuple[str, int], int] | None:
    """Records not yet read per assigned partition, from the cached watermarks (0 where none
    is cached yet); None when the consumer cannot tell its assignment (it is closing)."""
    try:
        assignment = consumer.assignment()
    except (KafkaException, RuntimeError):
        return None
    lag = {}
    for tp in assignment:
        key = (tp.topic, tp.partition)
        low, high = consumer.get_watermark_offsets(tp, cached=True)
        lag[key] = max(high - next_offsets.get(key, low), 0) if high >= 0 else 0
    return lag


def make_consumer(settings: Settings, group: str, **overrides: Any) -> Consumer:
    """A consumer of the settings' cluster in ``group`` (see :func:`consumer_config`); with a
    schema registry configured, Confluent-framed records decode through it."""
    codec_for(settings)
    return Consumer(consumer_config(settings, group, **overrides))
