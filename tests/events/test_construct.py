"""An event built by its type's compiled constructor is the event validation builds; any value
not already of its field's type is validated (coerced or refused) as before."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from labeltrail.events import EVENT_TYPES, base, serde
from labeltrail.events.base import Envelope, Event, from_epoch_millis
from labeltrail.events.construct import constructor
from labeltrail.events.models import ConsensusUpdated, TaskAssigned
from tests.events.samples import T0, sample_event

NOW_NS = 1_725_271_200_123_456_789
NOW = from_epoch_millis(NOW_NS // 1_000_000)


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base.time, "time_ns", lambda: NOW_NS)


def _validated(cls: type[Event], occurred_at: dt.datetime, **fields: Any) -> Event:
    envelope = Envelope(
        event_id="e-1",
        event_type=cls.__name__,
        occurred_at=occurred_at,
        recorded_at=NOW,
        producer="tests",
        causation_id="c-0",
        correlation_id="k-1",
    )
    return cls(envelope=envelope, **fields)


def _built(cls: type[Event], occurred_at: dt.datetime = T0, **fields: Any) -> Event:
    return constructor(cls)("e-1", "tests", occurred_at, "c-0", "k-1", fields)


def _fields(name: str) -> dict[str, Any]:
    event = sample_event(name)
    return {field: getattr(event, field) for field in event.model_fields_set - {"envelope"}}


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_type_builds_the_validated_event(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cls, fields = EVENT_TYPES[name], _fields(name)
    validated = _validated(cls, T0, **fields)
    if constructor(cls).__name__ == "construct":  # and it takes no validating path
        monkeypatch.setattr(Envelope, "build", None)
        monkeypatch.setattr(cls, "__pydantic_validator__", None)
    built = _built(cls, **fields)
    assert built == validated
    assert built.__pydantic_fields_set__ == validated.__pydantic_fields_set__
    assert built.envelope.__pydantic_fields_set__ == validated.envelope.__pydantic_fields_set__
    assert built.model_dump_json() == validated.model_dump_json()
    assert serde.encode(built) == serde.encode(validated)
    for field, value in fields.items():  # lists and dicts copied, as validation copies them
        if isinstance(value, list | dict):
            assert getattr(built, field) is not value


def test_the_live_outputs_skip_validation() -> None:
    for cls in ("TaskCreated", "TaskAssigned", "ConsensusUpdated", "AdjudicationRequested"):
        assert constructor(EVENT_TYPES[cls]).__name__ == "construct", cls
    # A type with a model validator is always validated.
    assert constructor(EVENT_TYPES["AnnotatorRegistered"]).__name__ == "validated"


def _assignment(**changes: Any) -> dict[str, Any]:
    fields = _fields("TaskAssigned")
    fields.update(changes)
    return fields


class _Str(str):
    pass


@pytest.mark.parametrize(
    "changes",
    [
        {"cost_usd": 1},  # an int for a float: validation makes it 1.0
        {"text": _Str("a str subclass")},  # validation makes it a str
        {"questions": [_Str("q1")]},
        {"context": ()},  # a tuple for a list
        {"method_params": None},  # not a field of it: refused below
    ],
)
def test_a_value_not_already_typed_is_validated(changes: dict[str, Any]) -> None:
    fields = _assignment(**changes)
    if "method_params" in changes:
        with pytest.raises(ValidationError):
            _built(TaskAssigned, **fields)
        return
    built = _built(TaskAssigned, **fields)
    assert built == _validated(TaskAssigned, T0, **fields)
    assert type(built.cost_usd) is float  # type: ignore[attr-defined]
    assert type(built.text) is str  # type: ignore[attr-defined]
    assert {type(q) for q in built.questions} == {str}  # type: ignore[attr-defined]
    assert type(built.context) is list  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "changes",
    [{"cost_usd": -0.5}, {"pool": "everyone"}, {"questions": [1]}, {"annotator_id": None}],
)
def test_a_value_out_of_its_field_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _built(TaskAssigned, **_assignment(**changes))


def test_a_missing_field_is_refused_and_a_default_filled() -> None:
    fields = _assignment()
    del fields["text"]
    with pytest.raises(ValidationError):
        _built(TaskAssigned, **fields)
    fields = _fields("ConsensusUpdated")
    fields.pop("method_params", None), fields.pop("annotator_ids", None)
    built = _built(ConsensusUpdated, **fields)
    assert built == _validated(ConsensusUpdated, T0, **fields)
    assert built.method_params == {} and built.annotator_ids == []  # type: ignore[attr-defined]
    assert "method_params" not in built.__pydantic_fields_set__
    assert built.method_params is not ConsensusUpdated.model_fields["method_params"].default  # type: ignore[attr-defined]


def test_an_event_time_not_in_utc_milliseconds_is_normalised() -> None:
    paris = dt.datetime(2024, 8, 15, 12, 23, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    built = _built(TaskAssigned, paris, **_assignment())
    assert built.envelope.occurred_at == dt.datetime(2024, 8, 15, 10, 23, 0, 123000, tzinfo=dt.UTC)
    assert built.envelope.occurred_at.tzinfo is dt.UTC
    assert built == _validated(TaskAssigned, paris, **_assignment())
    with pytest.raises(ValidationError):
        _built(TaskAssigned, dt.datetime(2024, 8, 15, 10, 23), **_assignment())  # naive


def test_the_bounds_of_an_optional_field_hold_for_a_value_not_for_none() -> None:
    fields = _fields("TaskCreated")
    for confidence in (None, 0.0, 0.8, 1.0):
        fields["prelabel_confidence"] = confidence
        built = _built(EVENT_TYPES["TaskCreated"], **fields)
        assert built.prelabel_confidence == confidence  # type: ignore[attr-defined]
    for confidence in (-0.1, 1.5):
        fields["prelabel_confidence"] = confidence
        with pytest.raises(ValidationError):
            _built(EVENT_TYPES["TaskCreated"], **fields)
