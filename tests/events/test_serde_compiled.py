"""The compiled Avro path must give exactly what fastavro + pydantic give, and refuse the same.

The compiled reader builds models without ``model_validate``; every constraint the models
declare beyond the Avro types is checked by hand, so each one has a case here. A message the
compiled reader refuses goes to the general path, whose error names the field.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import pytest

from labeltrail.events import EVENT_TYPES, decode, encode, serde
from labeltrail.events.avro import committed_schemas, writer_schemas
from labeltrail.events.serde import _decode_general, encode_with
from labeltrail.exceptions import SchemaInvalidError, SerializationError, UndecodableError
from tests.events.implementations import IMPLEMENTATIONS, compiled_by, use
from tests.events.samples import sample_event

HOT = ["VoteCast", "TaskCreated", "TaskAssigned", "ConsensusUpdated", "LabelCommitted"]


@pytest.fixture(autouse=True, params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on the pure-Python codec and, where it is built, the native one."""
    use(request.param, monkeypatch)
    return str(request.param)


def _compiled(name: str) -> Any:
    return serde._compiled(name)


def _current(name: str) -> tuple[Any, bytes]:
    schema = committed_schemas()[name]
    fp = next(f for f, w in writer_schemas().items() if w.schema is schema)
    return schema, fp


def _general_bytes(record: dict[str, Any], name: str) -> bytes:
    return encode_with(*_current(name), record)


def _outcome(data: bytes, name: str) -> Any:
    """What the general path (fastavro + model_validate) makes of a message."""
    try:
        event = _decode_general(data, name)
    except Exception as exc:
        return (type(exc), str(exc))
    return (type(event), encode(event))  # bytes: a NaN in a corrupted double is still equal


def _fast_outcome(data: bytes) -> Any:
    try:
        event = decode(data)
    except Exception as exc:
        return (type(exc), str(exc))
    return (type(event), encode(event))


def test_hot_event_types_are_compiled(impl: str) -> None:
    for name in HOT:
        entry = compiled_by(impl)(name)
        assert entry is not None, name
        assert entry.native == (impl == "native"), name


def test_a_model_with_its_own_validator_is_not_compiled_and_still_validated() -> None:
    assert _compiled("AnnotatorRegistered") is None
    record = sample_event("AnnotatorRegistered").model_dump()
    record["consented"] = False
    record["demographics"] = {"age": "30-39"}
    with pytest.raises(SchemaInvalidError, match="consent"):
        decode(_general_bytes(record, "AnnotatorRegistered"))


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_same_bytes_and_same_event_as_the_general_path(name: str) -> None:
    event = sample_event(name)
    data = encode(event)
    assert data == _general_bytes(event.model_dump(), name)
    fast, general = decode(data), _decode_general(data, name)
    assert fast == general == event
    assert type(fast) is type(event)
    assert fast.__pydantic_fields_set__ == general.__pydantic_fields_set__
    assert fast.envelope.__pydantic_fields_set__ == general.envelope.__pydantic_fields_set__
    assert fast.envelope.occurred_at.tzinfo == dt.UTC
    assert fast.model_dump() == general.model_dump()


def test_nested_records_are_models() -> None:
    labels = decode(encode(sample_event("LabelCommitted")))
    assert labels.source_positions  # type: ignore[attr-defined]
    assert type(labels.source_positions[0]).__name__ == "LogPosition"  # type: ignore[attr-defined]
    task = decode(encode(sample_event("TaskAssigned")))
    assert type(task.prior_votes[0]).__name__ == "PriorVote"  # type: ignore[attr-defined]


def _with(name: str, **changes: Any) -> dict[str, Any]:
    record = sample_event(name).model_dump()
    record.update(changes)
    return record


# Every constraint the models declare beyond Avro's types, with a value that breaks it.
INVALID = [
    ("VoteCast", "confidence", 1.7),
    ("VoteCast", "confidence", -0.01),
    ("VoteCast", "confidence", math.nan),
    ("VoteCast", "time_spent_ms", -1),
    ("CommentPosted", "comment_id", ""),
    ("CommentPosted", "video_id", ""),
    ("CommentPosted", "text", ""),
    ("CommentPosted", "text", "x" * 60_001),
    ("CommentPosted", "source", "forum"),
    ("LabelSchemaPublished", "version", ""),
    ("LabelSchemaPublished", "classes", ["only-one"]),
    ("LabelSchemaPublished", "old_label_policy", "forget"),
    ("CommentScored", "margin", 1.5),
    ("CommentScored", "margin", -0.5),
    ("CommentScored", "route", "elsewhere"),
    ("TaskCreated", "kind", "robot"),
    ("TaskCreated", "reason", "whim"),
    ("TaskCreated", "redundancy", 0),
    ("TaskCreated", "cost_usd", -0.04),
    ("TaskCreated", "prelabel_confidence", 1.01),
    ("TaskAssigned", "pool", "robots"),
    ("TaskAssigned", "cost_usd", -1.0),
    ("ConsensusUpdated", "votes_expected", 0),
    ("ConsensusUpdated", "status", "done"),
    ("AdjudicationRecorded", "confidence", 2.0),
    ("LabelCommitted", "confidence", -1.0),
    ("LabelCommitted", "route", "guess"),
    ("HoneypotScored", "source", "rumour"),
    ("AnnotatorReliabilityUpdated", "method", "vibes"),
    ("AnnotatorReliabilityUpdated", "accuracy", 1.2),
    ("AnnotatorReliabilityUpdated", "accuracy_lower", -0.2),
    ("AnnotatorReliabilityUpdated", "accuracy_upper", 1.2),
    ("AnnotatorReliabilityUpdated", "n_observations", -3),
    ("IaaWindowClosed", "window", "month"),
    ("FeedbackReceived", "kind", "rant"),
    ("DeadLettered", "reason_code", "bored"),
]


@pytest.mark.parametrize(("name", "field", "value"), INVALID)
def test_each_declared_constraint_is_enforced(name: str, field: str, value: Any) -> None:
    data = _general_bytes(_with(name, **{field: value}), name)
    compiled = _compiled(name)
    assert compiled is not None
    with pytest.raises(Exception):  # noqa: B017 - the compiled reader refuses, by any means
        compiled.read(data, 10)
    with pytest.raises(SchemaInvalidError, match=rf"^{name}\.{field}"):
        decode(data)
    assert _fast_outcome(data) == _outcome(data, name)


def test_an_invalid_nested_literal_inside_the_envelope_path_is_refused() -> None:
    record = _with("VoteCast")
    record["envelope"]["event_type"] = "LabelCommitted"
    with pytest.raises(SchemaInvalidError, match="envelope"):
        decode(_general_bytes(record, "VoteCast"))


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("VoteCast", "confidence", 0.0),
        ("VoteCast", "confidence", 1.0),
        ("VoteCast", "confidence", None),
        ("VoteCast", "time_spent_ms", 0),
        ("TaskCreated", "redundancy", 1),
        ("CommentPosted", "text", "x" * 60_000),
        ("LabelSchemaPublished", "classes", ["a", "b"]),
        ("CommentScored", "margin", 0.0),
    ],
)
def test_boundary_values_are_accepted_as_pydantic_accepts_them(
    name: str, field: str, value: Any
) -> None:
    data = _general_bytes(_with(name, **{field: value}), name)
    compiled = _compiled(name)
    assert compiled is not None
    event, end = compiled.read(data, 10)
    assert end == len(data)
    assert event == _decode_general(data, name)


def test_long_unicode_strings_big_numbers_and_maps_round_trip_byte_for_byte() -> None:
    event = sample_event("CommentPosted").model_copy(
        update={
            "text": "ça va? 🙂 " * 200,
            "attributes": {f"k{i}": "é" * i for i in range(70)},
            "parent_ids": [f"c-{i}" for i in range(130)],
        }
    )
    data = encode(event)
    assert data == _general_bytes(event.model_dump(), "CommentPosted")
    assert decode(data) == event
    scored = sample_event("AnnotatorReliabilityUpdated").model_copy(
        update={"n_observations": 2**62, "confusion": [[0.1] * 5] * 5}
    )
    data = encode(scored)
    assert data == _general_bytes(scored.model_dump(), "AnnotatorReliabilityUpdated")
    assert decode(data) == scored
    old = sample_event("DeadLettered").model_copy(update={"source_offset": -(2**63)})
    assert decode(encode(old)) == old


def test_a_long_outside_64_bits_is_not_encoded() -> None:
    event = sample_event("DeadLettered").model_copy(update={"source_offset": 2**63})
    with pytest.raises(SerializationError):
        encode(event)


def test_timestamps_before_the_epoch_round_trip() -> None:
    old = dt.datetime(1969, 7, 20, 20, 17, 40, 123000, tzinfo=dt.UTC)
    event = sample_event("ExportCreated").model_copy(update={"as_of": old})
    data = encode(event)
    assert data == _general_bytes(event.model_dump(), "ExportCreated")
    assert decode(data).as_of == old  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", HOT)
def test_corrupt_bodies_give_the_general_paths_verdict(name: str) -> None:
    rng = random.Random(7)
    good = encode(sample_event(name))
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(10, len(data))] = rng.randrange(256)
        cut = rng.choice([len(data), len(data), rng.randrange(10, len(data))])
        mutated = bytes(data[:cut])
        assert _fast_outcome(mutated) == _outcome(mutated, name)


def test_truncated_and_padded_messages_are_undecodable() -> None:
    good = encode(sample_event("VoteCast"))
    with pytest.raises(UndecodableError):
        decode(good[:-3])
    with pytest.raises(UndecodableError, match="trailing"):
        decode(good + b"\x00")
