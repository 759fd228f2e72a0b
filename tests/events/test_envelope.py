"""``Envelope.build`` skips validation only where the arguments already have the right types."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from labeltrail.events import VoteCast, base
from labeltrail.events.base import Envelope, LogPosition, to_utc_millis

PARIS = dt.timezone(dt.timedelta(hours=2))


def _args(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "event_id": "e-1",
        "event_type": "VoteCast",
        "occurred_at": dt.datetime(2024, 8, 15, 12, 23, 0, 123456, tzinfo=PARIS),
        "recorded_at": dt.datetime(2024, 8, 15, 10, 23, 1, 999999, tzinfo=dt.UTC),
        "producer": "annotate",
        "causation_id": "c-9",
        "correlation_id": None,
    }
    args.update(changes)
    return args


def test_build_equals_the_validated_envelope() -> None:
    fast, slow = Envelope.build(**_args()), Envelope(**_args())
    assert fast == slow
    assert fast.occurred_at == dt.datetime(2024, 8, 15, 10, 23, 0, 123000, tzinfo=dt.UTC)
    assert fast.occurred_at.tzinfo == dt.UTC
    assert fast.recorded_at.microsecond == 999000
    assert fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_copy(update={"producer": "x"}).producer == "x"
    assert fast.producer == "annotate"


@pytest.mark.parametrize(
    "bad",
    [
        {"occurred_at": dt.datetime(2024, 8, 15, 10, 23)},  # naive
        {"recorded_at": dt.datetime(2024, 8, 15, 10, 23)},
        {"producer": 7},
        {"event_id": None},
        {"causation_id": 3},
        {"occurred_at": "yesterday"},
    ],
)
def test_build_validates_what_is_not_already_typed(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Envelope.build(**_args(**bad))


def test_build_accepts_what_validation_would_coerce() -> None:
    iso = Envelope.build(**_args(occurred_at="2024-08-15T10:23:00.5+00:00"))
    assert iso.occurred_at == dt.datetime(2024, 8, 15, 10, 23, 0, 500000, tzinfo=dt.UTC)


def test_create_still_rejects_a_naive_time_and_a_bad_body() -> None:
    fields: dict[str, Any] = {
        "vote_id": "v",
        "task_id": "t",
        "comment_id": "c",
        "annotator_id": "a",
        "schema_version": "v3",
        "label": "mild",
        "time_spent_ms": 1,
    }
    with pytest.raises(ValidationError, match="timezone"):
        VoteCast.create(producer="t", occurred_at=dt.datetime(2024, 1, 1), **fields)
    with pytest.raises(ValidationError, match="confidence"):
        VoteCast.create(producer="t", **{**fields, "confidence": 3.0})


def test_log_position_at_equals_the_validated_one() -> None:
    fast, slow = (
        LogPosition.at("labeltrail.votes", 3, 1234),
        LogPosition(topic="labeltrail.votes", partition=3, offset=1234),
    )
    assert fast == slow
    assert fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
    assert fast.model_dump() == slow.model_dump()
    with pytest.raises(ValidationError):
        LogPosition.at("t", "three", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 9, 2, 10, 0, 0, 123000, tzinfo=dt.UTC),  # already UTC millis
        dt.datetime(2024, 9, 2, 10, 0, 0, 123456, tzinfo=dt.UTC),
        dt.datetime(2024, 9, 2, 12, 0, 0, 123000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2024, 9, 2, 12, 0, 0, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_to_utc_millis_is_utc_truncated_to_milliseconds(value: dt.datetime) -> None:
    normalised = to_utc_millis(value)
    expected = value.astimezone(dt.UTC)
    expected = expected.replace(microsecond=expected.microsecond // 1000 * 1000)
    assert normalised == expected
    assert normalised.tzinfo is dt.UTC
    assert normalised.microsecond == expected.microsecond


def test_utc_now_is_the_system_clock_in_utc_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    before = to_utc_millis(dt.datetime.now(dt.UTC))
    now = base.utc_now()
    after = to_utc_millis(dt.datetime.now(dt.UTC))
    assert before <= now <= after
    assert now.tzinfo is dt.UTC
    assert now.microsecond % 1000 == 0
    # It reads time.time_ns, and gives the very same datetime while the millisecond lasts.
    ns = 1_725_271_200_123_456_789
    monkeypatch.setattr(base.time, "time_ns", lambda: ns)
    first = base.utc_now()
    assert first == dt.datetime(2024, 9, 2, 10, 0, 0, 123000, tzinfo=dt.UTC)
    assert base.utc_now() is first
    ns += 1_000_000
    assert base.utc_now() == dt.datetime(2024, 9, 2, 10, 0, 0, 124000, tzinfo=dt.UTC)
