"""Reference crowd data sets (``../shared/datasets``) and the two scoring protocols they use.

Two formats: Zheng et al.'s ``answer.csv`` (item, worker, answer) + ``truth.csv`` (item, truth),
and MACE's ``rte.csv`` (one line per item, one column per annotator, empty = no label) +
``rte.key``. Both load to :class:`Votes` and gold codes (n_items,) with ``NO_GOLD`` elsewhere.

Protocols (every figure names one, see docs/quality.md):

* ``crowdkit``: duplicate rows kept, ties to the lowest label (``TIE_RULE``), accuracy over gold
  items with at least one vote; reproduces the Crowd-Kit paper's MV row exactly.
* ``bayes``: exact duplicate rows dropped, ties split fractionally (an item tied between m
  classes, gold among them, scores 1/m); the protocol of the IBCC/EBCC notebook values.

Standard library csv and numpy only, like the rest of the quality core.
"""

from __future__ import annotations

import csv
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.exceptions import VoteFormatError
from labeltrail.quality._encoding import NO_GOLD, Votes, argmax_lowest

__all__ = [
    "PROTOCOLS",
    "REFERENCE_SETS",
    "Protocol",
    "ReferenceSet",
    "accuracy",
    "drop_duplicate_votes",
    "load_reference",
]

Protocol = Literal["crowdkit", "bayes"]
PROTOCOLS: tuple[Protocol, ...] = ("crowdkit", "bayes")


@dataclass(frozen=True)
class ReferenceSet:
    """A reference set: short name, folder under the datasets root, names elsewhere."""

    name: str
    folder: str
    notebook_name: str | None = None  # name in the IBCC/EBCC notebook outputs


REFERENCE_SETS: tuple[ReferenceSet, ...] = (
    ReferenceSet("D_Product", "zheng2017_d_jn-product", "product"),
    ReferenceSet("D_PosSent", "zheng2017_d_sentiment", "senti_1k"),
    ReferenceSet("S_Rel", "zheng2017_s4_Relevance"),
    ReferenceSet("S_Adult", "zheng2017_s5_AdultContent", "adult"),
    ReferenceSet("Duck", "zheng2017_d_Duck_Identification"),
    ReferenceSet("Dog", "zheng2017_s4_Dog_data", "dog"),
    ReferenceSet("Face", "zheng2017_s4_Face_Sentiment_Identification", "face"),
    ReferenceSet("RTE", "snow2008_rte_mace", "rte"),
)


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return [row for row in csv.reader(fh) if row]


def _labels(values: list[str]) -> NDArray[np.int64]:
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError as exc:
        raise VoteFormatError(f"labels must be integers: {exc}") from exc


def load_reference(folder: Path) -> tuple[Votes, NDArray[np.int64]]:
    """Votes and gold codes of a reference folder (Zheng or MACE format), duplicates kept."""
    if (folder / "answer.csv").exists():
        answers = _rows(folder / "answer.csv")[1:]
        truth = _rows(folder / "truth.csv")[1:]
        votes = Votes.from_long(
            np.array([r[0] for r in answers], dtype=object),
            np.array([r[1] for r in answers], dtype=object),
            _labels([r[2] for r in answers]),
        )
        gold: dict[Hashable, Hashable] = dict(
            zip([r[0] for r in truth], _labels([r[1] for r in truth]).tolist(), strict=True)
        )
        return votes, votes.encode_gold(gold)
    csvs = sorted(folder.glob("*.csv"))
    keys = sorted(folder.glob("*.key"))
    if len(csvs) != 1 or len(keys) != 1:
        raise VoteFormatError(f"{folder}: neither answer.csv nor one MACE .csv/.key pair")
    grid = _rows(csvs[0])
    items, workers, labels = [], [], []
    for i, row in enumerate(grid):
        for w, cell in enumerate(row):
            if cell.strip():
                items.append(i)
                workers.append(w)
                labels.append(cell.strip())
    votes = Votes.from_long(np.array(items), np.array(workers), _labels(labels))
    key = _labels([r[0] for r in _rows(keys[0])])
    by_line: dict[Hashable, Hashable] = dict(enumerate(key.tolist()))
    return votes, votes.encode_gold(by_line)


def drop_duplicate_votes(votes: Votes) -> Votes:
    """The votes without exact duplicate (item, annotator, label) rows, first occurrence kept."""
    rows = np.stack([votes.item, votes.annotator, votes.label], axis=1)
    _, first = np.unique(rows, axis=0, return_index=True)
    keep = np.sort(first)
    return Votes(
        votes.item[keep],
        votes.annotator[keep],
        votes.label[keep],
        votes.item_ids,
        votes.annotator_ids,
        votes.classes,
    )


def accuracy(
    posteriors: NDArray[np.floating], gold: NDArray[np.int64], ties: Literal["lowest", "fractional"]
) -> float:
    """Accuracy over items with gold: ``lowest`` = TIE_RULE, ``fractional`` = 1/m per m-way tie
    that includes the gold label. posteriors: (n_items, n_classes); gold: (n_items,)."""
    has = gold != NO_GOLD
    if not has.any():
        raise VoteFormatError("no item has gold")
    p, g = posteriors[has], gold[has]
    if ties == "lowest":
        return float(np.mean(argmax_lowest(p) == g))
    top = p == p.max(axis=1, keepdims=True)
    credit = top[np.arange(g.shape[0]), g] / top.sum(axis=1)
    return float(np.mean(credit))
