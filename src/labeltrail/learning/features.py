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

__all__ = ["PAD", "HashingFeaturizer", "blocks_by_length"]

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


_BYTES = np.arange(256, dtype=np.uint8)
_WORD = _is_word(_BYTES)
"""Byte -> is it part of a word (one table look-up per byte)."""
_CODE = np.where(_WORD | (_BYTES == _SEP), _BYTES, np.uint8(32)).astype(np.uint64) + np.uint64(1)
"""Byte -> the value hashed: itself plus one, or a space's for every other byte."""


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
        if n == 1:
            return self._transform_one(texts[0])
        joined = "\x00" + "\x00".join(t.replace("\x00", " ") for t in texts).lower() + "\x00"
        raw = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
        size = raw.size
        sep = raw == _SEP
        # Punctuation and whitespace all read as one space, so "hi!!" and "hi " share grams.
        x = _CODE[raw]
        doc_end = np.cumsum(sep)  # inclusive: doc of a non-separator byte p is doc_end[p] - 1
        qpow, ppow = _powers(size + 1)
        groups: list[tuple[NDArray[np.int64], NDArray[np.uint64]]] = []
        # Words: maximal runs of word bytes (the first and last bytes are separators).
        edges = np.diff(_WORD[raw].view(np.int8))
        starts = np.flatnonzero(edges == 1) + 1
        ends = np.flatnonzero(edges == -1) + 1
        with np.errstate(over="ignore"):
            prefix = np.zeros(size + 1, dtype=np.uint64)
            np.cumsum(x * qpow[:size], out=prefix[1:])
            wh = (prefix[ends] - prefix[starts]) * ppow[starts]
            wdoc = doc_end[starts] - 1
            groups.append((wdoc, wh + _salt(1, self.seed)))
            if self.word_bigrams and starts.size > 1:
                same = np.flatnonzero(wdoc[1:] == wdoc[:-1])
                bh = wh[same] * _MIX + wh[same + 1]
                groups.append((wdoc[same], bh + _salt(2, self.seed)))
            # Character n-grams: h_g[i] = sum_{k<g} x[i+k] Q^k, grown one byte at a time.
            grams: dict[int, NDArray[np.uint64]] = {}
            h = x.copy()
            for g in range(2, max(self.char_ngrams, default=0) + 1):
                if size < g:
                    break
                h = h[: size - g + 1] + x[g - 1 :] * qpow[g - 1]
                grams[g] = h
            if grams:
                # A g-gram starting at i may hold a separator only at its ends: the first
                # separator after i must be at i + g - 1 or later (an empty text has room 1).
                room = np.flatnonzero(sep)[doc_end[:-1]] - np.arange(size - 1)
            for g in self.char_ngrams:
                if g not in grams:
                    continue
                i = np.flatnonzero(room >= g - 1)
                groups.append((doc_end[i + 1] - 1, grams[g][i] + _salt(10 + g, self.seed)))
        return self._pad(n, groups)

    def _transform_one(self, text: str) -> NDArray[np.int64]:
        """:meth:`transform` of one text (the live per-event path) in half the numpy calls.

        With one text the separators are only at both ends, so every n-gram is in order and
        valid, no text index or column is needed, and a character n-gram never holds an
        inner separator.
        """
        raw = np.frombuffer(
            b"\x00" + text.replace("\x00", " ").lower().encode() + b"\x00", np.uint8
        )
        size = raw.size
        x = _CODE[raw]
        qpow, ppow = _powers(size + 1)
        edges = np.diff(_WORD[raw].view(np.int8))
        starts = np.flatnonzero(edges == 1) + 1
        ends = np.flatnonzero(edges == -1) + 1
        parts: list[NDArray[np.uint64]] = []
        with np.errstate(over="ignore"):
            prefix = np.zeros(size + 1, dtype=np.uint64)
            np.cumsum(x * qpow[:size], out=prefix[1:])
            wh = (prefix[ends] - prefix[starts]) * ppow[starts]
            parts.append(wh + _salt(1, self.seed))
            if self.word_bigrams and starts.size > 1:
                parts.append(wh[:-1] * _MIX + wh[1:] + _salt(2, self.seed))
            grams: dict[int, NDArray[np.uint64]] = {}
            h = x
            for g in range(2, max(self.char_ngrams, default=0) + 1):
                if size < g or size == 2:  # too short, or an empty text
                    break
                h = h[: size - g + 1] + x[g - 1 :] * qpow[g - 1]
                grams[g] = h
            parts.extend(
                grams[g] + _salt(10 + g, self.seed) for g in self.char_ngrams if g in grams
            )
        h = np.concatenate(parts)[: self.max_features]
        return self._buckets(_mix(h)).reshape(1, -1) if h.size else np.zeros((1, 1), np.int64)

    def _pad(
        self, n: int, groups: list[tuple[NDArray[np.int64], NDArray[np.uint64]]]
    ) -> NDArray[np.int64]:
        """Place each group's features after the earlier groups' in its text's row.

        Every group is ordered by text already, so a feature's column is the text's count in the
        earlier groups plus its rank within its own group: no sort.
        """
        docs, ranks = [], []
        before = np.zeros(n, dtype=np.int64)
        for doc, _ in groups:
            counts = np.bincount(doc, minlength=n)
            first = np.cumsum(counts) - counts
            ranks.append(np.arange(doc.size) - first[doc] + before[doc])
            docs.append(doc)
            before += counts
        doc, rank = np.concatenate(docs), np.concatenate(ranks)
        width = max(1, min(int(before.max()), self.max_features))
        h = np.concatenate([hashes for _, hashes in groups])
        if width < before.max():  # a text with more than max_features keeps its first ones
            keep = np.flatnonzero(rank < width)
            doc, rank, h = doc[keep], rank[keep], h[keep]
        out = np.zeros(n * width, dtype=np.int64)
        out[doc * width + rank] = self._buckets(_mix(h))
        return out.reshape(n, width)

    def _buckets(self, h: NDArray[np.uint64]) -> NDArray[np.int64]:
        # Lemire's multiply-shift range reduction: uint64 modulo is several times slower.
        with np.errstate(over="ignore"):
            top = (h >> np.uint64(32)) * np.uint64(self.n_buckets - 1)
        buckets: NDArray[np.int64] = (top >> np.uint64(32)).astype(np.int64) + 1
        return buckets


def blocks_by_length(
    ids: NDArray[np.integer[Any]], rows: int
) -> list[tuple[NDArray[np.intp], NDArray[np.integer[Any]]]]:
    """Split ``ids: (n, width)`` into blocks of ``rows`` rows of similar length, each trimmed.

    Rows are ordered by their extent (last non-padding column + 1), so a block carries almost no
    padding: the embedding gather then reads only real n-grams, and a ``(rows, width, dim)``
    block stays in cache. Returns ``(row_indices, block)`` pairs covering every row once.
    """
    n = ids.shape[0]
    if n == 0:
        return []
    nonzero = ids != PAD
    width = ids.shape[1]
    extent = np.where(nonzero.any(axis=1), width - np.argmax(nonzero[:, ::-1], axis=1), 0)
    if n == 1:
        return [(np.zeros(1, np.intp), ids[:, : max(1, int(extent[0]))])]
    order = np.argsort(extent, kind="stable")
    blocks = []
    for start in range(0, n, rows):
        picked = order[start : start + rows]
        blocks.append((picked, ids[picked, : max(1, int(extent[picked[-1]]))]))
    return blocks


_POWER_CACHE: list[tuple[NDArray[np.uint64], NDArray[np.uint64]]] = []


def _powers(n: int) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """``Q^i`` and ``P^i`` modulo 2**64 for ``i < n`` at least (a table grown by doubling)."""
    if _POWER_CACHE and _POWER_CACHE[0][0].size >= n:
        return _POWER_CACHE[0]
    size = max(n, 2 * _POWER_CACHE[0][0].size if _POWER_CACHE else 1 << 16)
    tables = []
    for base in (_Q, _P):
        table = np.full(size, base, dtype=np.uint64)
        table[0] = 1
        with np.errstate(over="ignore"):
            tables.append(np.cumprod(table, dtype=np.uint64))
    _POWER_CACHE[:] = [(tables[0], tables[1])]
    return _POWER_CACHE[0]


def _salt(kind: int, seed: int) -> np.uint64:
    """What each n-gram kind (1 word, 2 bigram, 10 + n character n-gram) adds to its hash."""
    return np.uint64((kind * 0x632BE59BD9B4E019 + seed * 0x85EBCA77) % 2**64)


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The splitmix64 finalizer (applied after the salt)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
