"""Reliability and IAA folds through StageRunner on the real broker, against the in-memory run."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from confluent_kafka import Consumer

from labeltrail.config import Settings
from labeltrail.events import decode
from labeltrail.events.base import Event
from labeltrail.events.models import (
    AdjudicationRecorded,
    AnnotatorReliabilityUpdated,
    CommentPosted,
    HoneypotScored,
    IaaWindowClosed,
    VoteCast,
)
from labeltrail.events.topics import topic_name
from labeltrail.folds.base import Fold
from labeltrail.folds.iaa import IaaFold
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from labeltrail.folds.replay import Replay
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import consumer_config
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from labeltrail.ontology import moderation_schema_v3
from tests.folds.helpers import suffix_topic

pytestmark = pytest.mark.integration

T0 = dt.datetime(2024, 9, 2, 9, 0, tzinfo=dt.UTC)
CROWD = ("a47", "b12", "c89")


def story_input() -> list[Event]:
    """12 coded comments the crowd calls non-toxic (experts: harassment), 30 benign ones."""
    events: list[Event] = [moderation_schema_v3()]
    for i in range(42):
        cid, coded = f"c-{i:03d}", i < 12
        at = T0 + dt.timedelta(minutes=10 * i)
        events.append(
            CommentPosted.create(
                producer="test",
                id_parts=("c", cid),
                occurred_at=at,
                comment_id=cid,
                video_id="v-3201",
                author_hash="h",
                text="you're really not what we said you'd be lol" if coded else "nice video",
                posted_at=at,
                source="product_log",
                attributes={"slice": "coded_harassment" if coded else "benign"},
            )
        )
        for j, annotator in enumerate(CROWD):
            label = "mild" if not coded and j == 2 and i % 5 == 0 else "non-toxic"
            events.append(
                VoteCast.create(
                    producer="test",
                    id_parts=("v", cid, annotator),
                    occurred_at=at + dt.timedelta(minutes=5 + j),
                    vote_id=f"v-{cid}-{annotator}",
                    task_id=f"t-{cid}",
                    comment_id=cid,
                    annotator_id=annotator,
                    schema_version="v3",
                    label=label,
                    time_spent_ms=4000,
                )
            )
        if coded or i % 2 == 0:
            events.append(
                AdjudicationRecorded.create(
                    producer="test",
                    id_parts=("a", cid),
                    occurred_at=at + dt.timedelta(hours=19),
                    adjudication_id=f"adj-{cid}",
                    request_id=f"r-{cid}",
                    task_id=f"x-{cid}",
                    comment_id=cid,
                    schema_version="v3",
                    reviewer_id="e-04",
                    label="harassment" if coded else "non-toxic",
                    confidence=0.95,
                )
            )
    return events


def folds() -> tuple[ReliabilityFold, IaaFold]:
    return ReliabilityFold(ReliabilityConfig(refit_on_drain=True, min_votes=5)), IaaFold()


def run_stage(fold: Fold, settings: Settings) -> None:
    runner = StageRunner(fold, settings, finite=True)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        assert runner.caught_up.wait(60), f"{fold.name} did not drain its input"
    finally:
        stop.set()
        thread.join(30)
    assert runner.stats.rejected == 0


def read(settings: Settings, suffix: str, expected: int) -> list[Event]:
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.reader.{suffix}"))
    consumer.subscribe([topic_name(settings.topic_prefix, suffix)])
    out: list[Event] = []
    try:
        for _ in range(200):
            out += [decode(m.value() or b"") for m in consumer.consume(500, timeout=0.3)]
            if len(out) >= expected:
                break
    finally:
        consumer.close()
    return out


def test_reliability_and_iaa_on_the_broker(pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    events = story_input()
    memory = Replay(list(folds()), suffix_topic)
    memory.append(events)
    memory.run()

    ensure_topics(settings)
    producer = EventProducer(settings)
    for event in events:
        producer.send(event)
    producer.flush()
    reliability, iaa = folds()
    run_stage(reliability, settings)  # its verdict scores must be on the topic before iaa reads
    run_stage(iaa, settings)

    quality = read(settings, "quality", len(memory.log["quality"]))
    windows = read(settings, "iaa", len(memory.log["iaa"]))

    # Order-free outputs carry the same ids and content as in memory.
    def ids(log: list[Event], kind: type[Event]) -> set[str]:
        return {e.event_id for e in log if isinstance(e, kind)}

    for kind in (HoneypotScored, IaaWindowClosed):
        assert ids(quality + windows, kind) == ids(memory.log["quality"] + memory.log["iaa"], kind)

    def refits(log: list[Event]) -> set[str]:
        return {e.event_id for e in log if getattr(e, "method", "") == "dawid_skene"}

    assert refits(quality) == refits(memory.log["quality"])
    assert len(refits(quality)) == 3

    # Beta updates depend on the order results reach an annotator; the final state does not.
    def final(log: list[Event]) -> dict[str, tuple[int, float]]:
        out: dict[str, tuple[int, float]] = {}
        for e in log:
            if isinstance(e, AnnotatorReliabilityUpdated) and e.method == "beta_gold":
                seen = (e.n_observations, round(e.accuracy, 9))
                out[e.annotator_id] = max(out.get(e.annotator_id, seen), seen)
        return out

    assert final(quality) == final(memory.log["quality"])
    # a47: right on the 15 adjudicated benign items, wrong on the 12 coded ones; Beta(1, 1) prior.
    assert final(quality)["a47"] == (27, round(16 / 29, 9))

    label = {
        (e.window, e.slice): e
        for e in windows
        if isinstance(e, IaaWindowClosed)
        and e.question == "label"
        and e.metric == "pairwise_agreement"
    }
    for window in ("day", "week"):
        coded, benign = label[(window, "coded_harassment")], label[(window, "benign")]
        assert coded.blind_spot and coded.agreement == 1.0 and coded.gold_accuracy == 0.0
        assert not benign.blind_spot and benign.gold_accuracy is not None
        assert benign.gold_accuracy > 0.9
