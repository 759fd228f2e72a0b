"""The native codec (``labeltrail_native``) against the pure-Python compiled codec, directly.

Per message both readers must accept with equal values and the same end, or both refuse; per
event both writers must give the same bytes (which are fastavro's), or both raise. Under
CI=true the native module must be built; elsewhere these tests are left out when it is not.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

import pytest
from fastavro.schema import parse_schema

from labeltrail.events import EVENT_TYPES, codec, serde
from labeltrail.events import native as native_codec
from labeltrail.events.avro import committed_schemas, schema_dir, writer_schemas
from labeltrail.events.base import Event
from labeltrail.exceptions import SerializationError
from tests.events.implementations import use
from tests.events.samples import sample_event
from tests.unavailable import unavailable

HOT = ["VoteCast", "TaskCreated", "TaskAssigned", "ConsensusUpdated", "LabelCommitted"]


@pytest.fixture(autouse=True)
def _built() -> None:
    """The project's rule for a missing part: a failure under CI=true, a skip elsewhere."""
    if native_codec.native is None:
        unavailable("labeltrail_native is not built (ops/setup.sh builds it when cargo exists)")


def test_the_native_codec_is_built_under_ci() -> None:
    import labeltrail_native  # type: ignore[import-not-found]

    assert labeltrail_native.__version__ == native_codec.NATIVE_VERSION
    assert native_codec.native is labeltrail_native
    assert all(codec.compiled(name).native for name in HOT)  # type: ignore[union-attr]


def _pair(name: str) -> tuple[codec.Compiled, codec.Compiled]:
    python, native = codec.compiled_python(name), native_codec.compiled_native(name)
    assert python is not None and native is not None, name
    assert native.native and not python.native
    return python, native


def _python_bytes(name: str, value: Any) -> bytes:
    python = codec.compiled_python(name)
    assert python is not None
    buf = bytearray()
    python.write(buf, value)
    return bytes(buf)


def _read(entry: codec.Compiled, data: bytes, name: str) -> Any:
    """(bytes the Python writer gives the value, end) or the refusal (NaN-proof equality)."""
    try:
        value, end = entry.read(data, 10)
    except Exception:
        return "refused"
    return _python_bytes(name, value), end, _shape(value)


def _shape(value: Any) -> Any:
    """Types, fields-set and timezones all the way down: what == on models does not see."""
    if isinstance(value, Event) or hasattr(value, "__pydantic_fields_set__"):
        return (
            type(value),
            sorted(value.__pydantic_fields_set__),
            value.__pydantic_extra__,
            value.__pydantic_private__,
            [_shape(v) for v in value.__dict__.values()],
        )
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return (value, value.tzinfo, value.fold)
    return type(value)


def _same_read(name: str, data: bytes) -> Any:
    python, native = _pair(name)
    expected = _read(python, data, name)
    assert _read(native, data, name) == expected
    return expected


def _same_write(name: str, event: Any) -> bytes:
    python, native = _pair(name)
    a, b = bytearray(serde.MAGIC + python.fingerprint), bytearray(serde.MAGIC + native.fingerprint)
    python.write(a, event)
    native.write(b, event)
    assert a == b
    return bytes(a)


@pytest.mark.parametrize("name", sorted(n for n in EVENT_TYPES if codec.compiled_python(n)))
def test_every_event_type_reads_and_writes_the_same(name: str) -> None:
    event = sample_event(name)
    _same_write(name, event)
    data = serde.encode_with(*_current(name), event.model_dump())
    native = _pair(name)[1]
    got, end = native.read(data, 10)
    assert end == len(data) and got == event and type(got) is type(event)
    assert _same_read(name, data) != "refused"


def _current(name: str) -> tuple[Any, bytes]:
    schema = committed_schemas()[name]
    return schema, next(f for f, w in writer_schemas().items() if w.schema is schema)


def _raw(name: str, record: dict[str, Any], plain: bool = False) -> bytes:
    """Bytes fastavro writes for a record (``plain``: timestamps as raw longs)."""
    schema, fp = _current(name)
    if plain:
        text = (schema_dir() / f"{name}.avsc").read_text()
        schema = parse_schema(json.loads(text.replace('"timestamp-millis"', '"none"')))
    return serde.encode_with(schema, fp, record)


@pytest.mark.parametrize("name", HOT)
def test_fuzzed_messages_are_accepted_and_refused_alike(name: str) -> None:
    rng = random.Random(11)
    good = serde.encode_with(*_current(name), sample_event(name).model_dump())
    refused = 0
    for _ in range(1500):
        data = bytearray(good)
        for _ in range(rng.randint(0, 3)):
            what = rng.random()
            if what < 0.6 and len(data) > 10:
                data[rng.randrange(10, len(data))] = rng.randrange(256)
            elif what < 0.8 and len(data) > 11:
                del data[rng.randrange(11, len(data)) :]
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
        refused += _same_read(name, bytes(data)) == "refused"
    assert 0 < refused < 1500


@pytest.mark.parametrize(
    "ms",
    [
        0,
        -1,
        1,
        -62135596800000,  # 0001-01-01: the earliest datetime
        -62135596800001,
        253402300799999,  # 9999-12-31 23:59:59.999: the latest
        253402300800000,
        -(2**63),
        2**63 - 1,
        1_700_000_000_123,
        -14182940000,
    ],
)
def test_extreme_timestamps(ms: int) -> None:
    record = sample_event("VoteCast").model_dump()
    record["envelope"]["occurred_at"] = ms
    record["envelope"]["recorded_at"] = 0
    _same_read("VoteCast", _raw("VoteCast", record, plain=True))


def test_unicode_long_strings_negative_longs_and_nans() -> None:
    text = "ça va? 🙂 — 日本語 " * 300
    vote = sample_event("VoteCast").model_copy(
        update={
            "label": text,
            "vote_id": "x" * 64,
            "answers": {f"q{i}": "é" * i for i in range(200)},
            "time_spent_ms": 2**62,
        }
    )
    data = _same_write("VoteCast", vote)
    assert _same_read("VoteCast", data) != "refused"
    assert native_codec.compiled_native("VoteCast").read(data, 10)[0] == vote  # type: ignore[union-attr]
    for offset in (-1, -64, -65, -(2**31), -(2**63), 2**63 - 1):
        dead = sample_event("DeadLettered").model_copy(update={"source_offset": offset})
        _same_read("DeadLettered", _same_write("DeadLettered", dead))
    nan = sample_event("ConsensusUpdated").model_copy(
        update={"agreement": math.nan, "posterior": [math.nan, -math.inf, -0.0, 5e-324]}
    )
    data = _same_write("ConsensusUpdated", nan)
    assert _same_read("ConsensusUpdated", data) != "refused"
    got, _ = native_codec.compiled_native("ConsensusUpdated").read(data, 10)  # type: ignore[union-attr]
    assert math.isnan(got.agreement) and math.copysign(1, got.posterior[2]) == -1


def test_invalid_utf8_and_non_canonical_encodings_are_refused_alike() -> None:
    good = _same_write("VoteCast", sample_event("VoteCast"))
    name_at = good.index(b"vote1")
    for bad in (b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        data = good[: name_at - 1] + bytes([len(bad) * 2]) + bad + good[name_at + 5 :]
        assert _same_read("VoteCast", data) == "refused"
    # A length written as a two-byte varint, a union branch other than 0 or 2, an 11-byte long.
    _same_read("VoteCast", good[: name_at - 1] + b"\x8a\x00" + good[name_at:])
    assert _same_read("VoteCast", good[:10] + b"\xff" * 11 + good[10:]) == "refused"


def _encode_error(event: Any) -> Any:
    try:
        return serde.encode(event)
    except SerializationError:
        return SerializationError
    except Exception as exc:  # compared, not handled
        return type(exc)


@pytest.mark.parametrize(
    ("name", "update"),
    [
        ("DeadLettered", {"source_offset": 2**63}),
        ("DeadLettered", {"source_offset": -(2**63) - 1}),
        ("VoteCast", {"label": 7}),
        ("VoteCast", {"label": "\ud800"}),
        ("VoteCast", {"time_spent_ms": 1.5}),
        ("VoteCast", {"confidence": "high"}),
        ("VoteCast", {"answers": {"q": 1}}),
        ("TaskCreated", {"annotators": ["a", None]}),
        ("ExportCreated", {"as_of": dt.datetime(2024, 1, 1)}),
        ("ExportCreated", {"as_of": "2024-01-01"}),
    ],
)
def test_the_writers_raise_alike(
    name: str, update: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    event = sample_event(name).model_copy(update=update)
    outcomes = []
    for impl in ("python", "native"):
        use(impl, monkeypatch)
        outcomes.append(_encode_error(event))
    assert outcomes[0] == outcomes[1] == SerializationError


def test_other_timezones_and_odd_values_write_as_python_writes_them() -> None:
    tz = dt.timezone(dt.timedelta(hours=-5, minutes=-30))
    for at in (
        dt.datetime(2024, 3, 1, 12, 0, 0, 999_999, tzinfo=tz),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
    ):
        event = sample_event("ExportCreated").model_copy(update={"as_of": at})
        _same_write("ExportCreated", event)
    task = sample_event("TaskCreated").model_copy(
        update={"annotators": ("a", "b"), "redundancy": True, "cost_usd": 3}
    )
    _same_write("TaskCreated", task)


def test_the_switch_and_the_version_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native_codec._load_native() is native_codec.native
    monkeypatch.setenv("LABELTRAIL_NATIVE", "0")
    assert native_codec._load_native() is None
    monkeypatch.setenv("LABELTRAIL_NATIVE", "1")
    monkeypatch.setattr(native_codec.native, "__version__", "0.0.0-other")
    assert native_codec._load_native() is None


def test_native_rows_are_a_subset_of_the_fastavro_rows_with_equal_values() -> None:
    """Whatever the native rows reader accepts, ``_fast`` accepts with the same row; what it
    leaves (None) goes through ``_fast`` and ``decode`` as before."""
    from labeltrail.events import columnar

    reader = columnar._native_rows()
    assert reader is not None
    fast = columnar._fast_schemas()
    rng = random.Random(5)
    goods = [
        serde.encode(sample_event("VoteCast")),
        serde.encode(sample_event("TaskCreated").model_copy(update={"annotators": ["a", "b"]})),
        serde.encode(sample_event("TaskAssigned")),
    ]
    values = []
    for _ in range(3000):
        data = bytearray(rng.choice(goods))
        for _ in range(rng.randint(0, 2)):
            what = rng.random()
            if what < 0.7:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif what < 0.85:
                del data[rng.randrange(len(data)) :]
            else:
                data += bytes([rng.randrange(256)])
        values.append(bytes(data))
    accepted = 0
    for value, row in zip(values, reader.rows(values), strict=True):
        if row is not None:
            accepted += 1
            assert type(row) in (columnar.VoteRow, columnar.TaskRow)
            assert row == columnar._fast(value, fast)
    assert accepted > 500
    assert reader.rows([]) == [] and reader.rows((goods[0], "not bytes")) == [
        columnar._fast(goods[0], fast),
        None,
    ]
