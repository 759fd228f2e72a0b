"""A simulated history for comparing runners: consensus inputs in phases, outputs comparable.

The same input bytes (a simulated history's schemas, tasks and votes, plus an undecodable
record, a vote from an annotator the task was not assigned to and a vote for a task that never
comes) go to two topic prefixes, one per runner; outputs must match event for event,
partition for partition.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from labeltrail.config import Settings
from labeltrail.events import decode, encode
from labeltrail.events.base import Event
from labeltrail.events.models import DeadLettered, VoteCast
from labeltrail.events.topics import topic_name
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import consumer_config
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory

INPUTS = ("schemas", "quality", "tasks", "votes")
OUTPUTS = ("consensus", "quality", "deadletter")


def make_consensus(settings: Settings) -> ConsensusFold:
    """The fold under test (the faust subprocess imports this module by name)."""
    return ConsensusFold(ConsensusConfig(agreement_threshold=settings.agreement_threshold))


def inputs() -> list[tuple[str, bytes, bytes]]:
    """(topic suffix, key, value) in produce order, with three bad records at the end."""
    log = run_in_memory(Platform(PlatformConfig.sized(60))).log
    records = [(s, e.key.encode(), encode(e)) for s in INPUTS for e in log.get(s, [])]
    vote = next(e for e in log["votes"] if isinstance(e, VoteCast))
    stranger = vote.model_copy(update={"vote_id": "v-stranger", "annotator_id": "nobody"})
    orphan = vote.model_copy(update={"vote_id": "v-orphan", "task_id": "t-never-created"})
    for bad in (stranger, orphan):
        records.append(("votes", bad.key.encode(), encode(bad)))
    records.append(("votes", b"c-bad", b"not an avro message"))
    return records


def produce(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = EventProducer(settings)
    for suffix, key, value in records:
        producer.send_raw(topic_name(settings.topic_prefix, suffix), key, value)
    producer.flush()


def read(settings: Settings, suffix: str) -> list[tuple[int, bytes, Event]]:
    """Every record of a topic: (partition, key, event)."""
    topic = topic_name(settings.topic_prefix, suffix)
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.reader"))
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        remaining = {p for p, high in ends.items() if high > 0}
        out: list[tuple[int, bytes, Event]] = []
        deadline = time.monotonic() + 30
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                assert msg.error() is None, msg.error()
                p, offset = msg.partition() or 0, msg.offset() or 0
                out.append((p, msg.key() or b"", decode(msg.value() or b"")))
                if offset + 1 >= ends[p]:
                    remaining.discard(p)
        assert not remaining, f"{topic}: partitions {remaining} not read to their end"
        return out
    finally:
        consumer.close()


def _comparable(settings: Settings, record: tuple[int, bytes, Event]) -> tuple[Any, ...]:
    """What must agree between runners: placement and content, not the wall-clock stamp."""
    partition, key, event = record
    body = event.model_dump(mode="json")
    body["envelope"].pop("recorded_at")
    if isinstance(event, DeadLettered):
        # Keyed by the source topic, which carries the run's prefix: so are its id and partition.
        # A rejection happens when it is read: its event time is the wall clock.
        body["envelope"].pop("event_id")
        body["envelope"].pop("occurred_at")
        partition = -1
        body["source_topic"] = event.source_topic.removeprefix(settings.topic_prefix)
        key = key.removeprefix(settings.topic_prefix.encode())
    return partition, key, json.dumps(body, sort_keys=True)


def outputs(settings: Settings) -> list[tuple[Any, ...]]:
    return sorted(_comparable(settings, r) for s in OUTPUTS for r in read(settings, s))


def phases(records: list[tuple[str, bytes, bytes]]) -> list[list[tuple[str, bytes, bytes]]]:
    """Schemas and reliability, then tasks, then votes: each read before the next is written.

    A runner reads its input topics concurrently, so without phases the order in which a
    schema, a task and a vote meet the fold would differ between runs, and so would outputs
    (see docs/streaming.md: the consensus fold's classes depend on it).
    """
    order = (("schemas", "quality"), ("tasks",), ("votes",))
    return [[r for r in records if r[0] in suffixes] for suffixes in order]


def run_stage_runner(settings: Settings, phases: list[list[tuple[str, bytes, bytes]]]) -> None:
    ensure_topics(settings)
    runner = StageRunner(make_consensus(settings), settings, finite=True)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.run(stop, idle_seconds=0.5)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="stage-runner")
    thread.start()
    try:
        sent = 0
        for phase in phases:
            produce(settings, phase)
            sent += len(phase)
            deadline = time.monotonic() + 60
            while not (runner.caught_up.is_set() and runner.stats.consumed == sent):
                assert not errors, errors
                assert time.monotonic() < deadline, f"StageRunner stuck: {runner.stats}"
                time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
