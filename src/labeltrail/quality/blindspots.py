"""Agreement is not correctness: per-slice agreement beside gold accuracy, and a detector for
slices where annotators agree but are wrong (the article's dog-whistle failure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from labeltrail.quality._encoding import NO_GOLD, Votes
from labeltrail.quality.agreement_items import per_item_agreement
from labeltrail.quality.consensus import MajorityVote
from labeltrail.quality.exceptions import QualityError, VoteFormatError

__all__ = ["SliceReport", "detect_blind_spots", "slice_report"]


@dataclass(frozen=True)
class SliceReport:
    """One slice: items, gold items, mean per-item agreement (share of agreeing vote pairs),
    consensus accuracy on gold, accuracy of all other gold items, one-sided p-value that the
    slice is less accurate than the rest (Holm-adjusted across slices), and the flag."""

    slice: Any
    n_items: int
    n_gold: int
    agreement: float
    gold_accuracy: float
    reference_accuracy: float
    p_value: float
    flagged: bool


def slice_report(
    votes: Votes,
    gold: ArrayLike,
    slices: ArrayLike,
    labels: ArrayLike | None = None,
) -> list[tuple[Any, int, int, float, int, int]]:
    """Raw per-slice figures: (slice, n_items, n_gold, agreement, n_correct, n_gold_rest_correct).

    gold: (n_items,) codes, -1 = none; slices: (n_items,) slice key per item; labels: (n_items,)
    consensus codes (default: majority vote under the tie rule).
    """
    g = np.asarray(gold, dtype=np.int64)
    s = np.asarray(slices)
    if g.shape != (votes.n_items,) or s.shape != (votes.n_items,):
        raise VoteFormatError("gold and slices need one entry per item")
    lab = MajorityVote().fit_predict(votes) if labels is None else np.asarray(labels, np.int64)
    if lab.shape != (votes.n_items,):
        raise VoteFormatError("labels need one entry per item")
    agree = per_item_agreement(votes)
    has_gold = g != NO_GOLD
    correct = has_gold & (lab == g)
    total_correct = int(correct.sum())
    out = []
    for key in np.unique(s):
        m = s == key
        a = agree[m]
        a = a[~np.isnan(a)]
        mean_agree = float(a.mean()) if a.size else float("nan")
        n_correct = int(correct[m].sum())
        out.append(
            (
                key,
                int(m.sum()),
                int(has_gold[m].sum()),
                mean_agree,
                n_correct,
                total_correct - n_correct,
            )
        )
    return out


def detect_blind_spots(
    votes: Votes,
    gold: ArrayLike,
    slices: ArrayLike,
    *,
    labels: ArrayLike | None = None,
    min_agreement: float = 0.8,
    alpha: float = 0.05,
    min_gap: float = 0.0,
    min_gold: int = 5,
) -> list[SliceReport]:
    """Flag slices with agreement >= ``min_agreement`` whose gold accuracy is significantly
    below the accuracy on all other gold items.

    Test: one-sided Fisher exact test on (correct, wrong) x (slice, rest), p-values Holm-adjusted
    over the slices that are tested, flag when adjusted p < ``alpha`` and the accuracy gap is at
    least ``min_gap``. Slices with fewer than ``min_gold`` gold items are reported but never
    tested or flagged; small slices otherwise rarely reach significance, so they stay quiet.
    """
    if not 0 < alpha < 1:
        raise QualityError("alpha must be in (0, 1)")
    g = np.asarray(gold, dtype=np.int64)
    n_gold_total = int((g != NO_GOLD).sum()) if g.ndim == 1 else 0
    rows = slice_report(votes, g, slices, labels)
    raw_p: list[float] = []
    prepared = []
    for key, n_items, n_gold, agree, n_ok, rest_ok in rows:
        rest_n = n_gold_total - n_gold
        acc = n_ok / n_gold if n_gold else float("nan")
        ref = rest_ok / rest_n if rest_n else float("nan")
        if n_gold >= max(min_gold, 1) and rest_n:
            table = [[n_ok, n_gold - n_ok], [rest_ok, rest_n - rest_ok]]
            p = float(stats.fisher_exact(table, alternative="less").pvalue)
        else:
            p = 1.0
        raw_p.append(p)
        prepared.append((key, n_items, n_gold, agree, acc, ref))
    adjusted = _holm(np.array(raw_p))
    reports = []
    for (key, n_items, n_gold, agree, acc, ref), p in zip(prepared, adjusted, strict=True):
        flagged = bool(
            agree >= min_agreement and p < alpha and n_gold > 0 and (ref - acc) >= min_gap
        )
        reports.append(SliceReport(key, n_items, n_gold, agree, acc, ref, float(p), flagged))
    return reports


def _holm(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Holm step-down adjusted p-values (n,)."""
    n = p.size
    if n == 0:
        return p
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (n - np.arange(n))))
    out = np.empty(n)
    out[order] = adj
    return out
