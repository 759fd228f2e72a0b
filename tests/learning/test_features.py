"""The hashing featurizer: stable, batch-independent, padded, torch-free."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from labeltrail.learning.features import PAD, HashingFeaturizer, blocks_by_length


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


_MASK = 2**64 - 1
_P = 0x100000001B3
_Q = pow(_P, -1, 2**64)


def _reference(f: HashingFeaturizer, text: str) -> list[int]:
    """One text, n-gram by n-gram in plain Python: the specification the numpy code must match."""

    def is_word(b: int) -> bool:
        return 48 <= b <= 57 or 97 <= b <= 122 or b == 39 or b >= 128

    def poly(xs: list[int]) -> int:
        return sum(x * pow(_Q, k, 2**64) for k, x in enumerate(xs)) & _MASK

    def finish(h: int, kind: int) -> int:
        z = (h + kind * 0x632BE59BD9B4E019 + f.seed * 0x85EBCA77) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        return (((z >> 32) * (f.n_buckets - 1)) >> 32) + 1

    raw = b"\x00" + text.replace("\x00", " ").lower().encode("utf-8") + b"\x00"
    x = [b + 1 if is_word(b) or b == 0 else 33 for b in raw]
    words: list[int] = []
    i = 0
    while i < len(raw):
        if is_word(raw[i]):
            j = i
            while is_word(raw[j]):
                j += 1
            words.append(poly(x[i:j]))
            i = j
        else:
            i += 1
    out = [finish(w, 1) for w in words]
    if f.word_bigrams:
        out += [finish((a * 0x9E3779B97F4A7C15 + b) & _MASK, 2) for a, b in pairwise(words)]
    for g in f.char_ngrams:
        if len(raw) > 2:  # an empty text has no character n-grams
            out += [finish(poly(x[i : i + g]), 10 + g) for i in range(len(raw) - g + 1)]
    return out[: f.max_features]


@pytest.mark.parametrize(
    "featurizer",
    [
        HashingFeaturizer(),
        HashingFeaturizer(n_buckets=97, char_ngrams=(5, 3), seed=3),
        HashingFeaturizer(char_ngrams=(), word_bigrams=False),
        HashingFeaturizer(max_features=12, char_ngrams=(4,)),
    ],
)
def test_batch_features_equal_the_plain_python_reference(featurizer: HashingFeaturizer) -> None:
    texts = [
        "You're REALLY not what we said, lol!!",
        "",
        "x",
        "ab",
        "a\x00b",
        "Σ ΣΣ final σ",
        "jumps over 88 lazy dogs 😂😂",
        "   ",
        "word " * 120,
        "don't stop 'til you're done",
    ]
    expected = [_reference(featurizer, t) for t in texts]
    for batch in (texts, texts[::-1], *([t] for t in texts)):
        ids = featurizer.transform(batch)
        assert ids.dtype == np.int64
        want = [expected[texts.index(t)] for t in batch]
        assert ids.shape[1] == max(1, max(len(w) for w in want))
        assert [[int(v) for v in row if v != PAD] for row in ids] == want
        assert all((row[len(w) :] == PAD).all() for row, w in zip(ids, want, strict=True))


def test_blocks_by_length_cover_every_row_once_and_keep_interior_padding() -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(300, 40))
    ids[np.arange(300), rng.integers(0, 40, size=300)] = PAD  # interior padding
    for r, cut in enumerate(rng.integers(0, 41, size=300)):
        ids[r, cut:] = PAD
    blocks = blocks_by_length(ids, 64)
    rows = np.concatenate([r for r, _ in blocks])
    assert sorted(rows.tolist()) == list(range(300))
    assert [len(r) for r, _ in blocks] == [64, 64, 64, 64, 44]
    for picked, block in blocks:
        assert (ids[picked, block.shape[1] :] == PAD).all()  # trimming dropped padding only
        np.testing.assert_array_equal(block, ids[picked, : block.shape[1]])
    widths = [b.shape[1] for _, b in blocks]
    assert widths == sorted(widths)
    assert blocks_by_length(ids[:0], 64) == []
    assert blocks_by_length(np.zeros((1, 5), np.int64), 64)[0][1].shape == (1, 1)
