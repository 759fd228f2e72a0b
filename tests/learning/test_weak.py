"""Weak supervision: LF API, LF analysis, the label model and the multi-source label model."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from labeltrail.events.models import CommentPosted, CommentScored, FeedbackReceived
from labeltrail.learning.label_model import LabelModel, dependency_cliques
from labeltrail.learning.lf import (
    ABSTAIN,
    Example,
    apply_lfs,
    examples_from_events,
    feedback_lf,
    keyword_lf,
    model_lf,
    regex_lf,
)
from labeltrail.learning.lf_analysis import label_coverage, lf_summary
from labeltrail.learning.multisource import MultiSourceLabelModel, Observations

CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]
WHEN = dt.datetime(2024, 9, 2, tzinfo=dt.UTC)


def _events() -> tuple[list[CommentPosted], list[CommentScored], list[FeedbackReceived]]:
    texts = ["you people always show up", "great video", "I know where you live"]
    comments = [
        CommentPosted.create(
            producer="t",
            occurred_at=WHEN,
            id_parts=(i,),
            comment_id=f"c-{i}",
            video_id="v",
            author_hash="a",
            text=t,
            posted_at=WHEN,
            source="pool",
        )
        for i, t in enumerate(texts)
    ]
    score = CommentScored.create(
        producer="t",
        id_parts=("s",),
        comment_id="c-1",
        model_version="m",
        classes=CLASSES,
        probabilities=[0.9, 0.05, 0.03, 0.01, 0.01],
        margin=0.85,
        route="none",
        threshold=0.1,
    )
    feedback = [
        FeedbackReceived.create(
            producer="t",
            id_parts=(k,),
            feedback_id=k,
            comment_id=c,
            kind=kind,
            label=lab,
            actor_hash="x",
        )
        for k, c, kind, lab in (
            ("f1", "c-0", "user_flag", None),
            ("f2", "c-2", "moderator_override", "threats"),
            ("f3", "c-1", "appeal", None),
        )
    ]
    return comments, [score], feedback


def test_lfs_from_log_events() -> None:
    comments, scores, feedback = _events()
    examples = examples_from_events(comments, scores, feedback)
    lfs = [
        keyword_lf("you_people", ["you people", "your kind"], 2),
        regex_lf("where_you_live", r"know where you live", 4),
        model_lf("model_confident", min_confidence=0.8),
        feedback_lf("user_flag", "user_flag", CLASSES, label=2),
        feedback_lf("override", "moderator_override", CLASSES),
        feedback_lf("appeal", "appeal", CLASSES, label=0),
    ]
    L = apply_lfs(lfs, examples)
    assert L.tolist() == [
        [2, ABSTAIN, ABSTAIN, 2, ABSTAIN, ABSTAIN],
        [ABSTAIN, ABSTAIN, 0, ABSTAIN, ABSTAIN, 0],
        [ABSTAIN, 4, ABSTAIN, ABSTAIN, 4, ABSTAIN],
    ]
    assert keyword_lf("k", ["kind"], 1)(Example("c", "kindness")) == ABSTAIN


def test_lf_summary_figures() -> None:
    L = np.array([[0, 0, -1], [0, 1, -1], [-1, 1, 1], [-1, -1, -1]])
    gold = np.array([0, 1, -1, 1])
    s = lf_summary(L, names=["a", "b", "c"], gold=gold)
    assert [x.coverage for x in s] == [0.5, 0.75, 0.25]
    assert [x.overlap for x in s] == [0.5, 0.75, 0.25]
    assert [x.conflict for x in s] == [0.25, 0.25, 0.0]
    assert s[0].empirical_accuracy == 0.5 and s[1].empirical_accuracy == 1.0
    assert s[2].empirical_accuracy is None and s[1].polarity == (0, 1)
    assert label_coverage(L) == 0.75


def _lf_world(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    accs, covs = [0.95, 0.8, 0.5, 0.7, 0.3, 0.85], [0.5, 0.4, 0.6, 0.3, 0.5, 0.2]
    L = np.full((n, len(accs)), ABSTAIN)
    for j, (acc, cov) in enumerate(zip(accs, covs, strict=True)):
        fire = rng.random(n) < cov
        right = rng.random(n) < acc
        L[fire, j] = np.where(right[fire], y[fire], rng.integers(0, 3, fire.sum()))
    return L, y


def test_label_model_beats_majority_and_learns_accuracies() -> None:
    L, y = _lf_world(5000, 0)
    model = LabelModel(3).fit(L)
    acc = np.mean(model.predict(L) == y)
    votes = np.stack([np.equal(L, c).sum(axis=1) for c in range(3)], 1)
    mv = np.mean(votes.argmax(1) == y)
    assert acc >= mv + 0.02
    assert np.argmax(model.accuracy_) == 0 and np.argmin(model.accuracy_) == 4
    proba = model.predict_proba(L)
    assert proba.shape == (5000, 3) and np.allclose(proba.sum(1), 1)


def test_copies_of_one_lf_are_merged_not_double_counted() -> None:
    L, y = _lf_world(5000, 1)
    copies = np.c_[L, L[:, 4], L[:, 4]]  # the weakest LF three times
    naive = LabelModel(3, dependency_threshold=None).fit(copies)
    aware = LabelModel(3).fit(copies)
    assert (4, 6, 7) in aware.factors_
    assert np.mean(aware.predict(copies) == y) > np.mean(naive.predict(copies) == y)
    assert dependency_cliques([(0, 1, 0.3), (1, 2, 0.2), (2, 3, 0.1)], 4, max_size=3) == [
        (0, 1, 2),
        (3,),
    ]


def test_gold_is_clamped_and_inputs_validated() -> None:
    L, y = _lf_world(500, 2)
    gold = np.where(np.arange(500) < 50, y, -1)
    model = LabelModel(3).fit(L, gold)
    assert np.array_equal(model.posterior_[:50].argmax(1), y[:50])
    with pytest.raises(ValueError):
        LabelModel(3).fit(np.array([[3]]))


def test_multi_source_combines_humans_lfs_model_and_feedback() -> None:
    rng = np.random.default_rng(4)
    n, k = 3000, 3
    y = rng.choice(k, n, p=[0.6, 0.3, 0.1])
    annotators = [f"a{i}" for i in range(20)]
    accuracy = {a: 0.8 for a in annotators} | {"a0": 0.0, "a1": 0.95}  # a0 answers at random
    items, who, said = [], [], []
    labelled = rng.choice(n, size=n // 2, replace=False)  # humans see half the items
    for i in labelled:
        for a in rng.choice(annotators, size=3, replace=False):
            items.append(int(i))
            who.append(str(a))
            right = rng.random() < accuracy[str(a)]
            said.append(int(y[i]) if right else int(rng.integers(0, k)))
    L, _ = _lf_world(n, 5)
    L = np.where(L >= 0, np.where(rng.random(L.shape) < 0.75, y[:, None], L), L)
    flags = np.where((y > 0) & (rng.random(n) < 0.3), 2, ABSTAIN)  # users flag toxic items
    model_p = np.eye(k)[np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))] * 0.6 + 0.4 / k
    obs = Observations.build(
        n,
        votes=(items, who, said),
        lf_matrix=np.c_[L, flags],
        lf_names=[*(f"lf{j}" for j in range(L.shape[1])), "user_flag"],
        lf_kinds=[*(["lf"] * L.shape[1]), "feedback"],
        model_probabilities=model_p,
        model_min_confidence=0.5,
    )
    model = MultiSourceLabelModel(k).fit(obs)
    combined = np.mean(model.predict() == y)
    humans_only = MultiSourceLabelModel(k).fit(Observations.build(n, votes=(items, who, said)))
    lfs_only = LabelModel(k).fit(L)
    assert combined > np.mean(lfs_only.predict(L) == y) + 0.02
    seen = np.zeros(n, bool)
    seen[labelled] = True
    assert np.mean(model.predict()[seen] == y[seen]) > np.mean(
        humans_only.predict()[seen] == y[seen]
    )
    rel = model.reliability()
    assert rel["a0"][1] < 0.45 < 0.9 < rel["a1"][1]
    assert rel["a1"][1] > rel["a5"][1]
    assert rel["model"][0] == "model" and rel["user_flag"][0] == "feedback"


def test_split_by_slice_gives_the_blind_crowd_its_own_reliability() -> None:
    """A crowd right everywhere but one slice, where it says class 0; experts see it."""
    rng = np.random.default_rng(7)
    n = 2000
    blind = np.arange(n) < 200
    y = np.where(blind, 2, rng.choice(3, n, p=[0.7, 0.2, 0.1]))
    items, who, said = [], [], []
    for i in range(n):
        for a in rng.choice(10, size=3, replace=False):
            items.append(i)
            who.append(f"c{a}")
            said.append(0 if blind[i] else int(y[i]) if rng.random() < 0.9 else 1)
        if blind[i] or rng.random() < 0.3:
            items.append(i)
            who.append("expert")
            said.append(int(y[i]))
    pools = {f"c{a}": "crowd" for a in range(10)} | {"expert": "expert"}
    obs = Observations.build(n, votes=(items, who, said), annotator_pools=pools)
    slices = np.where(blind, "coded", "rest").tolist()
    split = obs.split_by_slice(slices, ["coded"], only_groups=["crowd"])
    assert "c0@coded" in split.source_names and "expert@coded" not in split.source_names
    # Learned from agreement alone, the consistent majority wins and the experts look wrong.
    naive = MultiSourceLabelModel(3).fit(split)
    assert np.mean(naive.predict()[blind] == 2) < 0.5
    # With the experts' measured gold accuracy as a fixed reference, the slice is recovered.
    model = MultiSourceLabelModel(3, known_accuracy={"expert": 0.95}).fit(split)
    assert np.mean(model.predict()[blind] == 2) == 1.0
    blind_table = model.tables_[split.source_names.index("c0@coded")]
    assert blind_table[2, 1] > 0.8  # on the slice, truth 2 -> the crowd says 0
    assert model.reliability()["c0"][1] > 0.8
    with pytest.raises(ValueError):
        obs.split_by_slice(slices[:10], ["coded"])
