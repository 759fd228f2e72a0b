"""The runner contract, held by both runners (``LABELTRAIL_RUNNER=confluent|faust``).

On the real broker, each test runs against the confluent StageRunner and the faust worker:
poison input is dead-lettered with its reason and never skipped in silence (an oversized
record by reference, a foreign one, one that makes the fold raise), the counts reconcile,
offsets are committed past them, and a restart restores everything and redoes nothing; a stage
whose dead letter cannot be delivered stops without committing past the record it failed on
(outputs acknowledged before offsets commit); a stage killed mid-stream and restarted loses
and duplicates no label; a finite history drains what the fold holds and a live stage does
not; two workers share a stage through a rebalance (the confluent runner), or the second one
fails loudly (faust runs one worker per stage). Both runners give the same outputs.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from labeltrail.config import Settings
from labeltrail.events import DeadLettered, Event, LabelCommitted, LogPosition, encode
from labeltrail.events.models import DEAD_LETTER_PREFIX
from labeltrail.events.topics import events_on, topic_name
from labeltrail.folds.base import Fold, Output
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
from labeltrail.kafka.scaleout import BROADCAST_INPUTS
from labeltrail.sim import Platform, PlatformConfig
from tests.events.samples import sample_event
from tests.folds.helpers import final_labels, run_in_memory
from tests.kafka import histories
from tests.kafka.runners import (
    RUNNERS,
    faust_log,
    faust_status,
    run_stage,
    start_faust,
    start_service,
    stop_faust,
)
from tests.probes import read_topic

pytestmark = pytest.mark.integration

OVERSIZED = 999_800


def junk(size: int) -> bytes:
    """``size`` random bytes that claim no framing: the first is neither the single-object
    marker's (``C3``) nor the Confluent magic byte (``00``), which would make the record a
    registry lookup (``registry_unavailable`` without one) instead of ``undecodable`` (one
    run in 256 of a bare ``os.urandom``)."""
    return b"\xff" + os.urandom(size - 1)


POISON_ID = "poison-0000"
HERE = "tests.kafka.test_runner_contract"


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


def _unused(*_: Any) -> Any:
    raise AssertionError("no training in this test")


def _models() -> Path:
    return Path(tempfile.gettempdir())


STAGES: dict[str, tuple[Callable[[], Any], bool]] = {
    "tasking": (TaskingFold, True),
    "consensus": (ConsensusFold, True),
    "labels": (LabelsFold, True),
    "reliability": (ReliabilityFold, False),
    "iaa": (IaaFold, False),
    "scorer": (lambda: ScorerFold(load=_unused, models_dir=_models()), False),
    "trainer": (
        lambda: RetrainFold(models_dir=_models(), make_trainer=_unused, load_scorer=_unused),
        False,
    ),
}
"""Each stage's fold as its service builds it, and whether the service is scalable."""


def __getattr__(name: str) -> Callable[[Settings], Fold]:
    """``poisoned_<stage>``: the factory (``Settings -> Fold``) either runner loads by name."""
    stage = name.removeprefix("poisoned_")
    if name.startswith("poisoned_") and stage in STAGES:
        return lambda settings: Poisoned(STAGES[stage][0]())  # type: ignore[return-value]
    raise AttributeError(name)


def consensus(settings: Settings) -> ConsensusFold:
    return ConsensusFold()


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


def _committed(settings: Settings, group: str, topic: str) -> int:
    probe = Consumer(consumer_config(settings, group))
    try:
        (tp,) = probe.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)
    finally:
        probe.close()


@pytest.fixture
def one_partition(pipeline_settings: Settings) -> Settings:
    settings = pipeline_settings.model_copy(update={"topic_partitions": 1})
    ensure_topics(settings)
    return settings


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("runner", RUNNERS)
def test_poison_is_dead_lettered_with_its_reason_and_a_restart_redoes_nothing(
    runner: str, stage: str, one_partition: Settings, tmp_path: Path
) -> None:
    settings = one_partition
    make, scalable = STAGES[stage]
    suffix, kind = _target(make(), settings.topic_prefix)
    topic = topic_name(settings.topic_prefix, suffix)
    oversized = junk(OVERSIZED)
    # A producer at the client's default limit (1,000,000 bytes) sends the oversized record.
    injector = EventProducer(settings.model_copy(update={"kafka_message_max_bytes": 1_048_576}))
    records = [
        encode(_event(kind, "ordinary-1")),
        oversized,
        encode(sample_event(_foreign_kind(topic, settings.topic_prefix))),
        encode(_event(kind, POISON_ID)),
        encode(_event(kind, "ordinary-2")),
    ]
    for value in records:
        injector.send_raw(topic, b"c-poison", value)
    injector.flush()

    spec = f"{HERE}:poisoned_{stage}"
    first = run_stage(runner, spec, settings, tmp_path / "1", consumed=5, scalable=scalable)
    stats = first.stats
    assert first.code == 0, first.log[-3000:]
    assert stats["consumed"] == 5
    assert stats["consumed"] == stats["processed"] + stats["rejected"] + stats["restored"]
    assert stats["reasons"] == {"undecodable": 1, "wrong_topic": 1, "fold_error": 1}
    assert _committed(settings, first.group, topic) == 5

    dead = [
        e
        for e in read_topic(settings, "deadletter")
        if isinstance(e, DeadLettered) and e.stage == stage
    ]
    by_offset = {e.source_offset: e for e in dead}
    assert sorted(by_offset) == [1, 2, 3]
    big = by_offset[1]
    assert (big.payload_size, big.payload_truncated) == (OVERSIZED, True)
    assert big.payload == oversized[:DEAD_LETTER_PREFIX]
    assert big.payload_sha256 == hashlib.sha256(oversized).hexdigest()
    assert by_offset[2].reason_code == "wrong_topic" and not by_offset[2].payload_truncated
    assert by_offset[2].payload == records[2]
    assert by_offset[3].reason_code == "fold_error"
    assert "cannot take this one" in by_offset[3].reason

    # Restarted: everything is restored, nothing redone, no new dead letter.
    again = run_stage(runner, spec, settings, tmp_path / "2", consumed=5, scalable=scalable)
    s = again.stats
    assert (s["consumed"], s["restored"], s["processed"], s["rejected"]) == (5, 5, 0, 0)
    ids = {e.envelope.event_id for e in read_topic(settings, "deadletter")}
    assert len(ids) == len({e.envelope.event_id for e in dead}) == 3


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_stage_whose_dead_letter_fails_stops_without_committing_past_it(
    runner: str, one_partition: Settings, tmp_path: Path
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

    outcome = run_stage(runner, f"{HERE}:consensus", settings, tmp_path, scalable=True)
    # It stops loudly: an error in the confluent runner, exit code 1 of the faust worker.
    assert outcome.code == 1
    if runner == "confluent":
        assert isinstance(outcome.error, ProduceError)
    else:
        assert "delivery failed" in outcome.log, outcome.log[-3000:]
        assert outcome.stats.get("alive") is False
    # The record it failed on is read again on restart, never skipped.
    group = outcome.group or f"{settings.topic_prefix}.consensus.faust"
    assert _committed(settings, group, topic) <= 1


def test_both_runners_give_the_same_outputs(pipeline_settings: Settings, tmp_path: Path) -> None:
    reference = pipeline_settings
    under_faust = reference.model_copy(update={"topic_prefix": reference.topic_prefix + "f"})
    records = histories.inputs()
    histories.run_stage_runner(reference, histories.phases(records))

    ensure_topics(under_faust)
    proc = start_faust(f"{histories.__name__}:make_consensus", under_faust, tmp_path, finite=True)
    try:
        sent = 0
        for phase in histories.phases(records):
            histories.produce(under_faust, phase)
            sent += len(phase)
            deadline = time.monotonic() + 90
            status = faust_status(tmp_path)
            while not (status.get("caught_up") and status.get("consumed") == sent):
                assert proc.poll() is None, faust_log(tmp_path)[-3000:]
                assert time.monotonic() < deadline, f"faust did not catch up: {status}"
                time.sleep(0.2)
                status = faust_status(tmp_path)
    finally:
        code = stop_faust(proc, tmp_path)
    assert code == 0, faust_log(tmp_path)[-3000:]
    assert status["alive"] and status["lag"] == 0
    assert status["rejected"] == 3 and status["reasons"] == {
        "policy_rejected": 2,
        "undecodable": 1,
    }

    ours, theirs = histories.outputs(under_faust), histories.outputs(reference)
    assert len(theirs) > len(records) // 2
    assert ours == theirs
    dead = [e for _, _, e in histories.read(under_faust, "deadletter")]
    assert sorted(
        d.source_topic.removeprefix(under_faust.topic_prefix)
        for d in dead
        if isinstance(d, DeadLettered)
    ) == ["(held)", ".votes", ".votes"]


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_finite_history_is_drained_and_a_live_stage_keeps_what_it_holds(
    runner: str, pipeline_settings: Settings, tmp_path: Path
) -> None:
    finite = pipeline_settings.model_copy(
        update={"topic_prefix": pipeline_settings.topic_prefix + "d"}
    )
    for settings in (pipeline_settings, finite):
        ensure_topics(settings)
        # A vote for a task that never comes: the consensus fold holds it.
        _send(settings, [_event("VoteCast", "v-orphan")])
    spec = f"{HERE}:consensus"

    live = run_stage(runner, spec, pipeline_settings, tmp_path / "live", consumed=1)
    assert live.code == 0 and live.stats["reasons"] == {}
    assert not read_topic(pipeline_settings, "deadletter")

    drained = run_stage(runner, spec, finite, tmp_path / "finite", consumed=1, finite=True)
    assert drained.code == 0
    assert drained.stats["reasons"] == {"policy_rejected": 1}
    assert (drained.stats["processed"], drained.stats["rejected"]) == (0, 1)
    [dead] = read_topic(finite, "deadletter")
    assert isinstance(dead, DeadLettered) and dead.source_topic == "(held)"


def _labels_history() -> tuple[list[list[Event]], list[Event]]:
    """The labels stage's input in two halves (schemas first), and the labels of one run."""
    one = run_in_memory(Platform(PlatformConfig.sized(120, seed=5))).log
    rest = [e for s in ("scores", "consensus", "adjudications") for e in one.get(s, [])]
    half = len(rest) // 2
    return [list(one["schemas"]) + rest[:half], rest[half:]], list(one["labels"])


def _send(settings: Settings, events: list[Event]) -> None:
    producer = EventProducer(settings)
    for event in events:
        producer.send(event)
    producer.flush()


def _assert_the_labels_of_one_run(settings: Settings, labels: list[Event]) -> None:
    """Nothing lost, nothing duplicated: exactly the labels (and ids) of the reference run."""
    written = _labels_on(settings)
    assert {e.envelope.event_id for e in written} == {e.envelope.event_id for e in labels}
    assert final_labels(list(written)) == final_labels(labels)


def _labels_on(settings: Settings) -> list[LabelCommitted]:
    return [e for e in read_topic(settings, "labels") if isinstance(e, LabelCommitted)]


def _wait_labels(settings: Settings, at_least: int, procs: list[Any], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len({e.envelope.event_id for e in _labels_on(settings)}) < at_least:
        assert all(p.poll() is None for p in procs), "a worker exited"
        assert time.monotonic() < deadline, f"fewer than {at_least} labels"
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_stage_killed_mid_stream_and_restarted_loses_and_duplicates_no_label(
    runner: str, pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    halves, labels = _labels_history()
    _send(settings, halves[0])
    first, log = start_service("labels", runner, settings, tmp_path / "1")
    try:
        _wait_labels(settings, 1, [first])
    finally:
        first.kill()  # kill -9: outputs sent, offsets perhaps not committed
        first.wait(30)
    _send(settings, halves[1])
    # Restarted: it restores what the first committed, then resumes with the rest.
    again, log = start_service("labels", runner, settings, tmp_path / "2")
    try:
        _wait_labels(settings, len({e.envelope.event_id for e in labels}), [again])
        time.sleep(2)  # anything extra it would write
    finally:
        code = _stop(again)
    assert code == 0, log.read_text()[-3000:]
    _assert_the_labels_of_one_run(settings, labels)


@pytest.mark.parametrize("runner", RUNNERS)
def test_two_workers_share_a_stage_through_a_rebalance_or_the_second_fails_loudly(
    runner: str, pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    halves, labels = _labels_history()
    _send(settings, halves[0])
    first, log1 = start_service("labels", runner, settings, tmp_path / "1")
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait_labels(settings, 1, [first])
        second, log2 = start_service("labels", runner, settings, tmp_path / "2")
        _send(settings, halves[1])
        if runner == "faust":
            # Fold state is in memory: a faust worker holding some partitions refuses to run.
            deadline = time.monotonic() + 90
            while first.poll() is None and second.poll() is None:
                assert time.monotonic() < deadline, "two faust workers of a stage kept running"
                time.sleep(0.5)
            logs = log1.read_text() + log2.read_text()
            assert 1 in (first.poll(), second.poll())
            assert "the faust runner runs one worker per stage" in logs
            return
        _wait_labels(settings, len({e.envelope.event_id for e in labels}), [first, second])
        time.sleep(2)
    finally:
        codes = [_stop(p) for p in (first, second) if p is not None]
    assert codes == [0, 0]
    _assert_the_labels_of_one_run(settings, labels)
