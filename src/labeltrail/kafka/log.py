"""Read the log up to given positions: decoded events (exports, probes) or raw record values
in batches (a replay at batch speed)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from confluent_kafka import Message, TopicPartition

from labeltrail.config import Settings
from labeltrail.events.base import Event, LogPosition
from labeltrail.events.serde import decode, event_type_of
from labeltrail.exceptions import LabeltrailError, SerializationError
from labeltrail.kafka.consumer import high_watermark, make_consumer

__all__ = ["end_positions", "read_kinds", "read_records", "read_until", "read_values"]

_BULK_FETCH = {"fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 8 * 1024 * 1024}
"""Consumer settings of the bulk readers (large fetches)."""


def end_positions(settings: Settings, topics: Sequence[str]) -> list[LogPosition]:
    """The current end offset of every partition of ``topics`` (missing topics are skipped)."""
    consumer = make_consumer(settings, f"{settings.topic_prefix}.export-probe")
    try:
        meta = consumer.list_topics(timeout=30)
        out: list[LogPosition] = []
        for topic in topics:
            if topic not in meta.topics:
                continue
            for partition in sorted(meta.topics[topic].partitions):
                # retried while leadership settles (a topic just created): NOT_LEADER otherwise
                high = high_watermark(consumer, TopicPartition(topic, partition))
                out.append(LogPosition(topic=topic, partition=partition, offset=max(high, 0)))
        return out
    finally:
        consumer.close()


def read_until(
    settings: Settings,
    positions: Sequence[LogPosition],
    *,
    batch: int = 5_000,
    timeout: float = 600.0,
) -> Iterator[tuple[Event, LogPosition]]:
    """Every decodable event before ``positions``, in log order within each partition.

    Records that do not decode are skipped: the projector dead-letters them and they never
    reach ClickHouse either.
    """
    for messages in _fetched(settings, positions, "export-reader", batch, timeout):
        for msg in messages:
            try:
                event = decode(msg.value() or b"")
            except SerializationError:
                continue
            position = LogPosition(
                topic=msg.topic() or "", partition=msg.partition() or 0, offset=msg.offset() or 0
            )
            yield event, position


def read_values(
    settings: Settings,
    positions: Sequence[LogPosition],
    *,
    batch: int = 20_000,
    timeout: float = 600.0,
) -> Iterator[list[bytes]]:
    """The raw values of every record before ``positions``, in fetched batches (log order
    within each partition), for a caller that decodes a batch at a time
    (``events.columnar.decode_rows``): a replay of the log at batch speed."""
    for messages in _fetched(settings, positions, "replay-reader", batch, timeout, **_BULK_FETCH):
        yield [msg.value() or b"" for msg in messages]


def read_records(
    settings: Settings,
    positions: Sequence[LogPosition],
    *,
    batch: int = 20_000,
    timeout: float = 600.0,
) -> Iterator[tuple[list[bytes], list[tuple[str, int, int]]]]:
    """As :func:`read_values`, with each value's (topic, partition, offset): for a columnar
    reader whose rows must say where they were read (``labeltrail relabel``'s labels)."""
    for messages in _fetched(settings, positions, "replay-reader", batch, timeout, **_BULK_FETCH):
        yield (
            [msg.value() or b"" for msg in messages],
            [(msg.topic() or "", msg.partition() or 0, msg.offset() or 0) for msg in messages],
        )


def read_kinds(
    settings: Settings, topics: Sequence[str], kinds: frozenset[str], *, timeout: float = 60.0
) -> list[Event]:
    """The events of ``kinds`` on ``topics`` up to their end now, in log order within each
    partition; records of other types are skipped undecoded (a registry read beside the
    honeypot results that share its topic), undecodable ones skipped as :func:`read_until`
    does."""
    out: list[Event] = []
    for values in read_values(settings, end_positions(settings, topics), timeout=timeout):
        for value in values:
            try:
                if event_type_of(value) in kinds:
                    out.append(decode(value))
            except SerializationError:
                continue
    return out


def _fetched(
    settings: Settings,
    positions: Sequence[LogPosition],
    role: str,
    batch: int,
    timeout: float,
    **overrides: Any,
) -> Iterator[list[Message]]:
    """The records before ``positions``, from the start of each partition, as fetched
    (records in error left out; none when nothing is before them). Fails when ``timeout``
    seconds pass with no record read while some position is not reached."""
    wanted = {(p.topic, p.partition): p.offset for p in positions if p.offset > 0}
    if not wanted:
        return
    consumer = make_consumer(settings, f"{settings.topic_prefix}.{role}", **overrides)
    try:
        consumer.assign([TopicPartition(t, p, 0) for (t, p) in sorted(wanted)])
        open_parts = set(wanted)
        deadline = time.monotonic() + timeout
        while open_parts:
            if time.monotonic() > deadline:
                raise LabeltrailError(f"log not readable up to the positions: {open_parts}")
            messages = consumer.consume(batch, timeout=1.0)
            if not messages:
                # Offsets may end in gaps (control records, compaction): trust the position.
                current = consumer.position([TopicPartition(t, p) for (t, p) in open_parts])
                for tp in current:
                    if tp.offset >= wanted[(tp.topic, tp.partition)]:
                        open_parts.discard((tp.topic, tp.partition))
                continue
            deadline = time.monotonic() + timeout
            out: list[Message] = []
            for msg in messages:
                if msg.error() is not None:
                    continue
                key = (msg.topic() or "", msg.partition() or 0)
                offset = msg.offset() or 0
                if key not in open_parts or offset >= wanted[key]:
                    continue
                if offset + 1 >= wanted[key]:
                    open_parts.discard(key)
                out.append(msg)
            if out:
                yield out
    finally:
        consumer.close()
