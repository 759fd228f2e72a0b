"""``decode_label_rows``: committed labels read as rows, never accepting what ``decode`` rejects."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeltrail.events import columnar
from labeltrail.events.avro import writer_schemas
from labeltrail.events.base import LogPosition, epoch_millis
from labeltrail.events.columnar import LabelCommittedRow, decode_label_rows
from labeltrail.events.models import LabelCommitted
from labeltrail.events.serde import decode, encode, encode_with
from labeltrail.exceptions import SerializationError
from labeltrail.ontology import moderation_schema_v3
from tests.events.implementations import IMPLEMENTATIONS, use
from tests.folds.test_columnar import _error, _record, corrupt

T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]


@pytest.fixture(autouse=True, params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use(request.param, monkeypatch)
    if request.param == "python":
        monkeypatch.setattr(columnar, "_native_label_rows", lambda: None)
    return str(request.param)


def _label(n: int, **kw: Any) -> LabelCommitted:
    fields: dict[str, Any] = {
        "label_id": f"l{n}",
        "comment_id": f"c{n}",
        "schema_version": "v3",
        "label": "mild",
        "classes": CLASSES,
        "distribution": [0.1, 0.6, 0.1, 0.1, 0.1],
        "confidence": 0.6,
        "route": "consensus",
        "method": "reliability-weighted",
        "method_params": {"estimates": "a1@prior,a2@e1", "prior_accuracy": "0.7"},
        "vote_ids": [f"v{n}a", f"v{n}b"],
        "annotator_ids": ["a1", "a2"],
        "source_positions": [LogPosition(topic="x.consensus", partition=1, offset=n)],
    }
    fields.update(kw)
    return LabelCommitted.create(
        producer="p",
        id_parts=("l", n),
        occurred_at=T0,
        recorded_at=T0 + dt.timedelta(seconds=n),
        **fields,
    )


def _expected(data: bytes) -> Any:
    try:
        event = decode(data)
    except SerializationError as exc:
        return _error(exc)
    return LabelCommittedRow.of(event) if isinstance(event, LabelCommitted) else event


def _got(values: list[bytes]) -> list[Any]:
    decoded = decode_label_rows(values)
    out: list[Any] = [None] * len(values)
    for i, row in zip(decoded.indices, decoded.rows, strict=True):
        out[i] = row
    for i, exc in decoded.errors:
        out[i] = _error(exc)
    assert None not in out
    return out


def test_rows_carry_every_field_but_the_source_positions(impl: str) -> None:
    label = _label(1, adjudication_id="adj", gold_label="hate", run_id="r1", machine_made=True)
    values = [encode(label), encode(moderation_schema_v3())]
    decoded = decode_label_rows(values)
    assert decoded.fast == (1 if impl == "native" else 0)
    row, schema = decoded.rows
    assert row == LabelCommittedRow.of(label)
    assert row.event_id == label.event_id and row.run_id == "r1"
    assert row.recorded_ms == epoch_millis(T0) + 1000 and row.occurred_ms == epoch_millis(T0)
    assert row.method_params["estimates"] == "a1@prior,a2@e1"
    assert schema == decode(values[1])


@pytest.mark.parametrize(
    "data",
    [
        _record(_label(1), confidence=1.5),
        _record(_label(1), distribution=[0.1, 1.6, 0.1, 0.1, 0.1]),
        _record(_label(1), route="telepathy"),
        _record(_label(1), source_positions=[{"topic": "t", "partition": -1, "offset": 0}]),
        _record(_label(1), **{"envelope.event_type": "VoteCast"}),
        encode(_label(1)) + b"\x00",
        encode(_label(1))[:-3],
    ],
)
def test_what_decode_rejects_is_rejected_the_same_way(data: bytes) -> None:
    expected = _expected(data)
    assert isinstance(expected, tuple), "the case must be one decode rejects"
    assert _got([data]) == [expected]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_corrupted_labels_decode_as_decode_says(seed: int) -> None:
    """Random byte flips, cuts and tails: per record, the same row or the same error."""
    rng = random.Random(seed)
    values = [corrupt(encode(_label(n)), rng) for n in range(6)]
    assert _got(values) == [_expected(v) for v in values]


def test_an_older_writer_version_is_read_through_decode() -> None:
    """A label written under contract v1 (no ``run_id``) becomes its row through ``decode``."""
    v1 = next(w for w in writer_schemas().values() if w.name == "LabelCommitted" and w.version == 1)
    record = _label(3).model_dump()
    del record["run_id"]
    data = encode_with(v1.schema, v1.fingerprint, record)
    decoded = decode_label_rows([data])
    assert decoded.fast == 0 and decoded.rows == [LabelCommittedRow.of(decode(data))]
    assert decoded.rows[0].run_id is None
