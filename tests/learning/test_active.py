"""Active learning selection: strategies rank the right items; batches are diverse."""

from __future__ import annotations

import numpy as np
import pytest

from labeltrail.learning.active import (
    committee_disagreement,
    entropy,
    least_confidence,
    margin_uncertainty,
    seed_set,
    select_batch,
    sketch,
    uncertainty,
)
from labeltrail.learning.features import HashingFeaturizer

P = np.array(
    [
        [0.98, 0.01, 0.01],  # sure
        [0.34, 0.33, 0.33],  # unsure everywhere
        [0.50, 0.495, 0.005],  # two-way tie: smallest margin
        [0.60, 0.20, 0.20],
    ]
)


def test_single_model_strategies_rank_as_defined() -> None:
    assert least_confidence(P).argmax() == 1
    assert margin_uncertainty(P).argmax() == 2
    assert entropy(P).argmax() == 1
    assert least_confidence(P).argmin() == margin_uncertainty(P).argmin() == 0
    # The article's comment: 0.41 - 0.32 = 0.09 margin.
    article = np.array([[0.32, 0.0, 0.41, 0.27, 0.0]])
    assert margin_uncertainty(article)[0] == pytest.approx(1 - 0.09)


def test_committee_disagreement_needs_three_and_finds_the_split() -> None:
    agree = np.tile(P[0], (4, 1))
    split = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    committee = np.stack([np.stack([agree[i], split[i % 3]]) for i in range(3)])
    for kind in ("kl", "vote"):
        scores = committee_disagreement(committee, kind=kind)  # type: ignore[arg-type]
        assert scores[1] > scores[0]
    with pytest.raises(ValueError):
        committee_disagreement(committee[:2])
    assert uncertainty("qbc", committee).shape == (2,)


def test_diverse_batch_is_not_near_duplicates() -> None:
    f = HashingFeaturizer(n_buckets=2**16)
    dupes = ["you're really not what we said you'd be lol"] * 300
    others = [f"question {i} about topic {i % 17} and part {i % 5}" for i in range(300)]
    texts = dupes + others
    scores = np.r_[np.full(300, 0.9), np.linspace(0.8, 0.5, 300)]
    emb = sketch(f.transform(texts), seed=0)
    plain = select_batch(scores, 50)
    diverse = select_batch(scores, 50, embeddings=emb, diversity=0.5)
    assert (plain < 300).sum() == 50
    assert (diverse < 300).sum() <= 2
    assert len(set(diverse.tolist())) == 50


def test_exclude_and_small_pools() -> None:
    scores = np.array([0.9, 0.8, 0.7])
    assert select_batch(scores, 5, exclude=[0]).tolist() == [1, 2]
    emb = np.eye(3)
    assert sorted(select_batch(scores, 2, embeddings=emb, exclude=[1]).tolist()) == [0, 2]


def test_sketch_is_unit_norm_and_similarity_tracks_overlap() -> None:
    f = HashingFeaturizer(n_buckets=2**16)
    e = sketch(f.transform(["great video thanks", "great video thanks!!", "i know where you live"]))
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0)
    assert e[0] @ e[1] > 0.9 > e[0] @ e[2]


def test_seed_set_is_seeded_and_stratified() -> None:
    strata = np.r_[np.zeros(95, np.int64), np.ones(5, np.int64)]
    a = seed_set(100, 20, seed=3, strata=strata)
    assert np.array_equal(a, seed_set(100, 20, seed=3, strata=strata))
    assert (strata[a] == 1).any() and len(set(a.tolist())) == len(a)
    assert len(seed_set(100, 20, seed=3)) == 20


def test_next_batch_from_the_deployed_models_scores() -> None:
    from labeltrail.events.models import CommentScored
    from labeltrail.learning.active import next_batch

    classes = ["non-toxic", "mild", "harassment", "hate", "threats"]
    texts, scored = [], []
    for i in range(40):
        unsure = i % 4 == 0
        p = [0.32, 0.0, 0.41, 0.27, 0.0] if unsure else [0.96, 0.01, 0.01, 0.01, 0.01]
        texts.append(f"comment number {i} about topic {i % 7}")
        top2 = sorted(p)[-2:]
        scored.append(
            CommentScored.create(
                producer="scorer",
                id_parts=(i,),
                comment_id=f"c-{i:02d}",
                model_version="m",
                classes=classes,
                probabilities=p,
                margin=top2[1] - top2[0],
                route="none",
                threshold=0.1,
            )
        )
    batch = next_batch(scored, texts, 5, labelled=["c-00"])
    assert len(batch) == 5 and "c-00" not in batch
    assert all(int(c[2:]) % 4 == 0 for c in batch)
    with pytest.raises(ValueError):
        next_batch(scored, texts, 5, strategy="qbc")
