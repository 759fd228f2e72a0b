"""The hashing featurizer: stable, batch-independent, padded, torch-free."""

from __future__ import annotations

import numpy as np
import pytest

from labeltrail.learning.features import PAD, HashingFeaturizer


def _rows(ids: np.ndarray) -> list[list[int]]:
    return [sorted(int(x) for x in row if x != PAD) for row in ids]


def test_same_text_same_features_whatever_the_batch() -> None:
    f = HashingFeaturizer(n_buckets=2**16)
    alone = _rows(f.transform(["you're really not what we said you'd be lol"]))[0]
    batch = f.transform(["hi", "you're really not what we said you'd be lol", "a much longer text"])
    assert _rows(batch)[1] == alone


def test_known_feature_count_and_padding() -> None:
    f = HashingFeaturizer(n_buckets=2**16, char_ngrams=(3,), word_bigrams=True)
    ids = f.transform(["ab cd", "x"])
    # "ab cd": 2 words, 1 bigram, char 3-grams over "^ab cd$" = 5; "x": 1 word + "^x$".
    assert (ids != PAD).sum(axis=1).tolist() == [8, 2]
    assert ids.shape == (2, 8) and ids.dtype == np.int64


def test_case_and_punctuation_normalised_but_words_matter() -> None:
    f = HashingFeaturizer(n_buckets=2**16)
    a, b, c = _rows(f.transform(["Hello, World", "hello  world", "hello word"]))
    assert a == b
    assert a != c


def test_buckets_in_range_and_seed_changes_hash() -> None:
    texts = ["the quick brown fox", "jumps over 88 lazy dogs 😂"]
    ids = HashingFeaturizer(n_buckets=97).transform(texts)
    assert ids[ids != PAD].min() >= 1 and ids.max() < 97
    other = HashingFeaturizer(n_buckets=2**16, seed=1).transform(texts)
    assert _rows(HashingFeaturizer(n_buckets=2**16).transform(texts)) != _rows(other)


def test_max_features_caps_width() -> None:
    ids = HashingFeaturizer(max_features=10).transform(["word " * 100])
    assert ids.shape == (1, 10) and (ids != PAD).all()


def test_config_round_trip_and_validation() -> None:
    f = HashingFeaturizer(n_buckets=1024, char_ngrams=(3, 4), seed=3)
    assert HashingFeaturizer.from_config(f.to_config()) == f
    with pytest.raises(ValueError):
        HashingFeaturizer(char_ngrams=(2,))
    assert HashingFeaturizer().transform([]).shape == (0, 1)
