"""EventProducer: topics per event, and tickets that say when a batch's outputs are delivered."""

from __future__ import annotations

import os
import time

import pytest

from labeltrail.config import Settings
from labeltrail.events import EVENT_TYPES
from labeltrail.events.topics import WEAK_ROUTE, topic_for
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer, ProduceError, RecordTooLargeError
from tests.events.samples import sample_event


def test_topic_of_matches_the_registry_for_every_event_type() -> None:
    producer = EventProducer(Settings(topic_prefix="p"))
    for name in sorted(EVENT_TYPES):
        event = sample_event(name)
        pool = getattr(event, "pool", None) if name == "TaskAssigned" else None
        try:
            expected = topic_for(name, "p", pool=pool)
        except KeyError:
            continue
        assert producer.topic_of(event) == expected
    expert = sample_event("TaskAssigned")
    crowd = expert.model_copy(update={"pool": "crowd"})
    assert producer.topic_of(expert) == "p.tasks.expert"
    assert producer.topic_of(crowd) == "p.tasks.crowd"


def test_topic_of_asks_each_time_for_types_whose_fields_pick_the_topic() -> None:
    """The per-type cache of topic_of never holds a type whose pool or route picks its topic."""
    producer = EventProducer(Settings(topic_prefix="p"))
    label = sample_event("LabelCommitted")
    weak = label.model_copy(update={"route": WEAK_ROUTE})
    expert = sample_event("TaskAssigned").model_copy(update={"pool": "expert"})
    crowd = expert.model_copy(update={"pool": "crowd"})
    vote = sample_event("VoteCast")
    for _ in range(2):
        assert producer.topic_of(label) == topic_for("LabelCommitted", "p", route=label.route)
        assert producer.topic_of(weak) == topic_for("LabelCommitted", "p", route=WEAK_ROUTE)
        assert producer.topic_of(weak) != producer.topic_of(label)
        assert (producer.topic_of(expert), producer.topic_of(crowd)) == (
            "p.tasks.expert",
            "p.tasks.crowd",
        )
        assert producer.topic_of(vote) == "p.votes"


def _wait_delivered(producer: EventProducer, ticket: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        producer.poll(0.05)
        if producer.delivered(ticket):
            return True
    return False


@pytest.mark.integration
def test_tickets_are_delivered_in_order(pipeline_settings: Settings) -> None:
    ensure_topics(pipeline_settings)
    producer = EventProducer(pipeline_settings)
    assert producer.delivered(-1)
    first_sent = producer.sent
    for _ in range(50):
        producer.send(sample_event("VoteCast"))
    first = producer.checkpoint()
    assert not producer.delivered(first)  # nothing was acknowledged yet
    empty = producer.checkpoint()  # a batch with no outputs
    for _ in range(20):
        producer.send(sample_event("ConsensusUpdated"))
    third = producer.checkpoint()
    assert producer.sent == first_sent + 70
    assert _wait_delivered(producer, third)
    assert producer.delivered(first) and producer.delivered(empty)
    producer.flush()


@pytest.mark.integration
def test_a_failed_delivery_raises_instead_of_reporting_delivered(
    pipeline_settings: Settings,
) -> None:
    # The client accepts 4 MB, the broker's default limit is about 1 MB: the broker refuses.
    settings = pipeline_settings.model_copy(update={"kafka_message_max_bytes": 8_000_000})
    ensure_topics(settings)
    producer = EventProducer(settings, **{"compression.type": "none"})
    topic = f"{settings.topic_prefix}.votes"
    producer.send_raw(topic, b"k", os.urandom(4_000_000))
    ticket = producer.checkpoint()
    with pytest.raises(ProduceError, match="deliveries failed"):
        _wait_delivered(producer, ticket, 60)
    # Sticky: a later ticket, or a flush, never reads as delivered after a failure.
    producer.send(sample_event("VoteCast"))
    later = producer.checkpoint()
    with pytest.raises(ProduceError, match="deliveries failed"):
        _wait_delivered(producer, later, 60)
    with pytest.raises(ProduceError, match="deliveries failed"):
        producer.flush()


@pytest.mark.integration
def test_a_record_over_the_limit_is_refused_before_it_is_sent(
    pipeline_settings: Settings,
) -> None:
    ensure_topics(pipeline_settings)
    producer = EventProducer(pipeline_settings)
    topic = f"{pipeline_settings.topic_prefix}.votes"
    with pytest.raises(RecordTooLargeError, match="over the producer's limit"):
        producer.send_raw(topic, b"k", os.urandom(999_800))
    big = sample_event("VoteCast")
    assert producer.fits(big.key.encode(), b"x" * 1000)
    # send_all sends every event or none
    with pytest.raises(RecordTooLargeError):
        producer.send_all([big, big.model_copy(update={"annotator_id": "a" * 1_000_000})])
    assert producer.sent == 0
    producer.flush()
