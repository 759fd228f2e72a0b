from __future__ import annotations

import numpy as np
import pytest

from labeltrail.quality import (
    MACE,
    NO_GOLD,
    TIE_RULE,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    VoteFormatError,
    Votes,
    WeightedMajorityVote,
)
from labeltrail.sim.crowd import simulate_crowd


@pytest.fixture
def crowd() -> Votes:
    c = simulate_crowd(2000, 20, 5, priors=(0.6, 0.3, 0.1), accuracy=(0.5, 0.9), seed=7)
    return Votes.from_codes(c.item, c.annotator, c.label, n_classes=3)


def test_tie_rule_is_lowest_label() -> None:
    assert TIE_RULE == "lowest-label"
    v = Votes.from_long(["t", "t", "u", "u"], ["a", "b", "a", "b"], ["yes", "no", "b", "a"])
    labels = v.decode(MajorityVote().fit_predict(v))
    assert labels.tolist() == ["no", "a"]


def test_mv_shares_and_confidence() -> None:
    v = Votes.from_long([1, 1, 1, 2], ["a", "b", "c", "a"], [0, 0, 1, 1])
    mv = MajorityVote().fit(v)
    np.testing.assert_allclose(mv.posteriors_, [[2 / 3, 1 / 3], [0, 1]])
    np.testing.assert_allclose(mv.confidence_, [2 / 3, 1])


def test_from_long_rejects_malformed() -> None:
    with pytest.raises(VoteFormatError):
        Votes.from_long([1, 2], ["a"], [0, 1])
    with pytest.raises(VoteFormatError):
        Votes.from_long([1.0, np.nan], ["a", "b"], [0, 1])
    with pytest.raises(VoteFormatError):
        Votes.from_codes([0, -1], [0, 0], [0, 1])
    with pytest.raises(VoteFormatError):
        Votes.from_long([1], ["a"], ["x"], classes=["y"])


def test_fit_does_not_mutate_inputs(crowd: Votes) -> None:
    before = [crowd.item.copy(), crowd.annotator.copy(), crowd.label.copy()]
    gold = np.full(crowd.n_items, NO_GOLD)
    gold[:10] = 0
    gold_before = gold.copy()
    DawidSkene().fit(crowd, gold)
    for a, b in zip(before, [crowd.item, crowd.annotator, crowd.label], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(gold, gold_before)


@pytest.mark.parametrize("model", [DawidSkene(), OneCoinDawidSkene(), MACE(learn_priors=True)])
def test_em_models_beat_majority_vote(model: DawidSkene, crowd: Votes) -> None:
    c = simulate_crowd(2000, 20, 5, priors=(0.6, 0.3, 0.1), accuracy=(0.5, 0.9), seed=7)
    mv = np.mean(MajorityVote().fit_predict(crowd) == c.truth)
    ours = np.mean(model.fit_predict(crowd) == c.truth)
    assert ours >= mv
    np.testing.assert_allclose(model.posteriors_.sum(axis=1), 1.0, rtol=1e-5)


def test_dawid_skene_learns_confusions(crowd: Votes) -> None:
    c = simulate_crowd(2000, 20, 5, priors=(0.6, 0.3, 0.1), accuracy=(0.5, 0.9), seed=7)
    ds = DawidSkene(precision="float64").fit(crowd)
    assert ds.confusion_.shape == (20, 3, 3)
    np.testing.assert_allclose(ds.confusion_.sum(axis=2), 1.0)
    assert np.abs(ds.confusion_ - c.confusion).mean() < 0.05
    np.testing.assert_allclose(ds.priors_, [0.6, 0.3, 0.1], atol=0.03)
    assert ds.converged_ and ds.n_iter_ < 100


def test_float32_and_float64_agree(crowd: Votes) -> None:
    a = DawidSkene(precision="float32").fit(crowd)
    b = DawidSkene(precision="float64").fit(crowd)
    assert np.mean(a.labels_ == b.labels_) > 0.999
    np.testing.assert_allclose(a.posteriors_, b.posteriors_, atol=1e-3)


def test_gold_items_are_held_fixed(crowd: Votes) -> None:
    gold = np.full(crowd.n_items, NO_GOLD)
    gold[:50] = 2  # deliberately "wrong" gold: the model must still honour it
    ds = DawidSkene().fit(crowd, gold)
    np.testing.assert_array_equal(ds.labels_[:50], 2)
    np.testing.assert_allclose(ds.posteriors_[:50, 2], 1.0)


def test_gold_mapping_by_item_id() -> None:
    v = Votes.from_long(["i1", "i1", "i2", "i2"], ["a", "b", "a", "b"], ["x", "y", "x", "y"])
    ds = DawidSkene().fit(v, {"i1": "y", "unknown-item": "x"})
    assert v.decode(ds.labels_)[0] == "y"
    with pytest.raises(VoteFormatError):
        DawidSkene().fit(v, {"i1": "z"})


def test_weighted_vote_with_given_weights() -> None:
    v = Votes.from_long([0, 0, 0], ["expert", "n1", "n2"], [1, 0, 0])
    wmv = WeightedMajorityVote(weights={"expert": 5.0, "n1": 1.0, "n2": 1.0})
    assert wmv.fit_predict(v).tolist() == [1]
    np.testing.assert_allclose(wmv.posteriors_, [[2 / 7, 5 / 7]])
    with pytest.raises(VoteFormatError):
        WeightedMajorityVote(weights=[1.0, -1.0, 1.0]).fit(v)


def test_one_coin_skills_in_range(crowd: Votes) -> None:
    ods = OneCoinDawidSkene().fit(crowd)
    assert ods.skills_.shape == (20,)
    assert np.all((ods.skills_ > 0.3) & (ods.skills_ < 1))


def test_mace_competence_ranks_spammers() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 400)
    items, anns, labs = [], [], []
    for a in range(6):
        spam = a >= 4
        lab = rng.integers(0, 2, 400) if spam else np.where(rng.random(400) < 0.9, truth, 1 - truth)
        items += list(range(400))
        anns += [a] * 400
        labs += lab.tolist()
    m = MACE().fit(Votes.from_codes(items, anns, labs))
    assert m.competence_[:4].min() > m.competence_[4:].max()
    assert np.mean(m.labels_ == truth) > 0.95
