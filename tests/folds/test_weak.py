"""WeakFold: the joint label model over crowd votes, LF votes, model scores and user flags,
committed on route weak (machine-made, on weak.labels), at refit boundaries and on drain."""

from __future__ import annotations

import datetime as dt

from labeltrail.events import LogPosition
from labeltrail.events.base import Event
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    CommentScored,
    FeedbackReceived,
    LabelCommitted,
    WeakVoteCast,
)
from labeltrail.folds.base import Output, Rejected
from labeltrail.folds.weak import FLAGS, WEAK_METHOD, WeakConfig, WeakFold
from labeltrail.ontology import moderation_schema_v3
from labeltrail.ontology.schema import MODERATION_CLASSES
from tests.folds.helpers import suffix_topic
from tests.folds.test_reliability import verdict, vote

POS = LogPosition(topic="x", partition=0, offset=0)
T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
CROWD = ("a1", "a2", "a3")


def lf_vote(cid: str, name: str, label: str | None, t: dt.datetime = T0) -> WeakVoteCast:
    return WeakVoteCast.create(
        producer="t",
        id_parts=("lf", cid, name),
        occurred_at=t,
        vote_id=f"lf-{cid}-{name}",
        comment_id=cid,
        schema_version="v3",
        source="lf",
        source_name=name,
        source_version="1",
        label=label,
    )


def flag(cid: str, label: str, n: int, t: dt.datetime = T0) -> FeedbackReceived:
    return FeedbackReceived.create(
        producer="t",
        id_parts=("f", cid, n),
        occurred_at=t,
        feedback_id=f"f-{cid}-{n}",
        comment_id=cid,
        kind="user_flag",
        label=label,
        actor_hash=f"u{n}",
        actor_kind="user",
    )


def score(cid: str, top: str, p: float, t: dt.datetime = T0) -> CommentScored:
    k = len(MODERATION_CLASSES)
    probs = [p if c == top else (1 - p) / (k - 1) for c in MODERATION_CLASSES]
    return CommentScored.create(
        producer="t",
        id_parts=("s", cid),
        occurred_at=t,
        comment_id=cid,
        model_version="m1",
        classes=list(MODERATION_CLASSES),
        probabilities=probs,
        margin=0.5,
        route="none",
        threshold=0.1,
    )


def story(t: dt.datetime = T0) -> list[Event]:
    """40 comments the crowd, an LF and the model agree on (half harassment, half non-toxic),
    each flagged by a user when harassment; then one comment only users flagged."""
    events: list[Event] = [moderation_schema_v3()]
    for i in range(40):
        cid, truth = f"c{i:02d}", ("harassment" if i % 2 else "non-toxic")
        events += [vote(cid, a, truth, t) for a in CROWD]
        events.append(lf_vote(cid, "insults", "harassment" if truth == "harassment" else None, t))
        events.append(lf_vote(cid, "benign_words", "non-toxic" if i % 4 == 0 else None, t))
        events.append(score(cid, truth, 0.9, t))
        if truth == "harassment":
            events.append(flag(cid, "harassment", 0, t))
    events += [flag("only-flagged", "harassment", n, t) for n in range(3)]
    return events


def run(fold: WeakFold, events: list[Event]) -> list[Output]:
    out: list[Output] = []
    for event in events:
        out += fold.apply(event, POS)
    return out


def test_the_joint_model_commits_weak_machine_made_labels_on_drain() -> None:
    fold = WeakFold(WeakConfig(refit_on_drain=True))
    assert run(fold, story()) == []
    labels = [o for o in fold.drain() if isinstance(o, LabelCommitted)]
    assert len(labels) == 41 and fold.fits == 1
    by = {label.comment_id: label for label in labels}
    assert by["c01"].label == "harassment" and by["c02"].label == "non-toxic"
    assert by["only-flagged"].label == "harassment"  # the user flags are a source
    for label in labels:
        assert (label.route, label.machine_made, label.method) == ("weak", True, WEAK_METHOD)
        assert label.run_id == "weak"  # read like a labeling run's: never as a live label
        assert suffix_topic(label) == "weak.labels"
    c01 = by["c01"]
    assert c01.annotator_ids == list(CROWD)
    assert c01.vote_ids == [f"v-c01-{a}" for a in CROWD]
    assert c01.method_params["lfs"] == "benign_words@1,insults@1"
    assert c01.method_params["lf_vote_ids"] == "lf-c01-benign_words,lf-c01-insults"
    assert c01.method_params["model_version"] == "m1"
    assert c01.method_params["user_flags"] == "1"
    assert c01.event_id == derive_id("LabelCommitted", c01.label_id)
    # Nothing new read: no new fit, and a fit over the same inputs commits the same ids.
    assert fold.drain() == []
    assert fold.refit(T0, None) == []
    again = WeakFold(WeakConfig(refit_on_drain=True))
    run(again, story())
    assert [o.event_id for o in again.drain()] == [label.event_id for label in labels]


def test_it_refits_at_event_time_boundaries_and_recommits_only_what_changed() -> None:
    fold = WeakFold(WeakConfig(refit_every=dt.timedelta(days=1)))
    assert run(fold, story()) == []  # all on one day: no boundary passed yet
    later = T0 + dt.timedelta(days=1)
    first = run(fold, [vote("c00", "a4", "non-toxic", later)])
    assert {o.comment_id for o in first if isinstance(o, LabelCommitted)} >= {"c00", "c01"}
    assert fold.fits == 1
    changed = run(fold, [vote("fresh", "a1", "hate", later + dt.timedelta(days=1))])
    assert fold.fits == 2
    # The new comment is committed; the 40 sure ones moved less than the rounding.
    recommitted = {o.comment_id for o in changed if isinstance(o, LabelCommitted)}
    assert "fresh" in recommitted and not recommitted & {f"c{i:02d}" for i in range(40)}


def test_flags_are_one_source_voting_the_class_flagged_most() -> None:
    fold = WeakFold()
    run(fold, [moderation_schema_v3(), flag("c", "hate", 1), flag("c", "mild", 2)])
    run(fold, [flag("c", "hate", 3), flag("c", "not-a-class", 4)])
    built = fold.observations()
    assert built is not None
    ids, obs = built
    assert ids == ["c"] and obs.source_names == (FLAGS,)
    assert obs.label.tolist() == [MODERATION_CLASSES.index("hate")]


def test_gold_verdicts_are_clamped_and_a_live_verdict_is_not_gold() -> None:
    fold = WeakFold(WeakConfig(refit_on_drain=True))
    events = story()
    events += [vote("g", a, "non-toxic") for a in CROWD]  # the crowd is wrong on g ...
    events.append(verdict("g", "harassment", T0, request="gold:g"))  # ... the gold set says
    events += [vote("r", a, "non-toxic") for a in CROWD]
    events.append(verdict("r", "harassment", T0, request="r-1"))  # a live review: not gold
    run(fold, events)
    by = {o.comment_id: o for o in fold.drain() if isinstance(o, LabelCommitted)}
    assert by["g"].label == "harassment" and by["g"].method_params["gold"] == "harassment"
    assert by["r"].label == "non-toxic" and "gold" not in by["r"].method_params


def test_a_score_whose_probabilities_and_classes_disagree_is_rejected_not_a_crash() -> None:
    fold = WeakFold(WeakConfig(refit_on_drain=True))
    bad = score("c1", "harassment", 0.9).model_copy(update={"probabilities": [0.5, 0.5]})
    out = run(fold, [bad])
    assert out == [
        Rejected(f"score of c1 (m1): 2 probabilities for {len(MODERATION_CLASSES)} classes")
    ]
    assert fold.scores == {}
