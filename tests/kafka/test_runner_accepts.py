"""A fold that declares the event types it handles gets only those; the rest are skipped."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from labeltrail.config import Settings
from labeltrail.events import Event, LogPosition, encode
from labeltrail.events.topics import topic_name
from labeltrail.folds.base import Output
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from tests.events.samples import sample_event
from tests.probes import read_topic

pytestmark = pytest.mark.integration


@dataclass
class Recorder:
    name: str
    accepts: frozenset[str] | None
    inputs: tuple[str, ...] = ("consensus",)
    seen: list[str] = field(default_factory=list)

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        self.seen.append(type(event).__name__)
        return []


def _run(fold: Recorder, settings: Settings) -> StageRunner:
    runner = StageRunner(fold, settings, finite=True)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_seconds": 0.5})
    thread.start()
    try:
        assert runner.caught_up.wait(120), "the runner did not catch up"
    finally:
        stop.set()
        thread.join(60)
    return runner


def test_declared_types_are_decoded_and_the_rest_skipped(pipeline_settings: Settings) -> None:
    ensure_topics(pipeline_settings)
    # Both types belong on the consensus topic (a type foreign to its topic is dead-lettered
    # whatever the fold accepts: tests/kafka/test_poison.py).
    topic = topic_name(pipeline_settings.topic_prefix, "consensus")
    producer = EventProducer(pipeline_settings)
    vote, update = sample_event("AdjudicationRequested"), sample_event("ConsensusUpdated")
    good_update = encode(update)
    for value in (
        encode(vote),
        good_update,
        encode(vote),
        good_update[:-4],  # a corrupt body under a valid header: not this fold's type
        b"not avro at all",  # no valid header: rejected whatever the fold accepts
        encode(vote),
    ):
        producer.send_raw(topic, b"c-1f8a", value)
    producer.flush()

    picky = _run(Recorder("picky", frozenset({"AdjudicationRequested"})), pipeline_settings)
    assert picky.fold.seen == ["AdjudicationRequested"] * 3  # type: ignore[attr-defined]
    stats = picky.stats
    assert (stats.consumed, stats.skipped, stats.rejected) == (6, 2, 1)
    assert stats.consumed == stats.processed + stats.rejected + stats.restored
    assert dict(stats.reasons) == {"undecodable": 1}

    # Without a declaration every record is decoded: the corrupt update is rejected too.
    everything = _run(Recorder("everything", None), pipeline_settings)
    request = "AdjudicationRequested"
    seen = [request, "ConsensusUpdated", request, request]
    assert everything.fold.seen == seen  # type: ignore[attr-defined]
    assert everything.stats.skipped == 0
    assert everything.stats.rejected == 2

    dead = read_topic(pipeline_settings, "deadletter")
    by_stage = sorted((getattr(e, "stage", ""), getattr(e, "reason_code", "")) for e in dead)
    assert by_stage == [
        ("everything", "undecodable"),
        ("everything", "undecodable"),
        ("picky", "undecodable"),
    ]
