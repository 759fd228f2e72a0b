"""The runner contract for poison input: nothing is ever skipped in silence.

Every stage is fed, on one of its input topics, an oversized record (999,800 random bytes, as
a default producer can send), a valid event of a type foreign to that topic, and an event that
makes the fold raise, between two ordinary events. Each poison record must be dead-lettered
with its reason (the oversized one by reference: size, hash, a bounded prefix), the counts
must reconcile (consumed = processed + rejected), the offsets must be committed past all of
them, and a restarted stage must neither redo nor lose anything. A stage whose dead letter
cannot be delivered must stop without committing past the record it failed on.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.clickhouse.writer import BatchWriter
from labeltrail.config import Settings
from labeltrail.events import DeadLettered, Event, LogPosition, encode
from labeltrail.events.models import DEAD_LETTER_PREFIX
from labeltrail.events.topics import events_on, topic_name
from labeltrail.folds.base import Output
from labeltrail.folds.consensus import ConsensusFold
from labeltrail.folds.iaa import IaaFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.reliability import ReliabilityFold
from labeltrail.folds.scorer import ScorerFold
from labeltrail.folds.tasking import TaskingFold
from labeltrail.folds.trainer import RetrainFold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import consumer_config
from labeltrail.kafka.producer import EventProducer, ProduceError
from labeltrail.kafka.runner import StageRunner
from labeltrail.kafka.scaleout import BROADCAST_INPUTS, GroupStageRunner
from tests.events.samples import sample_event
from tests.integration.probes import read_topic

pytestmark = pytest.mark.integration

OVERSIZED = 999_800
POISON_ID = "poison-0000"


class Poisoned:
    """A stage's fold that raises on the event with id ``POISON_ID`` (everything else as is)."""

    def __init__(self, fold: Any) -> None:
        self._fold = fold

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fold, name)

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        if event.envelope.event_id == POISON_ID:
            raise RuntimeError("the fold cannot take this one")
        return self._fold.apply(event, position)  # type: ignore[no-any-return]


def _stages(tmp: str) -> dict[str, tuple[Callable[[], Any], bool]]:
    """Each stage's fold as its service builds it, and whether the service is scalable."""
    return {
        "tasking": (TaskingFold, True),
        "consensus": (ConsensusFold, True),
        "labels": (LabelsFold, True),
        "reliability": (ReliabilityFold, False),
        "iaa": (IaaFold, False),
        "scorer": (lambda: ScorerFold(load=_unused, models_dir=Path(tmp)), False),
        "trainer": (
            lambda: RetrainFold(models_dir=Path(tmp), make_trainer=_unused, load_scorer=_unused),
            False,
        ),
    }


def _unused(*_: Any) -> Any:
    raise AssertionError("no training in this test")


def _target(fold: Any, prefix: str) -> tuple[str, str]:
    """A keyed input topic of the fold and an event type the fold takes from it."""
    on_topic = events_on(prefix)
    accepts = getattr(fold, "accepts", None)
    for suffix in fold.inputs:
        if suffix in BROADCAST_INPUTS:
            continue
        for kind in sorted(on_topic[topic_name(prefix, suffix)]):
            if accepts is None or kind in accepts:
                return suffix, kind
    raise AssertionError(f"{fold.name}: no keyed input")


def _foreign_kind(topic: str, prefix: str) -> str:
    return "VoteCast" if "VoteCast" not in events_on(prefix)[topic] else "CommentPosted"


def _event(kind: str, event_id: str) -> Event:
    sample = sample_event(kind)
    envelope = sample.envelope.model_copy(update={"event_id": event_id})
    return sample.model_copy(update={"envelope": envelope})


def _run(runner: StageRunner) -> StageRunner:
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run(stop, idle_seconds=0.5)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    try:
        assert runner.caught_up.wait(120) or errors, "the runner did not catch up"
    finally:
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]
    return runner


def _runner(make: Callable[[], Any], scalable: bool, settings: Settings) -> StageRunner:
    if scalable:
        return GroupStageRunner(lambda: Poisoned(make()), settings)
    return StageRunner(Poisoned(make()), settings)  # type: ignore[arg-type]


def _committed(settings: Settings, group: str, topic: str) -> int:
    probe = Consumer(consumer_config(settings, group))
    try:
        (tp,) = probe.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)
    finally:
        probe.close()


@pytest.fixture
def one_partition(pipeline_settings: Settings) -> Iterator[Settings]:
    settings = pipeline_settings.model_copy(update={"topic_partitions": 1})
    ensure_topics(settings)
    yield settings


@pytest.mark.parametrize(
    "stage", ["tasking", "consensus", "labels", "reliability", "iaa", "scorer", "trainer"]
)
def test_every_stage_dead_letters_poison_and_reconciles(
    stage: str, one_partition: Settings, tmp_path: Any
) -> None:
    settings = one_partition
    make, scalable = _stages(str(tmp_path))[stage]
    suffix, kind = _target(make(), settings.topic_prefix)
    topic = topic_name(settings.topic_prefix, suffix)
    junk = os.urandom(OVERSIZED)
    # A producer at the client's default limit (1,000,000 bytes) sends the oversized record.
    injector = EventProducer(settings.model_copy(update={"kafka_message_max_bytes": 1_048_576}))
    key = b"c-poison"
    records = [
        encode(_event(kind, "ordinary-1")),
        junk,
        encode(sample_event(_foreign_kind(topic, settings.topic_prefix))),
        encode(_event(kind, POISON_ID)),
        encode(_event(kind, "ordinary-2")),
    ]
    for value in records:
        injector.send_raw(topic, key, value)
    injector.flush()

    runner = _run(_runner(make, scalable, settings))
    stats = runner.stats
    assert stats.consumed == 5
    assert stats.consumed == stats.processed + stats.rejected + stats.restored
    assert dict(stats.reasons) == {"undecodable": 1, "wrong_topic": 1, "fold_error": 1}
    assert _committed(settings, runner.group, topic) == 5

    dead = [
        e
        for e in read_topic(settings, "deadletter")
        if isinstance(e, DeadLettered) and e.stage == stage
    ]
    by_offset = {e.source_offset: e for e in dead}
    assert sorted(by_offset) == [1, 2, 3]
    big = by_offset[1]
    assert (big.payload_size, big.payload_truncated) == (OVERSIZED, True)
    assert big.payload == junk[:DEAD_LETTER_PREFIX]
    assert big.payload_sha256 == hashlib.sha256(junk).hexdigest()
    assert by_offset[2].reason_code == "wrong_topic" and not by_offset[2].payload_truncated
    assert by_offset[2].payload == records[2]
    assert by_offset[3].reason_code == "fold_error"
    assert "cannot take this one" in by_offset[3].reason

    # Restarted: everything is restored, nothing redone, no new dead letter.
    again = _run(_runner(make, scalable, settings)).stats
    assert (again.consumed, again.restored, again.processed, again.rejected) == (5, 5, 0, 0)
    ids = {e.envelope.event_id for e in read_topic(settings, "deadletter")}
    assert len(ids) == len({e.envelope.event_id for e in dead}) == 3


def test_a_stage_whose_dead_letter_fails_stops_without_committing_past_it(
    one_partition: Settings,
) -> None:
    settings = one_partition
    deadletter = topic_name(settings.topic_prefix, "deadletter")
    admin = AdminClient(settings.kafka_config())
    limit = ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", deadletter, incremental_configs=[limit])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    topic = topic_name(settings.topic_prefix, "votes")
    injector = EventProducer(settings)
    injector.send_raw(topic, b"c-1", encode(_event("VoteCast", "ordinary-1")))
    injector.send_raw(topic, b"c-1", os.urandom(20_000))  # kept whole: over the topic's limit
    injector.send_raw(topic, b"c-1", encode(_event("VoteCast", "ordinary-2")))
    injector.flush()

    runner = GroupStageRunner(ConsensusFold, settings)
    with pytest.raises(ProduceError):
        _run(runner)
    # The record it failed on is read again on restart, never skipped.
    assert _committed(settings, runner.group, topic) <= 1


def test_the_projector_dead_letters_poison_and_keeps_projecting(
    one_partition: Settings,
) -> None:
    settings = one_partition
    client = client_from(settings)
    apply_ddl(client)
    votes = topic_name(settings.topic_prefix, "votes")
    junk = os.urandom(OVERSIZED)
    injector = EventProducer(settings.model_copy(update={"kafka_message_max_bytes": 1_048_576}))
    injector.send_raw(votes, b"c-1", encode(_event("VoteCast", "ordinary-1")))
    injector.send_raw(votes, b"c-1", junk)
    injector.send_raw(votes, b"c-1", encode(sample_event("CommentPosted")))
    injector.send_raw(votes, b"c-1", encode(_event("VoteCast", "ordinary-2")))
    injector.flush()

    try:
        stats = run_until_caught_up(Projector(client, settings), timeout=120)
        # It also reads the dead letters it wrote (they are on the log): at least the 4 records.
        assert stats.rejected == 2 and stats.consumed >= 4
        assert stats.consumed == stats.projected + stats.rejected
        assert (
            BatchWriter(client, f"{settings.topic_prefix}.projector").stored_positions()[(votes, 0)]
            == 4
        )
        again = run_until_caught_up(Projector(client, settings), timeout=120)
        assert again.rejected == 0  # resumed past them: nothing is dead-lettered twice
        rows = client.query(
            "SELECT source_offset, reason_code, payload_size, payload_truncated, payload_sha256 "
            "FROM dead_letters FINAL WHERE stage = 'projector' ORDER BY source_offset"
        ).result_rows
        assert [tuple(r[:4]) for r in rows] == [
            (1, "undecodable", OVERSIZED, True),
            (2, "wrong_topic", len(encode(sample_event("CommentPosted"))), False),
        ]
        assert rows[0][4] == hashlib.sha256(junk).hexdigest()
        assert client.query("SELECT count() FROM comments FINAL").result_rows == [(0,)]
        assert client.query("SELECT count() FROM votes FINAL").result_rows == [(2,)]
    finally:
        client.close()  # chdb serves one directory per process at a time
