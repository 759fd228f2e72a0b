from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from labeltrail.quality import GLAD, NO_GOLD, MajorityVote, QualityError, Votes
from labeltrail.quality.glad import _Design


def _crowd_with_difficulty(
    seed: int = 5, n_items: int = 1500
) -> tuple[Votes, np.ndarray, np.ndarray]:
    """Binary crowd: 12 annotators with abilities from adversarial to expert, items of varying
    difficulty, 5 votes per item. Returns votes, truth and the true abilities."""
    rng = np.random.default_rng(seed)
    n_ann = 12
    ability = np.array([-1.0, 0.2, 0.5, 0.5, 1.0, 1.0, 1.5, 1.5, 2.0, 2.5, 3.0, 3.0])
    inv_difficulty = np.exp(rng.normal(0.0, 0.7, n_items))
    truth = (rng.random(n_items) < 0.5).astype(np.int64)
    item = np.repeat(np.arange(n_items), 5)
    ann = np.concatenate([rng.choice(n_ann, 5, replace=False) for _ in range(n_items)])
    p_right = 1.0 / (1.0 + np.exp(-ability[ann] * inv_difficulty[item]))
    label = np.where(rng.random(item.size) < p_right, truth[item], 1 - truth[item])
    return Votes.from_codes(item, ann, label, n_classes=2), truth, ability


def test_glad_beats_majority_vote_and_ranks_annotators() -> None:
    votes, truth, ability = _crowd_with_difficulty()
    glad = GLAD().fit(votes)
    mv = np.mean(MajorityVote().fit_predict(votes) == truth)
    assert np.mean(glad.labels_ == truth) > mv + 0.01
    assert glad.alphas_.shape == (12,) and glad.betas_.shape == (votes.n_items,)
    assert np.all(glad.betas_ > 0)
    assert glad.alphas_[0] < 0  # the adversarial annotator is found out
    assert np.corrcoef(glad.alphas_, ability)[0, 1] > 0.9
    np.testing.assert_allclose(glad.posteriors_.sum(axis=1), 1.0)
    np.testing.assert_allclose(glad.priors_, [0.5, 0.5])
    assert glad.converged_ and 1 <= glad.n_iter_ < 100


def test_glad_objective_gradient_is_exact() -> None:
    votes, _, _ = _crowd_with_difficulty(n_items=200)
    k = votes.n_classes
    d = _Design(votes.item, votes.annotator, votes.item * k + votes.label, votes.n_items, 12, k)
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, 12 + votes.n_items)
    p = rng.random(votes.n_votes)
    model = GLAD()
    err = check_grad(
        lambda z: model._q_and_grad(z, d, p)[0], lambda z: model._q_and_grad(z, d, p)[1], x
    )
    assert err / np.linalg.norm(model._q_and_grad(x, d, p)[1]) < 1e-5


def test_glad_more_classes_and_gold_held_fixed() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 300)
    item = np.repeat(np.arange(300), 4)
    ann = np.tile(np.arange(4), 300)
    good = rng.random(item.size) < np.where(ann < 3, 0.8, 0.3)
    label = np.where(good, truth[item], rng.integers(0, 4, item.size))
    votes = Votes.from_codes(item, ann, label, n_classes=4)
    gold = np.full(300, NO_GOLD)
    gold[:20] = 3
    gold_before = gold.copy()
    glad = GLAD().fit(votes, gold)
    np.testing.assert_array_equal(gold, gold_before)
    np.testing.assert_array_equal(glad.labels_[:20], 3)
    assert np.mean(glad.labels_[20:] == truth[20:]) > 0.9
    assert glad.alphas_[3] < glad.alphas_[:3].min()
    learned = GLAD(learn_priors=True).fit(votes)
    np.testing.assert_allclose(learned.priors_.sum(), 1.0)


def test_glad_edge_cases() -> None:
    one_class = Votes.from_long(["a", "b"], ["x", "y"], ["ok", "ok"])
    np.testing.assert_allclose(GLAD().fit_predict_proba(one_class), [[1.0], [1.0]])
    with pytest.raises(QualityError):
        GLAD(max_iter=0).fit(Votes.from_codes([0, 0], [0, 1], [0, 1]))
