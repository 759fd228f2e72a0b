"""RecordHandler given the event itself (the fused runner's in-memory handover): no decode, the
same checks and counts as for the record's bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.serde import encode
from labeltrail.folds.base import Output
from labeltrail.kafka import records
from labeltrail.kafka.records import RecordHandler, StageStats
from tests.events.samples import sample_event

PREFIX = "p"


@dataclass
class _Msg:
    _topic: str
    _value: bytes

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value


@dataclass
class _Fold:
    name: str = "consensus"
    inputs: tuple[str, ...] = ("votes",)
    accepts: frozenset[str] = frozenset({"VoteCast"})
    seen: list[tuple[Event, LogPosition]] = field(default_factory=list)

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        self.seen.append((event, position))
        return []


@dataclass
class _Outbox:
    sent: list[Event] = field(default_factory=list)

    def topic_of(self, event: Event) -> str:
        return f"{PREFIX}.deadletter"

    def send(self, event: Event) -> None:
        self.sent.append(event)

    def send_all(self, events: list[Event]) -> None:
        self.sent.extend(events)


def _no_decode(data: bytes) -> Event:
    raise AssertionError("decoded a record whose event was handed over")


def test_a_handed_over_event_is_applied_as_it_is_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(records, "decode", _no_decode)
    monkeypatch.setattr(records, "event_type_of", _no_decode)
    fold, outbox, stats = _Fold(), _Outbox(), StageStats()
    handler = RecordHandler(fold, PREFIX, stats, outbox)
    vote = sample_event("VoteCast")
    handler.live(_Msg(f"{PREFIX}.votes", encode(vote)), f"{PREFIX}.votes", 0, 7, vote)
    assert fold.seen == [(vote, LogPosition.at(f"{PREFIX}.votes", 0, 7))]
    assert fold.seen[0][0] is vote
    assert (stats.consumed, stats.processed, stats.rejected) == (1, 1, 0)


def test_a_handed_over_event_is_skipped_and_dead_lettered_as_its_bytes_would_be(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(records, "decode", _no_decode)
    fold, outbox, stats = _Fold(), _Outbox(), StageStats()
    handler = RecordHandler(fold, PREFIX, stats, outbox)
    # A type the fold does not take: skipped, not applied.
    task = sample_event("TaskCreated")
    handler.live(_Msg(f"{PREFIX}.tasks", encode(task)), f"{PREFIX}.tasks", 0, 1, task)
    assert (stats.skipped, stats.processed, fold.seen) == (1, 1, [])
    # A type that does not belong on the topic: dead-lettered as wrong_topic.
    comment = sample_event("CommentPosted")
    handler.live(_Msg(f"{PREFIX}.votes", encode(comment)), f"{PREFIX}.votes", 0, 2, comment)
    assert stats.reasons == {"wrong_topic": 1}
    assert [type(e).__name__ for e in outbox.sent] == ["DeadLettered"]
