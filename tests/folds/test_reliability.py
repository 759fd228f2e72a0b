"""ReliabilityFold: Beta updates from gold results, adjudication feedback, event-time DS refits."""

from __future__ import annotations

import datetime as dt

import pytest

from labeltrail.events import LogPosition
from labeltrail.events.base import Event
from labeltrail.events.models import (
    AdjudicationRecorded,
    AnnotatorReliabilityUpdated,
    HoneypotScored,
    VoteCast,
)
from labeltrail.folds.base import Output
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold, boundary_after
from labeltrail.ontology import moderation_schema_v3

POS = LogPosition(topic="x", partition=0, offset=0)
T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)  # a Monday


def vote(cid: str, annotator: str, label: str, at: dt.datetime = T0) -> VoteCast:
    return VoteCast.create(
        producer="t",
        id_parts=("v", cid, annotator, label),
        occurred_at=at,
        vote_id=f"v-{cid}-{annotator}",
        task_id=f"t-{cid}",
        comment_id=cid,
        annotator_id=annotator,
        schema_version="v3",
        label=label,
        time_spent_ms=1000,
    )


def verdict(cid: str, label: str, at: dt.datetime, request: str = "r-1") -> AdjudicationRecorded:
    return AdjudicationRecorded.create(
        producer="t",
        id_parts=("a", cid, request),
        occurred_at=at,
        adjudication_id=f"adj-{cid}-{request}",
        request_id=request,
        task_id=f"x-{cid}",
        comment_id=cid,
        schema_version="v3",
        reviewer_id="e-04",
        label=label,
        confidence=0.95,
    )


def honeypot(annotator: str, correct: bool, i: int, source: str = "honeypot") -> HoneypotScored:
    return HoneypotScored.create(
        producer="consensus",
        id_parts=("hp", annotator, i, source),
        occurred_at=T0 + dt.timedelta(minutes=i),
        annotator_id=annotator,
        task_id=f"hp-{i}",
        vote_id=f"hv-{annotator}-{i}",
        comment_id=f"g-{i}",
        schema_version="v3",
        source=source,
        expected_label="harassment",
        given_label="harassment" if correct else "non-toxic",
        correct=correct,
    )


def run(fold: ReliabilityFold, events: list[Event]) -> list[Output]:
    out: list[Output] = []
    for event in events:
        out += fold.apply(event, POS)
    return out


def updates(out: list[Output], method: str) -> list[AnnotatorReliabilityUpdated]:
    return [o for o in out if isinstance(o, AnnotatorReliabilityUpdated) and o.method == method]


@pytest.mark.parametrize(
    ("results", "means", "previous_last"),
    [
        ([True], [2 / 3], 0.5),  # Beta(1,1) prior: the first result replaces the prior mean
        ([True, False], [2 / 3, 1 / 2], 2 / 3),
        ([False, False, False], [1 / 3, 1 / 4, 1 / 5], 1 / 4),
    ],
)
def test_gold_results_update_a_beta_posterior(
    results: list[bool], means: list[float], previous_last: float
) -> None:
    out = run(ReliabilityFold(), [honeypot("a47", ok, i) for i, ok in enumerate(results)])
    ups = updates(out, "beta_gold")
    assert [u.accuracy for u in ups] == pytest.approx(means)
    assert ups[0].previous_accuracy is None
    if len(ups) > 1:
        assert ups[-1].previous_accuracy == pytest.approx(previous_last)
    assert ups[-1].n_observations == len(results)
    assert all(u.accuracy_lower <= u.accuracy <= u.accuracy_upper for u in ups)
    # Event time of the result that caused each update, never the wall clock.
    times = [T0 + dt.timedelta(minutes=i) for i in range(len(results))]
    assert [u.envelope.occurred_at for u in ups] == times


def test_own_adjudication_results_and_reliability_events_are_not_folded_twice() -> None:
    fold = ReliabilityFold()
    out = run(fold, [honeypot("a1", True, 0, source="adjudication")])
    assert out == []
    assert fold.beta == {}


ITEM_VOTES = [("a47", "non-toxic"), ("b12", "harassment"), ("c89", "non-toxic")]


@pytest.mark.parametrize("verdict_first", [False, True])
def test_an_expert_verdict_scores_each_crowd_vote(verdict_first: bool) -> None:
    votes: list[Event] = [vote("c-1f8a", a, label) for a, label in ITEM_VOTES]
    adj = verdict("c-1f8a", "harassment", T0 + dt.timedelta(hours=19))
    events = [adj, *votes] if verdict_first else [*votes, adj]
    out = run(ReliabilityFold(), events)
    scored = {o.annotator_id: o for o in out if isinstance(o, HoneypotScored)}
    assert {a: s.correct for a, s in scored.items()} == {"a47": False, "b12": True, "c89": False}
    assert {s.source for s in scored.values()} == {"adjudication"}
    assert {s.envelope.occurred_at for s in scored.values()} == {adj.envelope.occurred_at}
    moved = updates(out, "beta_gold")
    assert {u.annotator_id: round(u.accuracy, 3) for u in moved} == {
        "a47": 0.333,
        "b12": 0.667,
        "c89": 0.333,
    }
    # The same pairs give the same ids whichever topic was read first.
    ids = sorted(o.event_id for o in out if isinstance(o, Event))
    again = run(ReliabilityFold(), [*votes, adj])
    assert ids == sorted(o.event_id for o in again if isinstance(o, Event))


def test_gold_set_verdicts_are_not_scored_as_feedback() -> None:
    out = run(
        ReliabilityFold(),
        [vote("g-1", "a1", "mild"), verdict("g-1", "mild", T0, request="gold:7")],
    )
    assert out == []


def test_the_same_verdict_twice_is_scored_once() -> None:
    adj = verdict("c-1", "mild", T0 + dt.timedelta(hours=1))
    out = run(ReliabilityFold(), [vote("c-1", "a1", "mild"), adj, adj])
    assert len([o for o in out if isinstance(o, HoneypotScored)]) == 1


@pytest.mark.parametrize(
    ("t", "every", "expected"),
    [
        (T0, dt.timedelta(days=7), dt.datetime(2024, 9, 9, tzinfo=dt.UTC)),
        (T0 + dt.timedelta(days=7), dt.timedelta(days=7), dt.datetime(2024, 9, 16, tzinfo=dt.UTC)),
        (T0, dt.timedelta(days=1), dt.datetime(2024, 9, 3, tzinfo=dt.UTC)),
    ],
)
def test_refit_boundaries_are_aligned_to_mondays(
    t: dt.datetime, every: dt.timedelta, expected: dt.datetime
) -> None:
    assert boundary_after(t, every) == expected


def week_of_votes(week: int, a47_right: bool) -> list[Event]:
    """20 items, 3 annotators; b12 and c89 are right; a47 is right only when told so."""
    events: list[Event] = []
    start = T0 + dt.timedelta(days=7 * week)
    classes = ["non-toxic", "harassment", "mild", "hate"]
    for i in range(20):
        cid = f"w{week}-{i:02d}"
        truth = classes[i % 4]
        at = start + dt.timedelta(hours=i)
        wrong = "non-toxic" if truth != "non-toxic" else "mild"
        events.append(vote(cid, "a47", truth if (a47_right or i % 2) else wrong, at))
        events.append(vote(cid, "b12", truth, at + dt.timedelta(minutes=5)))
        events.append(vote(cid, "c89", truth, at + dt.timedelta(minutes=9)))
    return events


def test_dawid_skene_refits_weekly_in_event_time() -> None:
    fold = ReliabilityFold(ReliabilityConfig(min_votes=5))
    out = run(fold, [moderation_schema_v3(), *week_of_votes(0, a47_right=True)])
    assert updates(out, "dawid_skene") == []  # event time has not passed Monday 9 + 1 day
    out = run(fold, week_of_votes(1, a47_right=False))
    first = {u.annotator_id: u for u in updates(out, "dawid_skene")}
    assert set(first) == {"a47", "b12", "c89"}
    u = first["a47"]
    assert (u.window_start, u.window_end) == (
        dt.datetime(2024, 9, 2, tzinfo=dt.UTC),
        dt.datetime(2024, 9, 9, tzinfo=dt.UTC),
    )
    assert u.previous_accuracy is None and u.n_observations == 20
    assert len(u.confusion) == len(u.classes) == 5
    assert all(sum(row) == pytest.approx(1.0, abs=1e-4) for row in u.confusion)
    # The refit ran when an input passed the boundary plus the lateness: that input's time.
    assert u.envelope.occurred_at >= dt.datetime(2024, 9, 10, tzinfo=dt.UTC)
    # Week two (a47 wrong on half its items) is refitted once week three's votes arrive.
    out = run(fold, week_of_votes(2, a47_right=True))
    second = {u.annotator_id: u for u in updates(out, "dawid_skene")}
    step = second["a47"]
    assert step.previous_accuracy == pytest.approx(first["a47"].accuracy)
    assert step.accuracy < first["a47"].accuracy - 0.2
    assert second["b12"].accuracy > 0.85


def test_gold_is_held_fixed_in_the_refit() -> None:
    """Two annotators always disagree: only gold can tell DS which one is right."""
    events: list[Event] = [moderation_schema_v3()]
    for i in range(12):
        at = T0 + dt.timedelta(hours=i)
        events += [vote(f"c{i}", "right", "hate", at), vote(f"c{i}", "wrong", "mild", at)]
        if i < 4:
            events.append(verdict(f"c{i}", "hate", at + dt.timedelta(hours=1)))
    cfg = ReliabilityConfig(min_votes=5, refit_on_drain=True)

    def refit(with_gold: bool) -> dict[str, float]:
        fold = ReliabilityFold(cfg)
        run(fold, [e for e in events if with_gold or not isinstance(e, AdjudicationRecorded)])
        ds = {u.annotator_id: u.accuracy for u in updates(fold.drain(), "dawid_skene")}
        assert fold.drain() == []  # the pending refit runs once
        return ds

    blind, held = refit(False), refit(True)
    # Without gold the tie rule sides with "mild" (first in class order), so "wrong" looks right.
    assert blind["wrong"] - blind["right"] > 0.5
    assert held["right"] - held["wrong"] > 0.3  # the 8 items without gold stay a coin toss


def test_same_input_same_output() -> None:
    events = [moderation_schema_v3(), *week_of_votes(0, True)]
    events.append(verdict("w0-01", "harassment", T0 + dt.timedelta(days=1)))
    events += [*week_of_votes(1, False), *week_of_votes(2, True)]
    a, b = run(ReliabilityFold(), events), run(ReliabilityFold(), events)
    assert len(a) == 12  # 3 results + 3 Beta updates, two refits of 3 annotators
    assert [comparable(o) for o in a] == [comparable(o) for o in b]


def comparable(out: Output) -> object:
    """An output without its recorded_at (the time it was written, not a fact)."""
    if isinstance(out, Event):
        dump = out.model_dump()
        del dump["envelope"]["recorded_at"]
        return dump
    return out
