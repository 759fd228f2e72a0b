"""Hashed n-gram featurization in pure numpy, shared by training (torch) and scoring (onnxruntime).

Texts become padded matrices of bucket ids: word unigrams and bigrams plus character n-grams
(fastText-style), hashed with a position-relative polynomial hash computed for a whole batch
at once (prefix sums modulo 2**64), so no Python loop runs per n-gram. Bucket 0 is padding.
The scoring path imports this module and onnxruntime only; it never needs torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["PAD", "HashingFeaturizer"]

PAD = 0
"""The padding bucket id: the model ignores it."""

_P = np.uint64(0x100000001B3)  # FNV prime: odd, so invertible modulo 2**64
_Q = np.uint64(pow(int(_P), -1, 2**64))
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SEP = 0  # byte that separates texts in the joined batch


def _is_word(b: NDArray[np.uint8]) -> NDArray[np.bool_]:
    word: NDArray[np.bool_] = (
        ((b >= 48) & (b <= 57))  # digits
        | ((b >= 97) & (b <= 122))  # lowercase letters (texts are lowercased first)
        | (b == 39)  # apostrophe: "you're" is one word
        | (b >= 128)  # UTF-8 multi-byte sequences
    )
    return word


@dataclass(frozen=True)
class HashingFeaturizer:
    """Texts -> ``ids: (n_texts, width)`` int64 bucket ids in ``[1, n_buckets)``, 0 = padding.

    ``width`` is the largest feature count in the batch, capped at ``max_features`` (a longer
    text keeps its first features: words, then bigrams, then character n-grams). The hash is
    stable across processes and platforms; ``seed`` salts it.
    """

    n_buckets: int = 2**18
    """Hash buckets including padding; at most 2**32."""
    char_ngrams: tuple[int, ...] = (3, 4, 5)
    word_bigrams: bool = True
    max_features: int = 384
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.n_buckets <= 2**32:
            raise ValueError("n_buckets must be in [2, 2**32]")
        if any(n < 3 for n in self.char_ngrams):
            raise ValueError("character n-grams must have n >= 3")

    def to_config(self) -> dict[str, Any]:
        """A JSON-able description; ``from_config`` rebuilds the same featurizer."""
        return {**asdict(self), "char_ngrams": list(self.char_ngrams), "kind": "hashing-v1"}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HashingFeaturizer:
        fields = {k: v for k, v in config.items() if k != "kind"}
        fields["char_ngrams"] = tuple(fields.get("char_ngrams", ()))
        return cls(**fields)

    def transform(self, texts: Sequence[str]) -> NDArray[np.int64]:
        """Bucket ids, shape ``(len(texts), width)``, padded with :data:`PAD`."""
        n = len(texts)
        if n == 0:
            return np.zeros((0, 1), dtype=np.int64)
        joined = "\x00" + "\x00".join(t.replace("\x00", " ") for t in texts).lower() + "\x00"
        raw = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
        word = _is_word(raw)
        sep = raw == _SEP
        # Punctuation and whitespace all read as one space, so "hi!!" and "hi " share grams.
        x = np.where(word | sep, raw, np.uint8(32)).astype(np.uint64) + np.uint64(1)
        seps = np.cumsum(sep)  # inclusive: doc of a non-separator byte p is seps[p] - 1
        prefix = _prefix(x)
        docs: list[NDArray[np.int64]] = []
        hashes: list[NDArray[np.uint64]] = []
        # Words: maximal runs of word bytes.
        prev = np.concatenate(([False], word[:-1]))
        nxt = np.concatenate((word[1:], [False]))
        starts = np.flatnonzero(word & ~prev)
        ends = np.flatnonzero(word & ~nxt) + 1
        wh = _substring(prefix, starts, ends)
        wdoc = (seps[starts] - 1).astype(np.int64)
        docs.append(wdoc)
        hashes.append(_finish(wh, 1, self.seed))
        if self.word_bigrams and starts.size > 1:
            same = wdoc[1:] == wdoc[:-1]
            bh = wh[:-1][same] * _MIX + wh[1:][same]
            docs.append(wdoc[:-1][same])
            hashes.append(_finish(bh, 2, self.seed))
        for g in self.char_ngrams:
            if raw.size < g:
                continue
            i = np.arange(raw.size - g + 1)
            interior_clear = seps[i + g - 2] - seps[i] == 0
            not_empty = ~(sep[i] & sep[i + 1])
            ok = i[interior_clear & not_empty]
            docs.append((seps[ok + 1] - 1).astype(np.int64))
            hashes.append(_finish(_substring(prefix, ok, ok + g), 10 + g, self.seed))
        return self._pad(n, np.concatenate(docs), np.concatenate(hashes))

    def _pad(self, n: int, doc: NDArray[np.int64], h: NDArray[np.uint64]) -> NDArray[np.int64]:
        # Lemire's multiply-shift range reduction: uint64 modulo is several times slower.
        top = h >> np.uint64(32)
        buckets = ((top * np.uint64(self.n_buckets - 1)) >> np.uint64(32)).astype(np.int64) + 1
        order = np.argsort(doc, kind="stable")
        doc, buckets = doc[order], buckets[order]
        counts = np.bincount(doc, minlength=n)
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(doc.size) - first[doc]
        keep = rank < self.max_features
        width = max(1, min(int(counts.max(initial=0)), self.max_features))
        out = np.zeros((n, width), dtype=np.int64)
        out[doc[keep], rank[keep]] = buckets[keep]
        return out


def _powers(base: np.uint64, n: int) -> NDArray[np.uint64]:
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def _prefix(x: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """Prefix sums ``G[j] = sum_{i<j} x[i] Q^i`` and powers ``P^j`` (all modulo 2**64)."""
    with np.errstate(over="ignore"):
        qpow = _powers(_Q, x.size + 1)
        g = np.concatenate(([np.uint64(0)], np.cumsum(x * qpow[:-1], dtype=np.uint64)))
        ppow = _powers(_P, x.size + 1)
    return g, ppow


def _substring(
    prefix: tuple[NDArray[np.uint64], NDArray[np.uint64]],
    a: NDArray[np.int64],
    b: NDArray[np.int64],
) -> NDArray[np.uint64]:
    """``sum_{a<=i<b} x[i] Q^(i-a)``: depends on the bytes only, not where they sit."""
    g, ppow = prefix
    with np.errstate(over="ignore"):
        return (g[b] - g[a]) * ppow[a]


def _finish(h: NDArray[np.uint64], kind: int, seed: int) -> NDArray[np.uint64]:
    """Salt by n-gram kind and seed, then mix the bits (splitmix64 finalizer)."""
    with np.errstate(over="ignore"):
        z = h + np.uint64((kind * 0x632BE59BD9B4E019 + seed * 0x85EBCA77) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
