"""Project every topic into ClickHouse: raw events, idempotent on event id, resumable exactly.

Each batch is inserted through Arrow, then the positions it reached are inserted; on start
the projector resumes from the stored positions. A crash between the two inserts re-inserts
the batch, which the ReplacingMergeTree keyed on event id absorbs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.exceptions import SerializationError
from labeltrail.events.serde import decode
from labeltrail.events.topics import TOPICS, topic_name
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import consumer_config, dead_letter

__all__ = ["EVENTS_SCHEMA", "Projector", "ProjectorStats", "event_rows"]

log = logging.getLogger(__name__)

EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("topic", pa.string()),
        ("partition", pa.uint16()),
        ("offset", pa.uint64()),
        ("message_key", pa.string()),
        ("comment_id", pa.string()),
        ("annotator_id", pa.string()),
        ("schema_version", pa.string()),
        ("occurred_at", pa.timestamp("ms", tz="UTC")),
        ("recorded_at", pa.timestamp("ms", tz="UTC")),
        ("producer", pa.string()),
        ("causation_id", pa.string()),
        ("correlation_id", pa.string()),
        ("payload", pa.string()),
    ]
)


def _row(event: Event, topic: str, partition: int, offset: int) -> dict[str, object]:
    env = event.envelope
    fields = event.model_dump(mode="json", exclude={"envelope"})
    annotator = fields.get("annotator_id") or fields.get("reviewer_id") or ""
    version = fields.get("schema_version") or fields.get("version") or ""
    return {
        "event_id": env.event_id,
        "event_type": env.event_type,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "message_key": event.key,
        "comment_id": fields.get("comment_id") or "",
        "annotator_id": annotator,
        "schema_version": version,
        "occurred_at": env.occurred_at,
        "recorded_at": env.recorded_at,
        "producer": env.producer,
        "causation_id": env.causation_id or "",
        "correlation_id": env.correlation_id or "",
        "payload": json.dumps(fields, separators=(",", ":"), sort_keys=True),
    }


def event_rows(items: Iterable[tuple[Event, str, int, int]]) -> pa.Table:
    """An Arrow table of ``events`` rows from (event, topic, partition, offset)."""
    rows = [_row(*item) for item in items]
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


@dataclass
class ProjectorStats:
    consumed: int = 0
    projected: int = 0
    rejected: int = 0
    batches: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class Projector:
    """Reads every labeltrail topic and writes it into ClickHouse."""

    name = "projector"

    def __init__(
        self,
        client: Client,
        settings: Settings,
        *,
        batch_size: int = 5_000,
        max_wait: float = 0.5,
    ) -> None:
        self.client = client
        self.settings = settings
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.stats = ProjectorStats()
        self.caught_up = threading.Event()
        self.consumer_name = f"{settings.topic_prefix}.projector"
        self.topics = [topic_name(settings.topic_prefix, spec.suffix) for spec in TOPICS]
        self._consumer = Consumer(consumer_config(settings, self.consumer_name))
        self._producer = EventProducer(settings)

    def _stored_positions(self) -> dict[tuple[str, int], int]:
        result = self.client.query(
            "SELECT topic, partition, max(next_offset) FROM consumer_positions FINAL "
            "WHERE consumer = {c:String} GROUP BY topic, partition",
            parameters={"c": self.consumer_name},
        )
        return {(str(t), int(p)): int(o) for t, p, o in result.result_rows}

    def _assign(self) -> None:
        stored = self._stored_positions()
        meta = self._consumer.list_topics(timeout=30)
        assignment = []
        for topic in self.topics:
            if topic not in meta.topics:
                continue
            for partition in sorted(meta.topics[topic].partitions):
                offset = stored.get((topic, partition), OFFSET_BEGINNING)
                assignment.append(TopicPartition(topic, partition, offset))
        self._consumer.assign(assignment)

    def run(self, stop: threading.Event, *, idle_seconds: float = 1.0) -> ProjectorStats:
        self._assign()
        idle_since: float | None = None
        try:
            while not stop.is_set():
                batch = self._collect()
                if batch:
                    idle_since = None
                    self.caught_up.clear()
                    self._write(batch)
                    continue
                now = time.monotonic()
                idle_since = idle_since or now
                if now - idle_since >= idle_seconds and self._at_end():
                    self.caught_up.set()
        finally:
            self._consumer.close()
        return self.stats

    def _collect(self) -> list[Message]:
        deadline = time.monotonic() + self.max_wait
        batch: list[Message] = []
        while len(batch) < self.batch_size and time.monotonic() < deadline:
            got = self._consumer.consume(self.batch_size - len(batch), timeout=0.1)
            batch += [m for m in got if m.error() is None]
            if not got:
                break
        return batch

    def _at_end(self) -> bool:
        """True when every assigned partition has been read to its high watermark.

        Uses the watermarks cached from fetch responses: no broker round trip per call.
        """
        assignment = self._consumer.assignment()
        for tp in self._consumer.position(assignment):
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0 or (high > 0 and (tp.offset < 0 or tp.offset < high)):
                return False
        return True

    def _write(self, batch: list[Message]) -> None:
        items: list[tuple[Event, str, int, int]] = []
        positions: dict[tuple[str, int], int] = {}
        for msg in batch:
            topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
            positions[(topic, partition)] = offset + 1
            self.stats.consumed += 1
            try:
                event = decode(msg.value() or b"")
            except SerializationError as exc:
                self.stats.rejected += 1
                self._producer.send(dead_letter(msg, self.name, exc.reason_code, str(exc)))
                continue
            items.append((event, topic, partition, offset))
            name = event.envelope.event_type
            self.stats.by_type[name] = self.stats.by_type.get(name, 0) + 1
        self._producer.flush()
        if items:
            self.client.insert_arrow("events", event_rows(items))
            self.stats.projected += len(items)
        now = dt.datetime.now(dt.UTC)
        self.client.insert(
            "consumer_positions",
            [[self.consumer_name, t, p, o, now] for (t, p), o in positions.items()],
            column_names=["consumer", "topic", "partition", "next_offset", "updated_at"],
        )
        self.stats.batches += 1
