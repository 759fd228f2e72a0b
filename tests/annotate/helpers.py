"""Builders shared by the annotate tests: tasks, tokens, and a topic reader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from labeltrail.annotate.app import Frontend, create_app
from labeltrail.annotate.auth import TokenStore, hash_token
from labeltrail.annotate.queue import TaskQueue
from labeltrail.annotate.ratelimit import RateLimiter
from labeltrail.annotate.sink import MemorySink
from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.ids import derive_id
from labeltrail.events.models import PriorVote, TaskAssigned
from labeltrail.events.serde import decode
from labeltrail.events.topics import topic_name

TOKENS = {"a47": "tok-a47-secret", "b12": "tok-b12-secret", "e-04": "tok-e04-secret"}
QUESTIONS = ["q1_slur", "q2_targets_group", "q3_threat", "q4_needs_context"]


def token_store() -> TokenStore:
    return TokenStore({a: hash_token(t) for a, t in TOKENS.items()})


def bearer(annotator: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {annotator}:{TOKENS[annotator]}"}


def make_task(
    annotator: str,
    n: int,
    *,
    text: str | None = None,
    pool: str = "crowd",
    prelabel: str | None = None,
    confidence: float | None = None,
    context: list[str] | None = None,
    prior_votes: list[PriorVote] | None = None,
    request_id: str | None = None,
) -> TaskAssigned:
    task_id = derive_id("task", f"c-{n}", "v3", pool)
    assignment_id = derive_id("assignment", task_id, annotator)
    fields: dict[str, Any] = {
        "task_id": task_id,
        "assignment_id": assignment_id,
        "comment_id": f"c-{n}",
        "annotator_id": annotator,
        "pool": pool,
        "schema_version": "v3",
        "questions": QUESTIONS,
        "text": text or f"comment number {n}",
        "context": context or [],
        "prelabel": prelabel,
        "prelabel_confidence": confidence,
        "prior_votes": prior_votes or [],
        "request_id": request_id,
        "cost_usd": 5.0 if pool == "expert" else 0.04,
    }
    return TaskAssigned.create(producer="test", id_parts=(assignment_id,), **fields)


Scenario = Callable[[TestClient[Any, Any], Frontend], Awaitable[None]]


def frontend(
    tasks: list[TaskAssigned],
    *,
    burst: int = 50,
    sink: Any = None,
    queue: TaskQueue | None = None,
    **parts: Any,
) -> Frontend:
    """A frontend over an in-memory sink with ``tasks`` queued; ``parts`` replace defaults."""
    queue = queue if queue is not None else TaskQueue()
    for task in tasks:
        queue.offer(task)
    values: dict[str, Any] = {
        "queue": queue,
        "sink": sink or MemorySink(),
        "tokens": token_store(),
        "submit_limit": RateLimiter(0.01, burst),
        "signin_limit": RateLimiter(0.01, 5),
        **parts,
    }
    return Frontend(**values)


def run_app(fe: Frontend, scenario: Scenario) -> None:
    """Run ``scenario`` against the app on a test server."""

    async def main() -> None:
        async with TestClient(TestServer(create_app(fe))) as client:
            await scenario(client, fe)

    asyncio.run(main())


def produced(fe: Frontend) -> list[Event]:
    """What the in-memory sink received."""
    sink = fe.sink
    if not isinstance(sink, MemorySink):
        raise TypeError("not an in-memory sink")
    return sink.events


def read_events(settings: Settings, suffix: str, want: int, timeout: float = 20.0) -> list[Event]:
    """Read a topic from the beginning until ``want`` events arrived or ``timeout``."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = topic_name(settings.topic_prefix, suffix)
    conf = {**settings.kafka_config(), "group.id": f"reader-{time.time_ns()}"}
    consumer = Consumer({**conf, "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        while len(events) < want and time.monotonic() < deadline:
            for msg in consumer.consume(100, timeout=0.2):
                if msg.error() is None:
                    events.append(decode(msg.value() or b""))
        # a short grace read: more than wanted would be a bug the caller should see
        for msg in consumer.consume(100, timeout=0.5):
            if msg.error() is None:
                events.append(decode(msg.value() or b""))
        return events
    finally:
        consumer.close()


def publish_tasks(settings: Settings, tasks: list[TaskAssigned]) -> None:
    """Create the topics and produce tasks to their pool's topic, as tasking would."""
    from labeltrail.kafka.admin import ensure_topics
    from labeltrail.kafka.producer import EventProducer

    ensure_topics(settings)
    producer = EventProducer(settings)
    for task in tasks:
        producer.send(task)
    producer.flush(30)


def service_settings(settings: Settings, **overrides: Any) -> Settings:
    """``settings`` with the frontend's section for a test: a free port on loopback, generous
    limits (``overrides`` win)."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "submit_rate": 50.0,
        "submit_burst": 50,
        "shutdown_timeout": 5.0,
        "ready_timeout": 30.0,
        **overrides,
    }
    return settings.model_copy(update={"annotate": settings.annotate.model_copy(update=values)})
