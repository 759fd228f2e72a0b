"""Bad input on the stream side ends in the dead-letter topic with its reason, counted."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer

from labeltrail.config import Settings
from labeltrail.events import DeadLettered, decode, encode
from labeltrail.events.avro import committed_schemas, writer_schemas
from labeltrail.events.serde import encode_with
from labeltrail.events.topics import topic_name
from labeltrail.folds.consensus import ConsensusFold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import consumer_config
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from labeltrail.ontology import moderation_schema_v3
from tests.events.samples import sample_event

pytestmark = pytest.mark.integration


def _read_all(settings: Settings, suffix: str, expected: int) -> list[DeadLettered]:
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.reader"))
    consumer.subscribe([topic_name(settings.topic_prefix, suffix)])
    out: list[DeadLettered] = []
    try:
        for _ in range(100):
            for msg in consumer.consume(100, timeout=0.3):
                if msg.error() is None:
                    event = decode(msg.value() or b"")
                    assert isinstance(event, DeadLettered)
                    out.append(event)
            if len(out) >= expected:
                break
    finally:
        consumer.close()
    return out


def test_undecodable_unknown_and_invalid_go_to_dead_letters(pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    votes = topic_name(settings.topic_prefix, "votes")
    producer = EventProducer(settings)
    producer.send(moderation_schema_v3())
    good = encode(sample_event("VoteCast"))
    schema = committed_schemas()["VoteCast"]
    fp = next(f for f, w in writer_schemas().items() if w.schema is schema)
    invalid = sample_event("VoteCast").model_dump()
    invalid["confidence"] = 1.7
    bad = {
        "undecodable": b'{"vote": "json is not our wire format"}',
        "unknown_event_type": good[:2] + b"\xff" * 8 + good[10:],
        "schema_invalid": encode_with(schema, fp, invalid),
    }
    for payload in bad.values():
        producer.send_raw(votes, b"c-1f8a", payload)
    producer.flush()

    runner = StageRunner(ConsensusFold(), settings)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    assert runner.caught_up.wait(60), "stage did not drain its input"
    stop.set()
    thread.join(30)

    letters = _read_all(settings, "deadletter", expected=3)
    by_code = {d.reason_code: d for d in letters}
    assert set(by_code) == set(bad)
    for code, payload in bad.items():
        letter = by_code[code]
        assert letter.source_topic == votes
        assert letter.payload == payload
        assert letter.stage == "consensus"
        assert letter.reason
    assert by_code["schema_invalid"].reason.startswith("VoteCast.confidence")
    offsets = sorted(d.source_offset for d in letters)
    assert offsets == [0, 1, 2]  # one partition for one key: the three in order
    stats = runner.stats
    assert stats.rejected == 3
    assert stats.reasons == {code: 1 for code in bad}
    assert stats.consumed == stats.processed + stats.rejected + stats.restored
