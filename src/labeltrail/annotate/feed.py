"""The task feed: reads the task, schema and answer topics into a :class:`TaskQueue`.

It assigns itself every partition of ``tasks.crowd``, ``tasks.expert``, ``schemas``, ``votes``,
``adjudications`` and ``annotators.status`` (suspensions and reinstatements) from the
beginning and commits nothing: on every start the queues are rebuilt from the log, and tasks
whose answer is already on the log are not served again.
``caught_up`` is set once the records that existed at start have been read; the frontend is
not ready (``/readyz`` answers 503, task pages wait) until then.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from labeltrail.annotate.metrics import Metrics
from labeltrail.annotate.queue import TaskQueue
from labeltrail.config import Settings
from labeltrail.events.models import (
    AdjudicationRecorded,
    AnnotatorReinstated,
    AnnotatorSuspended,
    LabelSchemaPublished,
    TaskAssigned,
    VoteCast,
)
from labeltrail.events.serde import decode
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import SerializationError
from labeltrail.kafka.consumer import make_consumer

__all__ = ["FEED_TOPICS", "TaskFeed", "wait_ready"]

log = logging.getLogger(__name__)

_SETTLING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
}
FEED_TOPICS = (
    "tasks.crowd",
    "tasks.expert",
    "schemas",
    "votes",
    "adjudications",
    "annotators.status",
)


class TaskFeed:
    """Run :meth:`run` in a thread; set the stop event to end it."""

    def __init__(self, settings: Settings, queue: TaskQueue, metrics: Metrics) -> None:
        self.settings = settings
        self.queue = queue
        self.metrics = metrics
        self.topics = [topic_name(settings.topic_prefix, s) for s in FEED_TOPICS]
        self.caught_up = threading.Event()
        self.failed: str | None = None
        # Its own group, but nothing is committed: every start rebuilds from the log.
        self._consumer = make_consumer(settings, f"{settings.topic_prefix}.annotate")
        self._targets: dict[tuple[str, int], int] = {}

    def _assign(self) -> None:
        meta = self._consumer.list_topics(timeout=30)
        partitions = [
            TopicPartition(t, p, OFFSET_BEGINNING)
            for t in self.topics
            if t in meta.topics
            for p in sorted(meta.topics[t].partitions)
        ]
        missing = [t for t in self.topics if t not in meta.topics]
        if missing:
            log.warning("topics missing (create them with `labeltrail topics create`): %s", missing)
        for tp in partitions:
            low, high = self._watermarks(tp)
            if high > low:
                self._targets[(tp.topic, tp.partition)] = high
        self._consumer.assign(partitions)

    def _watermarks(self, tp: TopicPartition, attempts: int = 40) -> tuple[int, int]:
        """Low and high offsets; retried while a new topic's leader settles."""
        attempt = 0
        while True:
            try:
                low, high = self._consumer.get_watermark_offsets(tp, timeout=10)
                return int(low), int(high)
            except KafkaException as exc:
                error = exc.args[0]
                settling = error.retriable() or error.code() in _SETTLING
                attempt += 1
                if attempt >= attempts or not settling:
                    raise
                time.sleep(0.25)

    def run(self, stop: threading.Event) -> None:
        """Read until ``stop`` is set (the thread's target)."""
        try:
            self._assign()
            self._check_caught_up()
            while not stop.is_set():
                for msg in self._consumer.consume(500, timeout=0.2):
                    self._one(msg)
                if not self.caught_up.is_set():
                    self._check_caught_up()
        except Exception as exc:  # the frontend reports unready rather than dying silently
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("task feed stopped")
        finally:
            self._consumer.close()

    def _check_caught_up(self) -> None:
        if not self._targets:
            self.caught_up.set()
            self.metrics.ready.set(1)

    def _one(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"consumer error {err}")
            return
        where = (msg.topic() or "", msg.partition() or 0)
        offset = msg.offset() or 0
        target = self._targets.get(where)
        if target is not None and offset + 1 >= target:
            del self._targets[where]
        try:
            event = decode(msg.value() or b"")
        except SerializationError as exc:
            # The stage that wrote the record owns its dead letter; here it is counted and logged.
            self.metrics.feed_records.labels("undecodable").inc()
            log.warning("skipping %s[%s]@%s: %s", where[0], where[1], offset, exc)
            return
        match event:
            case TaskAssigned():
                outcome = "task" if self.queue.offer(event) else "task_answered"
            case VoteCast():
                self.queue.record_outcome(event.vote_id)
                outcome = "vote"
            case AdjudicationRecorded():
                self.queue.record_outcome(event.adjudication_id)
                outcome = "adjudication"
            case LabelSchemaPublished():
                self.queue.add_schema(event)
                outcome = "schema"
            case AnnotatorSuspended():
                self.queue.suspend(event.annotator_id, event.reason)
                outcome = "suspension"
            case AnnotatorReinstated():
                self.queue.reinstate(event.annotator_id)
                outcome = "reinstatement"
            case _:
                outcome = "ignored"
        self.metrics.feed_records.labels(outcome).inc()
        self.metrics.pending.set(self.queue.depth())


def wait_ready(feed: TaskFeed, timeout: float) -> bool:
    """Block until the feed caught up (True) or failed or timed out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if feed.caught_up.wait(0.1):
            return True
        if feed.failed:
            return False
    return False
