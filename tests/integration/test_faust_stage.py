"""A fold run under faust gives the outputs it gives under the StageRunner, and dies loudly.

The same input bytes (a simulated history's schemas, tasks and votes, plus an undecodable
record, a vote from an annotator the task was not assigned to and a vote for a task that never
comes) go to two topic prefixes: one is read by :class:`StageRunner`, the other by the faust
stage in a subprocess. Outputs must match event for event, partition for partition.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from labeltrail.config import Settings
from labeltrail.events import decode, encode
from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import DeadLettered, VoteCast
from labeltrail.events.topics import topic_name
from labeltrail.folds.base import Output
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import consumer_config
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INPUTS = ("schemas", "quality", "tasks", "votes")
OUTPUTS = ("consensus", "quality", "deadletter")


def make_consensus(settings: Settings) -> ConsensusFold:
    """The fold under test (the subprocess imports this module by name)."""
    return ConsensusFold(ConsensusConfig(agreement_threshold=settings.agreement_threshold))


class ExplodingFold:
    """Raises on its first vote: the faust worker must exit non-zero, not idle."""

    name = "exploding"
    inputs: tuple[str, ...] = ("votes",)

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        raise RuntimeError(f"boom at {position.topic}@{position.offset}")


def make_exploding(settings: Settings) -> ExplodingFold:
    return ExplodingFold()


def _inputs() -> list[tuple[str, bytes, bytes]]:
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


def _produce(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = EventProducer(settings)
    for suffix, key, value in records:
        producer.send_raw(topic_name(settings.topic_prefix, suffix), key, value)
    producer.flush()


def _read(settings: Settings, suffix: str) -> list[tuple[int, bytes, Event]]:
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


def _outputs(settings: Settings) -> list[tuple[Any, ...]]:
    return sorted(_comparable(settings, r) for s in OUTPUTS for r in _read(settings, s))


def _phases(records: list[tuple[str, bytes, bytes]]) -> list[list[tuple[str, bytes, bytes]]]:
    """Schemas and reliability, then tasks, then votes: each read before the next is written.

    A runner reads its input topics concurrently, so without phases the order in which a
    schema, a task and a vote meet the fold would differ between runs, and so would outputs
    (see docs/streaming.md: the consensus fold's classes depend on it).
    """
    order = (("schemas", "quality"), ("tasks",), ("votes",))
    return [[r for r in records if r[0] in suffixes] for suffixes in order]


def _run_stage_runner(settings: Settings, phases: list[list[tuple[str, bytes, bytes]]]) -> None:
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
            _produce(settings, phase)
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


def _faust(settings: Settings, factory: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "TMPDIR": str(tmp),  # faust's data directory lives under it
    }
    args = [sys.executable, "-m", "labeltrail.kafka.faust_stage", factory]
    args += ["--status-file", str(tmp / "status.json"), "--stall-seconds", "20", "--finite"]
    log = open(tmp / "faust.log", "wb")  # noqa: SIM115 - closed with the process
    try:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def _status(tmp: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((tmp / "status.json").read_text()))
    except (OSError, ValueError):
        return {}


def _stop(proc: subprocess.Popen[bytes], tmp: Path) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        pytest.fail("faust worker ignored SIGTERM:\n" + (tmp / "faust.log").read_text()[-3000:])


def test_consensus_under_faust_matches_stage_runner(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    reference = pipeline_settings
    under_faust = reference.model_copy(update={"topic_prefix": reference.topic_prefix + "f"})
    records = _inputs()
    _run_stage_runner(reference, _phases(records))

    ensure_topics(under_faust)
    proc = _faust(under_faust, "tests.integration.test_faust_stage:make_consensus", tmp_path)
    try:
        sent = 0
        for phase in _phases(records):
            _produce(under_faust, phase)
            sent += len(phase)
            deadline = time.monotonic() + 90
            status = _status(tmp_path)
            while not (status.get("caught_up") and status.get("consumed") == sent):
                assert proc.poll() is None, (tmp_path / "faust.log").read_text()[-3000:]
                assert time.monotonic() < deadline, f"faust did not catch up: {status}"
                time.sleep(0.2)
                status = _status(tmp_path)
    finally:
        code = _stop(proc, tmp_path)
    assert code == 0, (tmp_path / "faust.log").read_text()[-3000:]
    assert status["alive"] and status["lag"] == 0
    assert status["rejected"] == 3 and status["reasons"] == {
        "policy_rejected": 2,
        "undecodable": 1,
    }

    ours, theirs = _outputs(under_faust), _outputs(reference)
    assert len(theirs) > len(records) // 2
    assert ours == theirs
    dead = [e for _, _, e in _read(under_faust, "deadletter") if isinstance(e, DeadLettered)]
    assert sorted(d.source_topic.removeprefix(under_faust.topic_prefix) for d in dead) == [
        "(held)",
        ".votes",
        ".votes",
    ]


def test_faust_worker_exits_nonzero_when_the_agent_dies(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(pipeline_settings)
    _produce(pipeline_settings, [r for r in _inputs() if r[0] == "votes"][:5])
    proc = _faust(pipeline_settings, "tests.integration.test_faust_stage:make_exploding", tmp_path)
    try:
        code = proc.wait(90)
    except subprocess.TimeoutExpired:
        code = _stop(proc, tmp_path)
        pytest.fail("a crashed agent left the worker running")
    log = (tmp_path / "faust.log").read_text()
    assert code == 1, log[-3000:]
    assert "boom at" in log
    assert _status(tmp_path).get("alive") is False
