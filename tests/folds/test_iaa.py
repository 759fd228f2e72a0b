"""IaaFold: event-time windows, watermark, late events, blind spots; and the article's story."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

import pytest

from labeltrail.events import LogPosition
from labeltrail.events.base import Event
from labeltrail.events.models import (
    AnnotatorReliabilityUpdated,
    CommentPosted,
    HoneypotScored,
    IaaWindowClosed,
    VoteCast,
)
from labeltrail.folds.base import Output, Rejected
from labeltrail.folds.iaa import (
    IaaConfig,
    IaaFold,
    Kind,
    SliceFigures,
    alpha_nominal,
    holm,
    pairwise_agreement,
    window_start,
)
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory

POS = LogPosition(topic="x", partition=0, offset=0)
T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)  # a Monday
DAY = dt.timedelta(days=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def comment(cid: str, slice_: str) -> CommentPosted:
    return CommentPosted.create(
        producer="t",
        id_parts=("c", cid),
        occurred_at=T0 - DAY,
        comment_id=cid,
        video_id="v-1",
        author_hash="h",
        text="x",
        posted_at=T0 - DAY,
        source="pool",
        attributes={"slice": slice_},
    )


def vote(cid: str, annotator: str, label: str, at: dt.datetime) -> VoteCast:
    return VoteCast.create(
        producer="t",
        id_parts=("v", cid, annotator),
        occurred_at=at,
        vote_id=f"v-{cid}-{annotator}",
        task_id=f"t-{cid}",
        comment_id=cid,
        annotator_id=annotator,
        schema_version="v3",
        label=label,
        answers={"q4_needs_context": "no"},
        time_spent_ms=1000,
    )


def scored(v: VoteCast, expected: str, at: dt.datetime) -> HoneypotScored:
    return HoneypotScored.create(
        producer="reliability",
        id_parts=("s", v.vote_id),
        occurred_at=at,
        annotator_id=v.annotator_id,
        task_id=v.task_id,
        vote_id=v.vote_id,
        comment_id=v.comment_id,
        schema_version="v3",
        source="adjudication",
        expected_label=expected,
        given_label=v.label,
        correct=v.label == expected,
    )


def run(fold: IaaFold, events: list[Event]) -> list[Output]:
    out: list[Output] = []
    for event in events:
        out += fold.apply(event, POS)
    return out


def closed(out: Sequence[Output], **match: object) -> list[IaaWindowClosed]:
    return [
        o
        for o in out
        if isinstance(o, IaaWindowClosed) and all(getattr(o, k) == v for k, v in match.items())
    ]


@pytest.mark.parametrize(
    ("kind", "t", "start"),
    [
        ("day", utc(2024, 9, 2, 23, 59), utc(2024, 9, 2)),
        ("day", utc(2024, 9, 3), utc(2024, 9, 3)),
        ("week", utc(2024, 9, 2, 8), utc(2024, 9, 2)),  # Monday
        ("week", utc(2024, 9, 8, 23, 59), utc(2024, 9, 2)),  # Sunday
        ("week", utc(2024, 9, 9), utc(2024, 9, 9)),
    ],
)
def test_windows_are_utc_days_and_monday_weeks(
    kind: Kind, t: dt.datetime, start: dt.datetime
) -> None:
    assert window_start(kind, t) == start


@pytest.mark.parametrize(
    ("units", "alpha", "pairwise"),
    [
        ([["a", "a"], ["b", "b"]], 1.0, [1.0, 1.0]),
        ([["a", "b"], ["b", "a"]], -0.5, [0.0, 0.0]),
        ([["a", "a", "b"], ["b", "b", "b"], ["a"]], 0.375, [1 / 3, 1.0]),
        ([["a", "a"], ["a", "a"]], 1.0, [1.0, 1.0]),  # one value only: the core's convention
        ([["a"]], None, []),
    ],
)
def test_alpha_and_pairwise_agreement(
    units: list[list[str]], alpha: float | None, pairwise: list[float]
) -> None:
    got = alpha_nominal(units)
    assert got == (None if alpha is None else pytest.approx(alpha, abs=0.01))
    assert [pairwise_agreement(u) for u in units if len(u) > 1] == pytest.approx(pairwise)


@pytest.mark.parametrize(
    ("p", "adjusted"),
    [
        ({"a": 0.01, "b": 0.04, "c": 0.03}, {"a": 0.03, "b": 0.06, "c": 0.06}),
        ({"a": 0.5}, {"a": 0.5}),
        ({}, {}),
    ],
)
def test_holm(p: dict[str, float], adjusted: dict[str, float]) -> None:
    assert holm(p) == pytest.approx(adjusted)


def fig(s: str, pairwise: float, n_gold: int, correct: int) -> SliceFigures:
    return SliceFigures(s, n_gold, None, pairwise, n_gold, correct, n_gold)


@pytest.mark.parametrize(
    ("rows", "flagged"),
    [
        # agree, wrong on gold, enough gold: the article's blind spot
        ([fig("coded", 0.9, 30, 6), fig("benign", 0.8, 200, 170)], {"coded"}),
        # same accuracy, but too few gold votes to test: quiet
        ([fig("coded", 0.9, 6, 1), fig("benign", 0.8, 200, 170)], set()),
        # wrong but they disagree: noise, not a shared blind spot
        ([fig("coded", 0.4, 30, 6), fig("benign", 0.8, 200, 170)], set()),
        # as accurate as the rest
        ([fig("coded", 0.9, 30, 26), fig("benign", 0.8, 200, 170)], set()),
        # 0.75 pairwise is not high agreement on that metric's own scale (>= 0.8): quiet
        ([fig("coded", 0.75, 30, 6), fig("benign", 0.8, 200, 170)], set()),
    ],
)
def test_blind_spot_rule(rows: list[SliceFigures], flagged: set[str]) -> None:
    assert IaaFold().blind_spots(rows) == flagged


def day_of_votes(day: int) -> list[Event]:
    at = T0 + day * DAY
    return [
        vote(f"c{day}-{i}", a, "mild", at + dt.timedelta(minutes=i))
        for i in range(3)
        for a in "xyz"
    ]


def test_a_window_closes_when_the_watermark_passes_its_end() -> None:
    fold = IaaFold()
    out = run(fold, [comment("c0-0", "benign"), *day_of_votes(0)])
    assert closed(out) == []
    # Day 1 at 08:00 minus one day of lateness: not yet past the end of day 0.
    assert closed(run(fold, day_of_votes(1))) == []
    cause = vote("c-late", "x", "mild", utc(2024, 9, 4, 0, 1))
    out = run(fold, [cause])
    day0 = closed(out, window="day", window_start=utc(2024, 9, 2))
    assert {(e.slice, e.metric) for e in day0} >= {
        ("benign", "krippendorff_alpha_nominal"),
        ("unknown", "pairwise_agreement"),
        ("all", "pairwise_agreement"),
    }
    assert {e.question for e in day0} == {"label", "q4_needs_context"}
    every = closed(day0, slice="all", question="label", metric="pairwise_agreement")[0]
    assert (every.n_items, every.agreement, every.gold_accuracy) == (3, 1.0, None)
    assert {e.envelope.occurred_at for e in day0} == {cause.envelope.occurred_at}
    assert closed(out, window="week") == []


def test_late_events_are_counted_and_rejected_policy() -> None:
    fold = IaaFold()
    run(fold, [*day_of_votes(0), vote("c-x", "x", "mild", utc(2024, 9, 4, 1))])
    # 23 hours behind the latest event: within the lateness, its window is open.
    assert run(fold, [vote("c-ok", "y", "mild", utc(2024, 9, 3, 2))]) == []
    # Day 0 is closed; the week is not: counted there, rejected for the day.
    out = run(fold, [vote("c-late", "y", "mild", utc(2024, 9, 2, 9))])
    assert len(out) == 1 and isinstance(out[0], Rejected)
    assert out[0].reason.startswith("late: VoteCast") and "day 2024-09-02" in out[0].reason
    assert fold.late == 1
    week = closed(fold.drain(), window="week", slice="all", metric="pairwise_agreement")
    assert week[0].n_items == 3 + 1 + 1 + 1
    assert fold.drain() == []


@pytest.mark.parametrize("results_first", [False, True])
def test_gold_results_count_in_the_window_of_the_vote_they_score(results_first: bool) -> None:
    fold = IaaFold(IaaConfig(min_gold=1))
    votes = [vote(f"c{i}", a, "non-toxic", T0) for i in range(4) for a in "xyz"]
    expert = T0 + dt.timedelta(hours=19)  # the next day
    results = [scored(v, "harassment", expert) for v in votes]
    events: list[Event] = [comment(f"c{i}", "coded") for i in range(4)]
    # A result read before its vote (another topic) waits for the vote.
    events += [*results, *votes] if results_first else [*votes, *results]
    out = run(fold, events) + fold.drain()
    day = closed(out, window="day", slice="coded", question="label", metric="pairwise_agreement")
    assert [(e.window_start, e.gold_accuracy, e.n_gold_items) for e in day] == [
        (utc(2024, 9, 2), 0.0, 4)
    ]


# the article's story ---------------------------------------------------------------------

STORY_SIZE = 1000
"""At 500 comments the coded slice has 5 adjudicated items (15 gold votes at 0.33): not
significant, correctly quiet. At 1000 it has about 9 (27 gold votes), enough to alert."""


Story = tuple[dict[str, list[Event]], IaaFold]


@pytest.fixture(scope="module")
def story() -> Story:
    iaa = IaaFold()
    replay = run_in_memory(
        Platform(PlatformConfig.sized(STORY_SIZE)),
        [ReliabilityFold(ReliabilityConfig(refit_on_drain=True)), iaa],
    )
    return replay.log, iaa


def test_story_agreement_is_not_correctness(story: Story) -> None:
    log, iaa = story
    windows = [e for e in log["iaa"] if isinstance(e, IaaWindowClosed) and e.question == "label"]
    pair = {
        (e.window, e.slice): e for e in windows if e.metric == "pairwise_agreement" and e.n_items
    }
    for kind in ("day", "week"):
        coded = pair[(kind, "coded_harassment")]
        assert coded.blind_spot
        assert coded.agreement is not None and coded.agreement >= 0.8
        # The alert is decided on pairwise agreement; the slice's alpha row does not carry it.
        alpha = [
            e
            for e in windows
            if (e.window, e.slice, e.metric)
            == (kind, "coded_harassment", "krippendorff_alpha_nominal")
        ]
        assert alpha and not any(e.blind_spot for e in alpha)
        assert coded.gold_accuracy is not None and coded.gold_accuracy < 0.3
        for other in ("benign", "explicit"):
            row = pair[(kind, other)]
            assert not row.blind_spot
            assert row.gold_accuracy is not None and row.gold_accuracy > 0.5
    assert iaa.late == 0 and not iaa.open


def test_story_reliability_moves_after_adjudications(story: Story) -> None:
    log, _ = story
    quality = log["quality"]
    feedback = [e for e in quality if isinstance(e, HoneypotScored) and e.source == "adjudication"]
    assert feedback and all(e.annotator_id.startswith("annotator_") for e in feedback)
    moves = [
        e
        for e in quality
        if isinstance(e, AnnotatorReliabilityUpdated)
        and e.previous_accuracy is not None
        and e.previous_accuracy != e.accuracy
    ]
    assert Counter(e.method for e in moves)["beta_gold"] > 100
    ds = [
        e
        for e in quality
        if isinstance(e, AnnotatorReliabilityUpdated) and e.method == "dawid_skene"
    ]
    assert len({e.annotator_id for e in ds}) >= 25
