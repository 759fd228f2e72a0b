"""Rendezvous ranking is defined by ``draw``: a candidate's key is ``draw(*parts, candidate)``."""

from __future__ import annotations

import pytest

from labeltrail.folds.draws import draw, rank

CROWD = [f"crowd-{i:02d}" for i in range(25)]


@pytest.mark.parametrize(
    "parts", [(), ("task-1",), ("honeypot-annotator", "task-7"), ("t", 3, 0.5, None)]
)
def test_rank_orders_by_the_draw_of_parts_and_candidate(parts: tuple[object, ...]) -> None:
    expected = sorted(CROWD, key=lambda c: (draw(*parts, c), c))
    assert rank(reversed(CROWD), *parts) == expected
    assert rank(CROWD, *parts, first=3) == expected[:3]
