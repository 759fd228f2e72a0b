"""Apache Avro's reference Java implementation and labeltrail read each other's messages.

For every contract in ``schemas/avro`` (current and historical versions) Java's
``SchemaNormalization.parsingFingerprint64`` is ours; Java's ``BinaryMessageEncoder`` writes
the header labeltrail writes (the bodies differ at most in the order of map entries, which Avro
leaves to the writer), and each side decodes the other's messages into the same record.
The records are a simulated platform's history plus one sample of every event type.
"""

from __future__ import annotations

from functools import cache

import pytest

from labeltrail.events import EVENT_TYPES, Event, decode, encode
from labeltrail.events.avro import fingerprint64, writer_schemas
from labeltrail.events.serde import encode_with
from labeltrail.sim import Platform, PlatformConfig
from tests.events.samples import sample_event
from tests.folds.helpers import run_in_memory
from tests.interop.java import Java, from_json

pytestmark = pytest.mark.integration


@cache
def _records() -> tuple[Event, ...]:
    """One sample of every event type, then every event of a small simulated history."""
    log = run_in_memory(Platform(PlatformConfig.sized(40, seed=3))).log
    history = [e for events in log.values() for e in events]
    return (*(sample_event(name) for name in sorted(EVENT_TYPES)), *history)


def test_every_contract_has_javas_fingerprint(java: Java) -> None:
    theirs = java.fingerprints()
    ours = {(w.name, w.version): w for w in writer_schemas().values()}
    assert set(theirs) == set(ours)
    for key, writer in ours.items():
        assert fingerprint64(writer.schema) == theirs[key], key
        assert writer.fingerprint == theirs[key].to_bytes(8, "little", signed=True), key


def test_java_writes_what_labeltrail_writes_and_labeltrail_reads_it(java: Java) -> None:
    events = _records()
    theirs = java.encode(events)
    assert len(theirs) == len(events)
    assert {type(e).__name__ for e in events} == set(EVENT_TYPES)
    for event, data in zip(events, theirs, strict=True):
        assert data[:10] == encode(event)[:10], type(event).__name__
        assert decode(data) == event


def test_java_reads_what_labeltrail_writes(java: Java) -> None:
    events = _records()
    decoded = java.decode(encode(e) for e in events)
    for event, (name, record, again) in zip(events, decoded, strict=True):
        assert name == type(event).__name__
        assert from_json(name, record) == event
        assert decode(again) == event, name


def test_java_resolves_an_older_version_labeltrail_wrote(java: Java) -> None:
    """A VoteCast v1 message (before ``answers`` and ``prelabel_shown``) reads into Java's
    current reader with their defaults, as it does in labeltrail."""
    v1 = next(w for w in writer_schemas().values() if w.name == "VoteCast" and w.version == 1)
    event = sample_event("VoteCast")
    record = event.model_dump()
    record.pop("answers")
    record.pop("prelabel_shown")
    [(name, json_record, _)] = java.decode([encode_with(v1.schema, v1.fingerprint, record)])
    theirs = from_json(name, json_record)
    assert theirs == decode(encode_with(v1.schema, v1.fingerprint, record))
    assert theirs == event.model_copy(update={"answers": {}, "prelabel_shown": False})
