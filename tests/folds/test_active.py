"""The active learning fold's rules, in memory: strategies, diversity, triggers, the budget,
what leaves the pool, bad scores, and that a replay picks the same batches with the same ids.

tests/kafka/test_active.py drives the registered stage on the broker, then tasking and the
projector, and reads the audit trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import pytest

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import (
    AnnotatorRegistered,
    CommentPosted,
    CommentScored,
    LabelCommitted,
    LabelSchemaPublished,
    TaskCreated,
    TaskRequested,
)
from labeltrail.folds.active import ActiveConfig, ActiveFold
from labeltrail.folds.base import Output, Rejected
from labeltrail.folds.tasking import TaskingConfig, TaskingFold

AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
CLASSES = ["ok", "mild", "toxic"]
POS = LogPosition(topic="t.x", partition=0, offset=0)

# Three comments whose uncertainty the strategies rank differently (no diversity):
# least confidence and entropy put "flat" first, margin puts "tied" first; "sure" is last.
PROBS = {
    "tied": [0.4, 0.4, 0.2],  # 1 - max 0.60, margin 1.00, entropy 1.05
    "flat": [0.35, 0.33, 0.32],  # 1 - max 0.65, margin 0.98, entropy 1.10
    "sure": [0.9, 0.05, 0.05],
}


def schema(at: dt.datetime = AT) -> LabelSchemaPublished:
    return LabelSchemaPublished.create(
        producer="test",
        id_parts=("v1",),
        occurred_at=at,
        version="v1",
        classes=CLASSES,
        questions=[],
        guideline_hash="sha256:00",
    )


def comment(cid: str, text: str | None = None, at: dt.datetime = AT) -> CommentPosted:
    return CommentPosted.create(
        producer="test",
        id_parts=(cid,),
        occurred_at=at,
        comment_id=cid,
        video_id="v",
        author_hash="h",
        text=text or f"a comment about topic {cid} with words of its own {cid * 3}",
        posted_at=at,
        source="pool",
    )


def scored(
    cid: str,
    probs: Sequence[float],
    model: str = "m1",
    *,
    route: str = "none",
    classes: Sequence[str] = CLASSES,
    at: dt.datetime = AT,
) -> CommentScored:
    top = sorted(probs, reverse=True)
    return CommentScored.create(
        producer="test",
        id_parts=(cid, model),
        occurred_at=at,
        comment_id=cid,
        model_version=model,
        classes=list(classes),
        probabilities=list(probs),
        margin=min(1.0, max(0.0, round(top[0] - top[1], 6))),
        route=route,
        threshold=0.1,
    )


def crowd_member(who: str) -> AnnotatorRegistered:
    return AnnotatorRegistered.create(
        producer="test",
        id_parts=(who,),
        occurred_at=AT,
        annotator_id=who,
        pool="crowd",
        locale="en",
        languages=["en"],
    )


def label(cid: str, at: dt.datetime = AT) -> LabelCommitted:
    return LabelCommitted.create(
        producer="test",
        id_parts=(cid,),
        occurred_at=at,
        label_id=f"l-{cid}",
        comment_id=cid,
        schema_version="v1",
        label="ok",
        classes=CLASSES,
        distribution=[1.0, 0.0, 0.0],
        confidence=1.0,
        route="consensus",
        method="mv",
        vote_ids=[],
        annotator_ids=[],
    )


def pool(probs: dict[str, list[float]] = PROBS) -> list[Event]:
    """The schema, then each comment posted and scored by m1."""
    events: list[Event] = [schema()]
    for cid, p in probs.items():
        events += [comment(cid), scored(cid, p)]
    return events


def feed(fold: ActiveFold, events: Iterable[Event]) -> list[Output]:
    out: list[Output] = []
    for event in events:
        out += fold.apply(event, POS)
    return out


def requests(out: Iterable[Output]) -> list[TaskRequested]:
    return [o for o in out if isinstance(o, TaskRequested)]


def on_labels(**config: object) -> ActiveFold:
    """A fold that picks a batch per label read (no time trigger, no diversity)."""
    fields: dict[str, object] = {"every_labels": 1, "every_minutes": 0, "diversity": 0.0}
    return ActiveFold(ActiveConfig(**(fields | config)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("strategy", "order"),
    [
        ("least_confidence", ["flat", "tied", "sure"]),
        ("margin", ["tied", "flat", "sure"]),
        ("entropy", ["flat", "tied", "sure"]),
    ],
)
def test_each_strategy_ranks_the_pool_its_own_way(strategy: str, order: list[str]) -> None:
    fold = on_labels(strategy=strategy, batch_size=3)
    out = requests(feed(fold, [*pool(), label("other")]))
    assert [r.comment_id for r in out] == order
    assert [r.rank for r in out] == [1, 2, 3]
    assert {r.strategy for r in out} == {strategy} and {r.reason for r in out} == {
        "active_learning"
    }
    assert out[0].score > out[1].score > out[2].score
    assert {r.batch_id for r in out} == {out[0].batch_id} and out[0].batch_size == 3
    assert out[0].trigger == "labels" and out[0].model_versions == ["m1"]


def test_qbc_picks_where_the_published_models_disagree() -> None:
    """Query by committee over every model that scored a comment: "split" (three models, three
    answers) before "agreed" (three models, one answer); "two" has only two models' scores."""
    events: list[Event] = [schema()]
    for cid in ("agreed", "split", "two"):
        events.append(comment(cid))
    sure = {0: [0.8, 0.1, 0.1], 1: [0.1, 0.8, 0.1], 2: [0.1, 0.1, 0.8]}
    for n, model in enumerate(("m1", "m2", "m3")):
        events.append(scored("agreed", [0.5, 0.3, 0.2], model))
        events.append(scored("split", sure[n], model))
        if n < 2:
            events.append(scored("two", sure[n], model))
    fold = on_labels(strategy="qbc", batch_size=3)
    assert fold.held_reason() is None
    feed(fold, events[:7])  # the schema, the comments and m1's scores
    assert fold.held_reason() == "3 pooled comment(s), none scored by 3 models yet (qbc)"
    out = requests(feed(fold, [*events[7:], label("other")]))
    assert [r.comment_id for r in out] == ["split", "agreed"]
    assert out[0].model_versions == ["m1", "m2", "m3"]
    assert out[0].score > 0.4 and out[1].score == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="committee"):
        ActiveConfig(strategy="qbc", committee=2)


def test_diversity_trades_a_near_duplicate_for_a_different_comment() -> None:
    """Two near-identical texts are the most uncertain; with diversity the batch of two takes
    one of them and the different comment, without it both duplicates."""
    events: list[Event] = [schema()]
    texts = {
        "dup-1": "you people are all the same and you know it",
        "dup-2": "you people are all the same and you know it!",
        "other": "the second half of the match was a complete disaster",
    }
    probs = {"dup-1": [0.34, 0.33, 0.33], "dup-2": [0.34, 0.33, 0.33], "other": [0.5, 0.3, 0.2]}
    for cid, text in texts.items():
        events += [comment(cid, text), scored(cid, probs[cid])]
    plain = requests(feed(on_labels(batch_size=2), [*events, label("x")]))
    assert sorted(r.comment_id for r in plain) == ["dup-1", "dup-2"]
    diverse = requests(feed(on_labels(batch_size=2, diversity=0.9), [*events, label("x")]))
    assert sorted(r.comment_id for r in diverse) == ["dup-1", "other"]
    assert {r.diversity for r in diverse} == {0.9}


def test_a_batch_comes_every_n_labels() -> None:
    fold = ActiveFold(ActiveConfig(every_labels=2, every_minutes=0, batch_size=1, diversity=0))
    assert requests(feed(fold, [*pool(), label("l1")])) == []
    first = requests(fold.apply(label("l2"), POS))
    assert [r.comment_id for r in first] == ["tied"]
    assert requests(fold.apply(label("l3"), POS)) == []  # the count starts again
    assert [r.comment_id for r in requests(fold.apply(label("l4"), POS))] == ["flat"]


def test_a_batch_comes_every_t_minutes_of_event_time() -> None:
    fold = ActiveFold(ActiveConfig(every_labels=0, every_minutes=30, batch_size=1, diversity=0))
    assert requests(feed(fold, pool())) == []
    assert requests(fold.apply(comment("late", at=AT + dt.timedelta(minutes=29)), POS)) == []
    out = requests(fold.apply(comment("later", at=AT + dt.timedelta(minutes=30)), POS))
    assert [(r.comment_id, r.trigger) for r in out] == [("tied", "time")]
    assert out[0].envelope.occurred_at == AT + dt.timedelta(minutes=30)
    # An event from the past moves no clock: the next batch is 30 minutes after this one.
    assert requests(fold.apply(label("old", at=AT), POS)) == []
    assert requests(fold.apply(comment("c", at=AT + dt.timedelta(minutes=59)), POS)) == []
    assert requests(fold.apply(comment("d", at=AT + dt.timedelta(minutes=60)), POS))


def test_the_daily_budget_caps_tasks_and_dollars_per_event_day() -> None:
    probs = {f"c{n}": [0.5 - n / 100, 0.3 + n / 100, 0.2] for n in range(10)}
    fold = on_labels(batch_size=2, tasks_per_day=3)
    picked = [len(requests(feed(fold, [*pool(probs), label("l1")])))]
    picked += [len(requests(fold.apply(label(f"l{n}"), POS))) for n in (2, 3)]
    assert picked == [2, 1, 0]
    assert fold.held_reason() == f"the budget of {AT.date().isoformat()} is spent"
    tomorrow = AT + dt.timedelta(days=1)
    assert len(requests(fold.apply(label("l4", at=tomorrow), POS))) == 2

    money = on_labels(batch_size=5, usd_per_day=0.25, cost_per_task_usd=0.12)
    out = requests(feed(money, [*pool(probs), label("l1")]))
    assert len(out) == 2 and {r.cost_usd for r in out} == {0.12}
    assert requests(money.apply(label("l2"), POS)) == []


def test_labelled_tasked_requested_and_annotate_routed_comments_leave_the_pool() -> None:
    probs = {cid: [0.4, 0.35, 0.25] for cid in ("labelled", "tasked", "asked", "routed", "free")}
    events = pool(probs)
    events.append(scored("routed", [0.4, 0.35, 0.25], "m2", route="annotate"))
    events.append(label("labelled"))
    task = TaskCreated.create(
        producer="test",
        id_parts=("t",),
        occurred_at=AT,
        task_id="t",
        comment_id="tasked",
        schema_version="v1",
        kind="crowd",
        reason="low_confidence",
        questions=[],
        redundancy=3,
    )
    elsewhere = on_labels(batch_size=1)
    asked = requests(
        feed(
            elsewhere, [schema(), comment("asked"), scored("asked", [0.4, 0.35, 0.25]), label("x")]
        )
    )
    assert [r.comment_id for r in asked] == ["asked"]
    fold = on_labels(batch_size=5, tasks_per_day=2, every_labels=2)
    out = requests(feed(fold, [*events, task, asked[0], asked[0], label("x")]))
    assert [r.comment_id for r in out] == ["free"]  # the request read back took one of two
    assert fold.spent[AT.date()] == (2, pytest.approx(0.24))
    assert fold.pool == {} and "free" in fold.done


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (scored("c", [0.5, 0.5], classes=["ok", "spam"]), "unknown class 'spam'"),
        (scored("c", [0.5, 0.3], classes=CLASSES[:3]), "2 probabilities for 3 classes"),
        (scored("c", [0.5, 0.3, 0.1]), "sum to 0.9000, not 1"),
        (scored("c", [1.5, -0.5, 0.0]), "outside [0, 1]"),
    ],
)
def test_a_bad_score_is_rejected_with_its_reason(bad: CommentScored, reason: str) -> None:
    fold = on_labels()
    out = feed(fold, [schema(), comment("c"), bad])
    assert len(out) == 1 and isinstance(out[0], Rejected) and reason in out[0].reason
    assert "c" not in fold.pool


def test_scores_wait_for_a_schema_and_are_rejected_if_none_comes() -> None:
    fold = on_labels()
    assert feed(fold, [comment("c"), scored("c", [0.4, 0.4, 0.2])]) == []
    assert fold.held_reason() == "holding 1 score(s): no label schema published yet"
    drained = fold.drain()
    assert [r.reason for r in drained if isinstance(r, Rejected)] == [
        "score of c (m1): no label schema published"
    ]
    late = on_labels()
    feed(late, [comment("c"), scored("c", [0.4, 0.4, 0.2]), schema()])
    assert [r.comment_id for r in requests(late.apply(label("x"), POS))] == ["c"]


def test_a_replay_picks_the_same_batches_with_the_same_ids() -> None:
    probs = {f"c{n}": [0.5 - n / 50, 0.3 + n / 100, 0.2 + n / 100] for n in range(12)}
    events = [*pool(probs)]
    events += [label(f"l{n}", at=AT + dt.timedelta(minutes=7 * n)) for n in range(12)]

    def run() -> list[tuple[object, ...]]:
        fold = ActiveFold(ActiveConfig(every_labels=4, every_minutes=20, batch_size=2))
        return [
            (
                r.event_id,
                r.request_id,
                r.comment_id,
                r.rank,
                r.score,
                r.batch_id,
                r.trigger,
                r.envelope.occurred_at,
                r.envelope.causation_id,
            )
            for r in requests(feed(fold, events))
        ]

    first = run()
    assert len(first) >= 6 and {t[6] for t in first} == {"labels", "time"}
    assert run() == first


def test_tasking_turns_a_request_into_a_crowd_task_once_it_can() -> None:
    fold = on_labels(batch_size=1)
    (request,) = requests(feed(fold, [*pool({"c": [0.4, 0.4, 0.2]}), label("x")]))
    tasking = TaskingFold(TaskingConfig(redundancy=2, honeypot_rate=0.0))
    assert tasking.apply(schema(), POS) == []
    assert tasking.apply(request, POS) == []  # the comment and the crowd are not there yet
    for who in ("a1", "a2"):
        tasking.apply(crowd_member(who), POS)
    out = tasking.apply(comment("c"), POS)
    tasks = [o for o in out if isinstance(o, TaskCreated)]
    assert len(tasks) == 1
    assert (tasks[0].reason, tasks[0].request_id, tasks[0].kind) == (
        "active_learning",
        request.request_id,
        "crowd",
    )
    assert tasks[0].envelope.causation_id == request.event_id
    assert tasking.apply(request, POS) == []  # a redelivered request adds nothing
