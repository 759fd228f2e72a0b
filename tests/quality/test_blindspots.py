from __future__ import annotations

import numpy as np

from labeltrail.quality import NO_GOLD, Votes
from labeltrail.quality.blindspots import detect_blind_spots


def _crowd(n_per_slice: int, blind_items: int, seed: int) -> tuple[Votes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    slices = np.array(["plain"] * n_per_slice + ["dogwhistle"] * blind_items)
    n = slices.size
    truth = rng.integers(0, 2, n)
    truth[slices == "dogwhistle"] = 1  # all toxic
    items, anns, labs = [], [], []
    for i in range(n):
        for a in range(3):
            if slices[i] == "dogwhistle":
                lab = 0  # everyone shares the blind spot: unanimous and wrong
            else:
                lab = truth[i] if rng.random() < 0.9 else 1 - truth[i]
            items.append(i)
            anns.append(a)
            labs.append(int(lab))
    gold = np.where(rng.random(n) < 0.5, truth, NO_GOLD)
    return Votes.from_codes(items, anns, labs, n_classes=2), gold, slices


def test_flags_unanimous_but_wrong_slice() -> None:
    v, gold, slices = _crowd(400, 60, seed=0)
    reports = {r.slice: r for r in detect_blind_spots(v, gold, slices)}
    blind = reports["dogwhistle"]
    assert blind.agreement == 1.0 and blind.gold_accuracy == 0.0 and blind.flagged
    assert not reports["plain"].flagged


def test_small_slices_do_not_raise_noise() -> None:
    v, gold, slices = _crowd(400, 2, seed=1)
    gold[slices == "dogwhistle"] = 1
    reports = {r.slice: r for r in detect_blind_spots(v, gold, slices)}
    assert reports["dogwhistle"].gold_accuracy == 0.0
    assert not reports["dogwhistle"].flagged  # 2 gold items: below min_gold


def test_one_miss_in_a_small_slice_is_not_significant() -> None:
    v, gold, slices = _crowd(400, 8, seed=2)
    blind = np.flatnonzero(slices == "dogwhistle")
    gold[blind] = 0  # the unanimous label is right ...
    gold[blind[0]] = 1  # ... except once
    report = {r.slice: r for r in detect_blind_spots(v, gold, slices)}["dogwhistle"]
    assert report.gold_accuracy == 7 / 8 and report.p_value > 0.05 and not report.flagged
