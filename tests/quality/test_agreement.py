from __future__ import annotations

import numpy as np
import pytest

from labeltrail.quality import VoteFormatError, Votes
from labeltrail.quality.agreement import (
    cohen_kappa,
    cohen_kappa_table,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_votes,
)
from labeltrail.quality.agreement_items import (
    bootstrap_ci,
    item_agreement,
    pairwise_matrix,
    per_item_agreement,
)


def test_cohen_table_and_vectors_agree() -> None:
    a = [0, 0, 1, 1, 2, 2, 0]
    b = [0, 1, 1, 1, 2, 0, 0]
    table = np.zeros((3, 3))
    for x, y in zip(a, b, strict=True):
        table[x, y] += 1
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_table(table))
    assert cohen_kappa([*a, None], [*b, 1]) == pytest.approx(cohen_kappa(a, b))


def test_cohen_rejects_bad_weights() -> None:
    with pytest.raises(VoteFormatError):
        cohen_kappa_table([[1, 0], [0, 1]], "cubic")  # type: ignore[arg-type]


def test_fleiss_needs_two_ratings() -> None:
    with pytest.raises(VoteFormatError):
        fleiss_kappa([[1, 0], [0, 1]])


def test_alpha_votes_matches_reliability_matrix() -> None:
    data = np.array([[1, 2, 3, 3, np.nan], [1, 2, 3, 2, 4], [np.nan, 2, 3, 3, 4]])
    coders, units = np.nonzero(~np.isnan(data))
    v = Votes.from_long(units, coders, data[coders, units].astype(int))
    for level in ("nominal", "ordinal", "interval", "ratio"):
        assert krippendorff_alpha_votes(v, level) == pytest.approx(krippendorff_alpha(data, level))


def test_item_agreement_for_the_article_triple() -> None:
    # a47 non-toxic, b12 harassment, c89 non-toxic; running mix 70% non-toxic
    res = item_agreement([0, 1, 0], priors=[0.7, 0.2, 0.1], threshold=0.5)
    assert res.observed == pytest.approx(1 / 3)
    assert res.expected == pytest.approx(0.54)
    assert res.kappa < 0 and res.below
    assert not item_agreement([0, 0, 0], priors=[0.7, 0.2, 0.1]).below


def test_per_item_agreement_nan_for_single_votes() -> None:
    v = Votes.from_long([1, 1, 1, 2], list("abca"), [0, 0, 1, 1])
    out = per_item_agreement(v)
    assert out[0] == pytest.approx(1 / 3) and np.isnan(out[1])


def test_pairwise_matrix_symmetric() -> None:
    v = Votes.from_long([0, 0, 1, 1, 2, 2, 3, 3], list("abababab"), [0, 0, 1, 1, 0, 1, 1, 1])
    m = pairwise_matrix(v, "percent")
    assert m[0, 1] == m[1, 0] == pytest.approx(0.75)
    assert np.isnan(pairwise_matrix(v, "percent", min_overlap=10)[0, 1])


def test_bootstrap_interval_contains_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    counts = rng.multinomial(4, [0.7, 0.2, 0.1], size=200).astype(float)
    from labeltrail.quality.agreement import krippendorff_alpha_counts

    def stat(c: np.ndarray) -> float:
        return krippendorff_alpha_counts(c, np.arange(3.0))

    a = bootstrap_ci(stat, counts, n_boot=200, seed=1)
    b = bootstrap_ci(stat, counts, n_boot=200, seed=1)
    assert a == b and a.low <= a.estimate <= a.high
