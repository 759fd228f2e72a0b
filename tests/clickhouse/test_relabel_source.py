"""``clickhouse.relabel``: the join of the labels' vote ids to the votes, by hash in numpy
(a second hash of each id, here its CRC-32, checks the pair the first one found)."""

from __future__ import annotations

import zlib

import pyarrow as pa
import pytest

from labeltrail.clickhouse.relabel import _VoteIndex
from labeltrail.exceptions import LabeltrailError

CLASSES = ["ok", "bad"]


def _check(vote_id: str) -> int:
    return zlib.crc32(vote_id.encode())


def _votes(rows: list[tuple[int, str, str, str]]) -> pa.Table:
    hashes, ids, annotators, labels = zip(*rows, strict=True)
    return pa.table(
        {
            "hash": pa.array(hashes, pa.uint64()),
            "check": pa.array([_check(i) for i in ids], pa.uint64()),
            "annotator_id": annotators,
            "label": labels,
        }
    )


def _labels(named: list[list[tuple[int, str]]]) -> pa.Table:
    return pa.table(
        {
            "vote_hashes": pa.array([[h for h, _ in n] for n in named], pa.list_(pa.uint64())),
            "vote_checks": pa.array(
                [[_check(v) for _, v in n] for n in named], pa.list_(pa.uint64())
            ),
        }
    )


def test_each_id_is_its_first_copy_in_log_order_and_missing_ids_are_left_out() -> None:
    index = _VoteIndex.of(
        _votes([(7, "v1", "ann", "ok"), (3, "v2", "bob", "bad"), (7, "v1", "cat", "bad")])
    )
    coded = index.named(_labels([[(3, "v2"), (7, "v1")], [(9, "v9")]]), list(CLASSES))
    assert coded.item.tolist() == [0, 0]
    assert coded.annotator_ids[coded.annotator].tolist() == ["bob", "ann"]
    assert [CLASSES[j] for j in coded.label.tolist()] == ["bad", "ok"]


def test_two_ids_with_one_hash_are_an_error_not_a_wrong_vote() -> None:
    index = _VoteIndex.of(_votes([(5, "v1", "ann", "ok"), (5, "v2", "bob", "bad")]))
    with pytest.raises(LabeltrailError, match="share a 64-bit hash"):
        index.named(_labels([[(5, "v2")]]), list(CLASSES))
