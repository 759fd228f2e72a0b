"""ConvAbuse (Cercas Curry et al., EMNLP 2021) as soft-labelled text, pure (csv + numpy).

Each row is a user utterance to a conversational agent with up to eight five-level abuse
ratings, read as ``not_abusive`` / ``abusive`` votes ("ambiguous" half of each): the soft
target is the mean vote, the hard label its argmax (ties: ``not_abusive``). There is no gold,
so accuracy is against that majority.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["CLASSES", "ConvAbuseSplit", "load_convabuse"]

CLASSES: tuple[str, ...] = ("not_abusive", "abusive")
_VOTE = {"1": 0.0, "0": 0.5, "-1": 1.0, "-2": 1.0, "-3": 1.0}


@dataclass(frozen=True)
class ConvAbuseSplit:
    """``targets: (n, 2)`` mean votes; ``labels: (n,)`` majority codes; ``n_votes: (n,)``."""

    texts: tuple[str, ...]
    targets: NDArray[np.float64]
    labels: NDArray[np.int64]
    n_votes: NDArray[np.int64]


def load_convabuse(folder: Path, split: str = "train") -> ConvAbuseSplit:
    """Read ``ConvAbuseEMNLP<split>.csv`` (train, valid or test) from ``folder``."""
    texts: list[str] = []
    shares: list[float] = []
    counts: list[int] = []
    with (folder / f"ConvAbuseEMNLP{split}.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            votes = [
                _VOTE[level]
                for n in range(1, 9)
                for level in _VOTE
                if row.get(f"Annotator{n}_is_abuse.{level}", "") in ("1", "1.0")
            ]
            text = (row.get("user") or "").strip()
            if not votes or not text:
                continue
            texts.append(text)
            shares.append(float(np.mean(votes)))
            counts.append(len(votes))
    abusive = np.array(shares)
    targets = np.stack([1.0 - abusive, abusive], axis=1)
    return ConvAbuseSplit(
        texts=tuple(texts),
        targets=targets,
        labels=(abusive > 0.5).astype(np.int64),
        n_votes=np.array(counts, dtype=np.int64),
    )
