"""The Avro contracts and the pydantic models must not drift; every event round-trips."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fastavro.schema import parse_schema

from labeltrail import __version__
from labeltrail.events import (
    EVENT_TYPES,
    AnnotatorRegistered,
    CommentPosted,
    Event,
    VoteCast,
    decode,
    derive_id,
    encode,
)
from labeltrail.events.avro import (
    LEGACY_ORDER_REMOVED_IN,
    accepted_writers,
    committed_schemas,
    fingerprint64,
    schema_dir,
    schema_for,
    writer_schemas,
)
from labeltrail.events.serde import _decode_general, encode_with, event_type_of
from labeltrail.exceptions import (
    SchemaInvalidError,
    UndecodableError,
    UnknownEventTypeError,
)
from tests.events.samples import sample_event


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k != "doc"}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_model_and_committed_contract_agree(name: str) -> None:
    committed = json.loads((schema_dir() / f"{name}.avsc").read_text())
    assert _strip_docs(committed) == _strip_docs(schema_for(EVENT_TYPES[name]))


def test_every_contract_has_a_model() -> None:
    files = {p.stem for p in schema_dir().glob("*.avsc")}
    assert files == set(EVENT_TYPES)


def test_drift_is_detected() -> None:
    committed = json.loads((schema_dir() / "VoteCast.avsc").read_text())
    committed["fields"].append({"name": "extra", "type": "string", "default": ""})
    assert _strip_docs(committed) != _strip_docs(schema_for(VoteCast))


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_round_trip(name: str) -> None:
    event = sample_event(name)
    data = encode(event)
    assert data[:2] == b"\xc3\x01"
    assert decode(data) == event


def test_header_is_the_spec_single_object_header() -> None:
    """The header Apache Avro's Java BinaryMessageEncoder writes for CommentPosted: its
    parsingFingerprint64 0xf1402114dc26a86a, little-endian (tests/interop checks every contract
    against Java itself)."""
    data = encode(sample_event("CommentPosted"))
    assert data[:10].hex(" ") == "c3 01 6a a8 26 dc 14 21 40 f1"
    assert fingerprint64(committed_schemas()["CommentPosted"]) == -0x0EBFDEEB23D95796
    for fp, writer in writer_schemas().items():
        assert fp == fingerprint64(writer.schema).to_bytes(8, "little", signed=True)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_legacy_byte_order_still_decodes(name: str) -> None:
    """A log written by 0.1.0 (fingerprint bytes reversed) reads as before, on the compiled
    path and the general one."""
    event = sample_event(name)
    data = encode(event)
    legacy = data[:2] + data[2:10][::-1] + data[10:]
    assert legacy != data
    assert event_type_of(legacy) == name
    assert decode(legacy) == event
    assert _decode_general(legacy, name) == event


def test_legacy_order_of_an_older_version_resolves() -> None:
    v1 = next(w for w in writer_schemas().values() if w.name == "VoteCast" and w.version == 1)
    record = sample_event("VoteCast").model_dump()
    record.pop("answers")
    record.pop("prelabel_shown")
    decoded = decode(encode_with(v1.schema, v1.fingerprint[::-1], record))
    assert isinstance(decoded, VoteCast)
    assert decoded.answers == {}


def test_legacy_order_is_accepted_until_the_declared_release() -> None:
    """Reading the reversed header is a migration aid with an end: 1.0.0 removes it. When the
    package reaches that version this fails until the legacy keys are gone."""
    legacy = {h for h, w in accepted_writers().items() if h != w.fingerprint}
    assert len(legacy) == len(writer_schemas())

    def release(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".")[:3])

    assert release(__version__) < release(LEGACY_ORDER_REMOVED_IN), (
        "remove the legacy byte order from events/avro.py (accepted_writers) and its docs"
    )


def test_older_writer_version_resolves_to_current_reader() -> None:
    v1 = next(w for w in writer_schemas().values() if w.name == "VoteCast" and w.version == 1)
    event = sample_event("VoteCast")
    record = event.model_dump()
    record.pop("answers")
    record.pop("prelabel_shown")
    data = encode_with(v1.schema, v1.fingerprint, record)
    decoded = decode(data)
    assert isinstance(decoded, VoteCast)
    assert decoded.answers == {}
    assert decoded.prelabel_shown is False
    assert decoded.vote_id == event.vote_id


def test_a_model_published_before_the_gate_reads_as_not_forced() -> None:
    """ModelPublished v1 records (no schema version, baseline or force) read with v2's
    defaults: not forced, no baseline."""
    v1 = next(w for w in writer_schemas().values() if w.name == "ModelPublished" and w.version == 1)
    event = sample_event("ModelPublished")
    record = event.model_dump()
    for added in ("schema_version", "baseline_version", "forced", "force_reason"):
        record.pop(added)
    decoded = decode(encode_with(v1.schema, v1.fingerprint, record))
    assert isinstance(decoded, type(event)) and decoded.model_version == event.model_version
    assert (decoded.forced, decoded.force_reason, decoded.baseline_version) == (False, "", None)
    assert decoded.schema_version is None


@pytest.mark.parametrize(
    ("name", "version", "added"),
    [("ModelPublished", 2, ("temperature",)), ("CommentScored", 1, ("temperature", "confidence"))],
)
def test_scores_and_models_before_calibrated_auto_accept_read_without_a_map(
    name: str, version: int, added: tuple[str, ...]
) -> None:
    """ModelPublished v2 and CommentScored v1 records read with no temperature (and no
    calibrated confidence): the raw top probability gated auto-accept."""
    old = next(w for w in writer_schemas().values() if w.name == name and w.version == version)
    event = sample_event(name)
    record = event.model_dump()
    for field in added:
        record.pop(field)
    decoded = decode(encode_with(old.schema, old.fingerprint, record))
    assert isinstance(decoded, type(event)) and decoded.event_id == event.event_id
    assert all(getattr(decoded, field) is None for field in added)
    assert all(getattr(event, field) is not None for field in added)


def test_undecodable_bytes() -> None:
    with pytest.raises(UndecodableError, match="marker"):
        decode(b'{"json": "not avro"}')
    good = encode(sample_event("VoteCast"))
    with pytest.raises(UndecodableError):
        decode(good[:-7])


def test_unknown_fingerprint() -> None:
    good = encode(sample_event("VoteCast"))
    with pytest.raises(UnknownEventTypeError, match="fingerprint"):
        decode(good[:2] + b"\x00" * 8 + good[10:])


def test_schema_invalid_payload() -> None:
    schema = committed_schemas()["VoteCast"]
    fp = next(f for f, w in writer_schemas().items() if w.schema is schema)
    record = sample_event("VoteCast").model_dump()
    record["confidence"] = 1.7
    with pytest.raises(SchemaInvalidError, match="confidence"):
        decode(encode_with(schema, fp, record))


def test_envelope_type_must_match_schema() -> None:
    schema = committed_schemas()["VoteCast"]
    fp = next(f for f, w in writer_schemas().items() if w.schema is schema)
    record = sample_event("VoteCast").model_dump()
    record["envelope"]["event_type"] = "LabelCommitted"
    with pytest.raises(SchemaInvalidError, match="envelope"):
        decode(encode_with(schema, fp, record))


def test_committed_contracts_parse_standalone() -> None:
    for path in schema_dir().glob("**/*.avsc"):
        parse_schema(json.loads(path.read_text()))


def test_derived_ids_are_deterministic_and_order_free() -> None:
    a = derive_id("LabelCommitted", "c-1f8a", "v3", ["v2", "v1"])
    assert a == derive_id("LabelCommitted", "c-1f8a", "v3", ["v1", "v2"])
    assert a != derive_id("LabelCommitted", "c-1f8a", "v4", ["v1", "v2"])
    e1 = VoteCast.create(producer="t", id_parts=("x",), **_vote_fields())
    e2 = VoteCast.create(producer="t", id_parts=("x",), **_vote_fields())
    assert e1.event_id == e2.event_id


def _vote_fields() -> dict[str, Any]:
    return {
        "vote_id": "v",
        "task_id": "t",
        "comment_id": "c",
        "annotator_id": "a",
        "schema_version": "v3",
        "label": "harassment",
        "time_spent_ms": 10,
    }


def test_timestamps_are_utc_millis() -> None:
    t = dt.datetime(2024, 8, 15, 10, 23, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    event = CommentPosted.create(
        producer="t",
        occurred_at=t,
        comment_id="c",
        video_id="v",
        author_hash="h",
        text="hello",
        posted_at=t,
        source="pool",
    )
    assert event.posted_at == dt.datetime(2024, 8, 15, 8, 23, 0, 123000, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="timezone"):
        CommentPosted.create(
            producer="t",
            comment_id="c",
            video_id="v",
            author_hash="h",
            text="hello",
            posted_at=dt.datetime(2024, 1, 1),
            source="pool",
        )


def test_demographics_need_consent() -> None:
    with pytest.raises(ValueError, match="consent"):
        AnnotatorRegistered.create(
            producer="t",
            annotator_id="a",
            pool="crowd",
            locale="en-US",
            languages=["en"],
            demographics={"age_band": "25-34"},
        )


def test_events_are_frozen() -> None:
    event = sample_event("VoteCast")
    with pytest.raises(ValueError, match="frozen"):
        event.label = "hate"  # type: ignore[misc]
    assert isinstance(event, Event)


def test_contracts_load_once_when_threads_ask_together() -> None:
    """Threads that ask for the contracts at the same moment get the same parsed objects (the
    codecs compare schemas by identity; the demo's stage threads once got two copies)."""
    import threading
    import time

    from labeltrail.events.avro import _once

    calls: list[int] = []

    def slow() -> dict[str, int]:
        calls.append(1)
        time.sleep(0.05)
        return {"n": len(calls)}

    get = _once(slow)
    start = threading.Barrier(8)
    got: list[dict[str, int]] = []

    def ask() -> None:
        start.wait()
        got.append(get())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(g is got[0] for g in got) and len(got) == 8
