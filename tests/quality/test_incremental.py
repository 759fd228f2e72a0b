from __future__ import annotations

import numpy as np
import pytest

from labeltrail.quality import NO_GOLD, DawidSkene, NotFittedError, VoteFormatError, Votes
from labeltrail.quality.incremental import (
    IncrementalDawidSkene,
    item_posterior,
    weighted_posterior,
)
from labeltrail.sim.crowd import simulate_crowd


def test_incremental_tracks_and_converges_to_batch() -> None:
    c = simulate_crowd(3000, 30, 3, seed=1)
    n0 = 4500  # first half of the stream fits the model; the rest arrives in batches
    v0 = Votes.from_codes(c.item[:n0], c.annotator[:n0], c.label[:n0], n_classes=5)
    inc = IncrementalDawidSkene(refit_every=0).fit(v0)
    for s in range(n0, c.item.size, 300):
        e = s + 300
        touched = inc.partial_fit(
            c.item[s:e].tolist(), c.annotator[s:e].tolist(), c.label[s:e].tolist()
        )
        assert touched.size == np.unique(c.item[s:e]).size
    batch = DawidSkene(precision="float64").fit(
        Votes.from_codes(c.item, c.annotator, c.label, n_classes=5)
    )
    order = np.argsort(np.array(inc.item_ids_))
    streamed = inc.labels_[order]
    assert np.mean(streamed == batch.labels_) > 0.9
    assert abs(np.mean(streamed == c.truth) - np.mean(batch.labels_ == c.truth)) < 0.03
    # the sufficient statistics stay consistent with the posteriors
    k = 5
    expected = np.zeros_like(inc._counts)
    np.add.at(expected, (c.annotator, slice(None), c.label), inc.posteriors_[c.item])
    np.testing.assert_allclose(inc._counts, expected, atol=1e-8)
    inc.refit()
    np.testing.assert_allclose(inc.posteriors_[order], batch.posteriors_, atol=1e-9)
    assert inc.n_refits_ == 1 and k == inc.n_classes


def test_periodic_refit_and_new_annotator() -> None:
    c = simulate_crowd(500, 10, 3, seed=2)
    inc = IncrementalDawidSkene(refit_every=50).fit(
        Votes.from_codes(c.item, c.annotator, c.label, n_classes=5)
    )
    inc.partial_fit(["new"] * 60, [f"newbie{i}" for i in range(60)], [0] * 60)
    assert inc.n_refits_ == 1
    assert inc.confusion_.shape == (70, 5, 5)


def test_unfitted_and_pure_helpers() -> None:
    with pytest.raises(NotFittedError):
        IncrementalDawidSkene().refit()
    conf = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.4, 0.6]]])
    p = item_posterior(conf, np.array([0.5, 0.5]), [0, 1], [1, 0])
    expected = np.array([0.1 * 0.6, 0.8 * 0.4])
    np.testing.assert_allclose(p, expected / expected.sum())
    np.testing.assert_allclose(weighted_posterior([0, 1, 1], [3.0, 1.0, 1.0], 3), [0.6, 0.4, 0])


def test_gold_items_held_fixed_in_fit_stream_and_refit() -> None:
    c = simulate_crowd(1200, 20, 3, seed=4)
    n0 = 2400
    v_all = Votes.from_codes(c.item, c.annotator, c.label, n_classes=5)
    gold = np.full(1200, NO_GOLD)
    gold[:40] = c.truth[:40]
    gold[40:50] = (c.truth[40:50] + 1) % 5  # deliberately wrong gold: it must still be honoured
    v0 = Votes.from_codes(c.item[:n0], c.annotator[:n0], c.label[:n0], n_classes=5)
    inc = IncrementalDawidSkene(refit_every=0).fit(v0, gold[: v0.n_items])
    assert inc.gold_ == {i: int(gold[i]) for i in range(50)}
    np.testing.assert_allclose(inc.posteriors_[np.arange(50), gold[:50]], 1.0)
    # later gold: an item seen in fit, and an item whose votes arrive in the stream
    late = {60: int(c.truth[60]), 1100: int(c.truth[1100])}
    inc.partial_fit(
        c.item[n0:].tolist(), c.annotator[n0:].tolist(), c.label[n0:].tolist(), gold=late
    )
    codes = {item: i for i, item in enumerate(inc.item_ids_)}
    for item, label in late.items():
        np.testing.assert_allclose(inc.posteriors_[codes[item], label], 1.0)
    np.testing.assert_allclose(inc.posteriors_[np.arange(50), gold[:50]], 1.0)
    # sufficient statistics stay consistent with the (gold-fixed) posteriors
    ann = np.array([a for votes in inc._by_item for a, _ in votes])
    lab = np.array([lab for votes in inc._by_item for _, lab in votes])
    item = np.repeat(np.arange(len(inc._by_item)), [len(v) for v in inc._by_item])
    expected = np.zeros_like(inc._counts)
    np.add.at(expected, (ann, slice(None), lab), inc.posteriors_[item])
    np.testing.assert_allclose(inc._counts, expected, atol=1e-8)
    # a cold refit is the batch model with the same gold
    inc.refit()
    full_gold = gold.copy()
    full_gold[[60, 1100]] = list(late.values())
    batch = DawidSkene(precision="float64").fit(v_all, full_gold)
    order = np.argsort(np.array(inc.item_ids_))
    np.testing.assert_allclose(inc.posteriors_[order], batch.posteriors_, atol=1e-9)
    np.testing.assert_array_equal(batch.labels_[:50], gold[:50])


def test_gold_label_must_be_a_class() -> None:
    c = simulate_crowd(100, 5, 3, seed=3)
    inc = IncrementalDawidSkene().fit(Votes.from_codes(c.item, c.annotator, c.label, n_classes=5))
    with pytest.raises(VoteFormatError):
        inc.partial_fit([0], ["a"], [1], gold={0: 9})
    with pytest.raises(VoteFormatError):
        IncrementalDawidSkene().fit(
            Votes.from_codes(c.item, c.annotator, c.label, n_classes=5), {0: 9}
        )
