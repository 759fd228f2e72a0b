"""Looking at a running pipeline from outside: consumer-group progress and topic contents."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import Consumer, TopicPartition

from labeltrail.config import Settings
from labeltrail.events import Event
from labeltrail.events.topics import topic_name
from labeltrail.kafka.consumer import high_watermark, make_consumer
from labeltrail.kafka.log import end_positions, read_until


def _partitions(
    consumer: Consumer, settings: Settings, inputs: Sequence[str]
) -> list[TopicPartition]:
    meta = consumer.list_topics(timeout=10).topics
    topics = [topic_name(settings.topic_prefix, s) for s in inputs]
    return [TopicPartition(t, p) for t in topics for p in meta[t].partitions]


def committed(settings: Settings, group: str, inputs: Sequence[str]) -> int:
    """How far ``<prefix>.<group>`` has committed, summed over its inputs."""
    probe = make_consumer(settings, f"{settings.topic_prefix}.{group}")
    try:
        parts = _partitions(probe, settings, inputs)
        return sum(max(tp.offset, 0) for tp in probe.committed(parts, timeout=10))
    finally:
        probe.close()


def lag(settings: Settings, groups: Mapping[str, Sequence[str]]) -> int:
    """Unread records summed over each ``<prefix>.<group>`` and its committed inputs."""
    reader = make_consumer(settings, f"{settings.topic_prefix}.lag-probe")
    total = 0
    try:
        for group, inputs in groups.items():
            probe = make_consumer(settings, f"{settings.topic_prefix}.{group}")
            try:
                for tp in probe.committed(_partitions(probe, settings, inputs), timeout=10):
                    total += max(high_watermark(reader, tp) - max(tp.offset, 0), 0)
            finally:
                probe.close()
    finally:
        reader.close()
    return total


def read_topic(settings: Settings, suffix: str) -> list[Event]:
    """Every event on ``<prefix>.<suffix>`` up to its end now (read through ``kafka.log``, as
    exports read the log; a missing topic reads as empty)."""
    positions = end_positions(settings, [topic_name(settings.topic_prefix, suffix)])
    return [event for event, _ in read_until(settings, positions, timeout=60.0)]


def wait_for_progress(
    settings: Settings, group: str, inputs: Sequence[str], *, timeout: float = 60.0
) -> None:
    """Until ``<prefix>.<group>`` has committed some of its input (the stage is mid-stream)."""
    deadline = time.monotonic() + timeout
    while committed(settings, group, inputs) == 0:
        assert time.monotonic() < deadline, f"{group} made no progress in {timeout:.0f}s"
        time.sleep(0.2)


def wait_until_settled(
    settings: Settings,
    groups: Mapping[str, Sequence[str]],
    *,
    timeout: float = 240.0,
    still_alive: Callable[[], None] = lambda: None,
) -> None:
    """Until every group has read all of its input, three checks in a row a second apart.

    ``still_alive`` runs before each check and raises if a stage has died.
    """
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        assert time.monotonic() < deadline, "the pipeline did not settle"
        still_alive()
        quiet = quiet + 1 if lag(settings, groups) == 0 else 0
        time.sleep(1.0)
