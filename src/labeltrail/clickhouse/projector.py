"""Project every topic into ClickHouse: raw events plus typed tables, resumable exactly.

The projector reads every partition of every labeltrail topic from the positions recorded in
ClickHouse and hands the batches to :class:`~labeltrail.clickhouse.writer.BatchWriter`; a
record that does not decode is dead-lettered (with a deterministic id), except in a rebuild,
which only reads the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from labeltrail.clickhouse.client import Client
from labeltrail.clickhouse.writer import BatchWriter, LogRecord
from labeltrail.config import Settings
from labeltrail.events.topics import TOPICS, events_on, topic_name
from labeltrail.kafka.consumer import drained, make_consumer, unread
from labeltrail.kafka.keys import KafkaKeyStore
from labeltrail.kafka.metrics import ServiceMetrics, serve_metrics
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageStats, dead_letter

__all__ = ["Projector", "ProjectorStats"]

log = logging.getLogger(__name__)


@dataclass
class ProjectorStats:
    """Counts since start: ``consumed == projected + rejected``."""

    consumed: int = 0
    projected: int = 0
    rejected: int = 0
    batches: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)

    def as_stage(self) -> StageStats:
        """The same counts in a stage's terms (projected = processed), for the metrics."""
        return StageStats(
            consumed=self.consumed,
            processed=self.projected,
            rejected=self.rejected,
            reasons=Counter(self.reasons),
        )


class Projector:
    """Reads every labeltrail topic and writes it into ClickHouse.

    ``caught_up`` is set whenever every assigned partition has been read to its end.
    """

    name = "projector"

    def __init__(
        self,
        client: Client,
        settings: Settings,
        *,
        batch_size: int = 5_000,
        max_wait: float = 0.5,
        emit_dead_letters: bool = True,
    ) -> None:
        self.client = client
        self.settings = settings
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.emit_dead_letters = emit_dead_letters
        self.stats = ProjectorStats()
        self.caught_up = threading.Event()
        self.consumer_name = f"{settings.topic_prefix}.projector"
        self.topics = [
            topic_name(settings.topic_prefix, spec.suffix) for spec in TOPICS if not spec.mirror
        ]
        self.keyring = KafkaKeyStore(settings)
        """Reveals sealed comment text; erased text reads as erased (``docs/erasure.md``)."""
        self.writer = BatchWriter(
            client,
            self.consumer_name,
            on_topic=events_on(settings.topic_prefix),
            keyring=self.keyring,
        )
        self.engine_lock = threading.Lock()
        """Held for each batch, data and positions: its read endpoint (``projections run`` on a
        chdb directory) takes it for every query, so a read sees whole batches only."""
        self._consumer = make_consumer(settings, self.consumer_name)
        self._producer = EventProducer(settings) if emit_dead_letters else None
        # What has been read, per partition: the client's position is unknown until the
        # first fetch, so drained() needs our own record (see labeltrail.kafka.runner).
        self._read_to: dict[tuple[str, int], int] = {}
        self.metrics = ServiceMetrics(self.name, self.stats.as_stage)
        """Its registry and vitals; a "commit" is the write of its positions to ClickHouse."""

    def _assign(self) -> None:
        with self.engine_lock:
            stored = self.writer.stored_positions()
        meta = self._consumer.list_topics(timeout=30)
        assignment = []
        for topic in self.topics:
            if topic not in meta.topics:
                continue
            for partition in sorted(meta.topics[topic].partitions):
                offset = stored.get((topic, partition), OFFSET_BEGINNING)
                if offset != OFFSET_BEGINNING:
                    self._read_to[(topic, partition)] = offset
                assignment.append(TopicPartition(topic, partition, offset))
        self._consumer.assign(assignment)

    def run(self, stop: threading.Event, *, idle_seconds: float = 1.0) -> ProjectorStats:
        """Project until ``stop`` is set (serving its metrics meanwhile, when configured)."""
        server = serve_metrics(self.metrics, self.settings)
        idle_since: float | None = None
        try:
            self._assign()
            while not stop.is_set():
                batch = self._collect()
                self._report_vitals()
                if batch:
                    idle_since = None
                    self.caught_up.clear()
                    self._write(batch)
                    continue
                now = time.monotonic()
                idle_since = idle_since or now
                if now - idle_since >= idle_seconds and self._at_end():
                    self.caught_up.set()
                    self._report_vitals(force=True)
        except BaseException as exc:
            self.metrics.vitals.failure = repr(exc)
            raise
        finally:
            self._consumer.close()
            self.keyring.close()
            if self._producer is not None:
                self._producer.close()
            if server is not None:
                server.close()
        return self.stats

    def _report_vitals(self, *, force: bool = False) -> None:
        vitals = self.metrics.vitals
        now = time.monotonic()
        vitals.polled_at, vitals.caught_up = now, self.caught_up.is_set()
        if self.metrics.due(now, force=force):
            lag = unread(self._consumer, self._read_to)
            if lag is not None:
                vitals.lag, vitals.assigned = lag, len(lag)

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
        return drained(self._consumer, self._read_to)

    def _write(self, batch: list[Message]) -> None:
        started = time.perf_counter()
        records = [
            LogRecord(m.topic() or "", m.partition() or 0, m.offset() or 0, m.value() or b"")
            for m in batch
        ]
        messages = {
            (r.topic, r.partition, r.offset): m for r, m in zip(records, batch, strict=True)
        }
        for r in records:
            self._read_to[(r.topic, r.partition)] = r.offset + 1
        with self.engine_lock:
            result = self.writer.write_records(records)
            if result.rejected and self._producer is not None:
                for record, exc in result.rejected:
                    msg = messages[(record.topic, record.partition, record.offset)]
                    self._producer.send(dead_letter(msg, self.name, exc.reason_code, str(exc)))
                self._producer.flush()
            self.writer.record_positions(result.positions)
        self.metrics.vitals.committed_at = time.monotonic()
        self.stats.consumed += len(records)
        self.stats.projected += result.projected
        self.stats.rejected += len(result.rejected)
        self.stats.reasons.update(exc.reason_code for _, exc in result.rejected)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        for m in batch:
            self.metrics.observe_age(m.timestamp()[1])
        self.stats.batches += 1
        for name, n in result.by_type.items():
            self.stats.by_type[name] = self.stats.by_type.get(name, 0) + n
