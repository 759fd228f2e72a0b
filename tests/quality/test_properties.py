"""Property tests: invariance to annotator relabelling, recovery with perfect annotators,
range and full-agreement behaviour of kappa and alpha."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from labeltrail.quality import GLAD, DawidSkene, MajorityVote, OneCoinDawidSkene, Votes
from labeltrail.quality.agreement import (
    cohen_kappa,
    fleiss_kappa_votes,
    krippendorff_alpha,
    krippendorff_alpha_votes,
)


@st.composite
def vote_sets(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], int]:
    n_items = draw(st.integers(2, 12))
    n_ann = draw(st.integers(2, 6))
    k = draw(st.integers(2, 4))
    items, anns, labs = [], [], []
    for i in range(n_items):
        who = draw(st.lists(st.integers(0, n_ann - 1), min_size=1, max_size=n_ann, unique=True))
        for a in who:
            items.append(i)
            anns.append(a)
            labs.append(draw(st.integers(0, k - 1)))
    return items, anns, labs, k


@settings(max_examples=40, deadline=None)
@given(vote_sets(), st.randoms(use_true_random=False))
def test_relabelling_annotators_changes_nothing(data, rnd) -> None:  # type: ignore[no-untyped-def]
    items, anns, labs, k = data
    n_ann = max(anns) + 1
    perm = list(range(n_ann))
    rnd.shuffle(perm)
    names = [f"w{perm[a]}" for a in anns]
    v1 = Votes.from_codes(items, anns, labs, n_classes=k)
    v2 = Votes.from_long(items, names, labs, classes=list(range(k)))
    for model in (MajorityVote(), DawidSkene(precision="float64"), OneCoinDawidSkene()):
        p1 = model.fit_predict_proba(v1).copy()
        p2 = model.fit_predict_proba(v2)
        np.testing.assert_allclose(p1, p2, atol=1e-6)
    if np.bincount(items).max() >= 2:
        a1, a2 = krippendorff_alpha_votes(v1), krippendorff_alpha_votes(v2)
        assert a1 == a2 or (np.isnan(a1) and np.isnan(a2))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=2, max_size=30),
    st.integers(2, 5),
)
def test_perfect_annotators_recover_truth(truth: list[int], n_ann: int) -> None:
    items = [i for i in range(len(truth)) for _ in range(n_ann)]
    anns = [a for _ in truth for a in range(n_ann)]
    labs = [t for t in truth for _ in range(n_ann)]
    v = Votes.from_codes(items, anns, labs, n_classes=4)
    for model in (MajorityVote(), DawidSkene(), OneCoinDawidSkene(), GLAD()):
        assert model.fit_predict(v).tolist() == truth


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=40),
    st.sampled_from([None, "linear", "quadratic"]),
)
def test_cohen_kappa_in_range(pairs: list[tuple[int, int]], weights: str | None) -> None:
    a, b = zip(*pairs, strict=True)
    kappa = cohen_kappa(list(a), list(b), weights)  # type: ignore[arg-type]
    assert np.isnan(kappa) or -1.0 - 1e-9 <= kappa <= 1.0 + 1e-9
    assert cohen_kappa(list(a), list(a), weights) in (1.0,) or len(set(a)) == 1  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 4), min_size=2, max_size=5), min_size=2, max_size=20),
    st.sampled_from(["nominal", "ordinal", "interval", "ratio"]),
)
def test_alpha_in_range_and_one_under_full_agreement(units: list[list[int]], level: str) -> None:
    width = max(len(u) for u in units)
    data = np.full((width, len(units)), np.nan)
    for j, u in enumerate(units):
        data[: len(u), j] = u
    alpha = krippendorff_alpha(data, level)  # type: ignore[arg-type]
    # alpha is bounded above by 1; below by -1 in the cases reachable here (>= -2 in theory)
    assert np.isnan(alpha) or -2.0 <= alpha <= 1.0 + 1e-9
    agree = np.where(np.isnan(data), np.nan, data[:1, :])
    if len({u[0] for u in units}) > 1:
        assert krippendorff_alpha(agree, level) == 1.0  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=20), st.integers(2, 6))
def test_fleiss_one_under_full_agreement(truth: list[int], n_ann: int) -> None:
    items = [i for i in range(len(truth)) for _ in range(n_ann)]
    anns = [a for _ in truth for a in range(n_ann)]
    labs = [t for t in truth for _ in range(n_ann)]
    v = Votes.from_codes(items, anns, labs)
    kappa = fleiss_kappa_votes(v)
    assert kappa == 1.0 or (len(set(truth)) == 1 and np.isnan(kappa))
