"""``decode_rows`` accepts exactly what ``decode`` accepts, with the same values and errors."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from typing import Any

import pytest
from fastavro.schema import parse_schema
from hypothesis import given, settings
from hypothesis import strategies as st

from labeltrail.events.avro import committed_schemas, schema_dir, writer_schemas
from labeltrail.events.base import Event, epoch_millis, from_epoch_millis
from labeltrail.events.columnar import TaskRow, VoteRow, decode_rows
from labeltrail.events.models import TaskCreated, VoteCast
from labeltrail.events.serde import decode, encode, encode_with
from labeltrail.exceptions import SerializationError
from labeltrail.ontology import moderation_schema_v3
from tests.events.implementations import IMPLEMENTATIONS, use

T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True, params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on the pure-Python codec and, where it is built, the native one
    (``decode_rows``'s native batch reader and the native per-event codec behind ``decode``)."""
    use(request.param, monkeypatch)
    return str(request.param)


def _vote(n: int, **kw: Any) -> VoteCast:
    fields: dict[str, Any] = {
        "vote_id": f"v{n}",
        "task_id": f"t{n}",
        "comment_id": f"c{n}",
        "annotator_id": "a1",
        "schema_version": "v3",
        "label": "hate",
        "time_spent_ms": 1000,
        "confidence": 0.5,
    }
    fields.update(kw)
    return VoteCast.create(producer="p", id_parts=("v", n), occurred_at=T0, **fields)


def _task(n: int, **kw: Any) -> TaskCreated:
    fields: dict[str, Any] = {
        "task_id": f"t{n}",
        "comment_id": f"c{n}",
        "schema_version": "v3",
        "kind": "crowd",
        "reason": "random_audit",
        "questions": ["q1"],
        "redundancy": 3,
        "annotators": ["a1", "a2", "a3"],
        "cost_usd": 0.12,
    }
    fields.update(kw)
    return TaskCreated.create(producer="p", id_parts=("t", n), occurred_at=T0, **fields)


def _error(exc: SerializationError) -> tuple[str, str, str]:
    """An error as data (object addresses in fastavro's messages differ between calls)."""
    return (type(exc).__name__, exc.reason_code, re.sub(r" at 0x[0-9a-f]+", "", str(exc)))


def _expected(data: bytes) -> Any:
    """What the per-event path makes of a record: a row, another event, or its error."""
    try:
        event = decode(data)
    except SerializationError as exc:
        return _error(exc)
    if isinstance(event, VoteCast):
        return VoteRow.of(event)
    if isinstance(event, TaskCreated):
        return TaskRow.of(event)
    return event


def _got(values: list[bytes]) -> list[Any]:
    decoded = decode_rows(values)
    out: list[Any] = [None] * len(values)
    for i, row in zip(decoded.indices, decoded.rows, strict=True):
        out[i] = VoteRow.of(row) if isinstance(row, VoteCast) else row
        out[i] = TaskRow.of(row) if isinstance(row, TaskCreated) else out[i]
    for i, exc in decoded.errors:
        out[i] = _error(exc)
    assert None not in out
    return out


def test_rows_carry_the_events_fields() -> None:
    values = [encode(_vote(1)), encode(_task(1)), encode(moderation_schema_v3())]
    decoded = decode_rows(values)
    assert decoded.fast == 2 and not decoded.errors
    vote, task, schema = decoded.rows
    assert vote == VoteRow.of(_vote(1)) and vote.occurred_ms == epoch_millis(T0)
    assert task == TaskRow.of(_task(1)) and task.annotators == ("a1", "a2", "a3")
    assert isinstance(schema, Event) and schema == decode(values[2])
    assert from_epoch_millis(epoch_millis(T0)) == T0


def _record(event: Event, **changes: Any) -> bytes:
    """The event's record with fields overwritten (bypassing the model's validation)."""
    name = type(event).__name__
    schema = committed_schemas()[name]
    fp = next(fp for fp, w in writer_schemas().items() if w.schema is schema)
    record = event.model_dump()
    for key, value in changes.items():
        if key.startswith("envelope."):
            record["envelope"][key.removeprefix("envelope.")] = value
        else:
            record[key] = value
    return encode_with(schema, fp, record)


@pytest.mark.parametrize(
    "data",
    [
        _record(_vote(1), confidence=1.5),
        _record(_vote(1), confidence=-0.1),
        _record(_vote(1), confidence=float("nan")),
        _record(_vote(1), time_spent_ms=-1),
        _record(_vote(1), **{"envelope.event_type": "TaskCreated"}),
        _record(_task(1), kind="robot"),
        _record(_task(1), reason="whim"),
        _record(_task(1), redundancy=0),
        _record(_task(1), cost_usd=-1.0),
        _record(_task(1), cost_usd=float("nan")),
        _record(_task(1), prelabel_confidence=2.0),
        _record(_task(1), **{"envelope.event_type": "VoteCast"}),
        encode(_vote(1)) + b"\x00",
        encode(_vote(1))[:-3],
        b"\xc3\x01" + b"\x00" * 8 + b"junk",
        b"not avro",
    ],
)
def test_what_decode_rejects_is_rejected_the_same_way(data: bytes) -> None:
    expected = _expected(data)
    assert isinstance(expected, tuple), "the case must be one decode rejects"
    assert _got([data]) == [expected]


def test_extreme_timestamps_go_through_decode() -> None:
    """Timestamps outside years 1970-9000, written as raw longs, get decode's verdict."""
    text = (schema_dir() / "VoteCast.avsc").read_text()
    plain = parse_schema(json.loads(text.replace('"timestamp-millis"', '"none"')))
    fp = encode(_vote(1))[2:10]
    for ms in (-1, -(10**14), 10**15, 2**62):
        raw = _vote(1).model_dump()
        raw["envelope"]["occurred_at"] = ms
        raw["envelope"]["recorded_at"] = epoch_millis(T0)
        value = encode_with(plain, fp, raw)
        assert decode_rows([value]).fast == 0
        assert _got([value]) == [_expected(value)]


def test_an_older_writer_version_is_read_through_decode() -> None:
    v1 = next(w for w in writer_schemas().values() if w.name == "VoteCast" and w.version == 1)
    record = _vote(3).model_dump()
    del record["answers"], record["prelabel_shown"]
    data = encode_with(v1.schema, v1.fingerprint, record)
    decoded = decode_rows([data])
    assert decoded.fast == 0 and decoded.rows == [decode(data)]


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_corrupted_records_decode_as_decode_says(seed: int) -> None:
    """Random byte flips, cuts and tails: per record, the same row or the same error."""
    rng = random.Random(seed)
    values = []
    for n in range(8):
        event: Event = _vote(n) if rng.random() < 0.6 else _task(n)
        values.append(corrupt(encode(event), rng))
    assert _got(values) == [_expected(v) for v in values]


def corrupt(value: bytes, rng: random.Random) -> bytes:
    """``value`` with up to three random byte flips, cuts or tails."""
    data = bytearray(value)
    for _ in range(rng.randint(0, 3)):
        what = rng.random()
        if not data:
            break
        if what < 0.6:
            i = rng.randrange(len(data))
            data[i] = rng.randrange(256)
        elif what < 0.8:
            del data[rng.randrange(len(data)) :]
        else:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    return bytes(data)
