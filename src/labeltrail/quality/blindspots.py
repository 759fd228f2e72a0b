"""Agreement is not correctness: per-slice agreement beside gold accuracy, and a detector for
slices where annotators agree but are wrong (the article's dog-whistle failure).

What "high agreement" means depends on the metric, so it is decided here, once, by each
metric's own scale (:data:`AGREEMENT_SCALES`, :func:`agreement_level`, :func:`is_high_agreement`);
the audit commands, the demo summary and this module's detector all ask these functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from labeltrail.exceptions import QualityError, VoteFormatError
from labeltrail.quality._encoding import NO_GOLD, Votes
from labeltrail.quality.agreement_items import per_item_agreement
from labeltrail.quality.consensus import MajorityVote

__all__ = [
    "AGREEMENT_SCALES",
    "COHEN_KAPPA",
    "FLEISS_KAPPA",
    "HIGH",
    "KRIPPENDORFF_ALPHA_NOMINAL",
    "PAIRWISE_AGREEMENT",
    "AgreementScale",
    "SliceReport",
    "agreement_level",
    "detect_blind_spots",
    "high_agreement_from",
    "is_high_agreement",
    "slice_report",
]

KRIPPENDORFF_ALPHA_NOMINAL = "krippendorff_alpha_nominal"
PAIRWISE_AGREEMENT = "pairwise_agreement"
"""Mean share of agreeing vote pairs per item (Fleiss' per-item P_i), not chance-corrected."""
FLEISS_KAPPA = "fleiss_kappa"
COHEN_KAPPA = "cohen_kappa"
HIGH = "high"
"""The level word every scale uses for agreement high enough to call the crowd consistent."""


@dataclass(frozen=True)
class AgreementScale:
    """A metric's own reading of its values: ``bands`` are (lower bound, word), highest first;
    a value gets the word of the first band it reaches. ``high`` names the bands that count as
    high agreement; ``source`` is the convention the bands come from."""

    source: str
    bands: tuple[tuple[float, str], ...]
    high: frozenset[str]

    def level(self, value: float) -> str:
        for lower, word in self.bands:
            if value >= lower:
                return word
        return self.bands[-1][1]

    @property
    def high_from(self) -> float:
        """The least value read as high agreement."""
        return min(lower for lower, word in self.bands if word in self.high)


_KRIPPENDORFF = AgreementScale(
    "Krippendorff (2004): alpha >= 0.800 reliable, >= 0.667 tentative conclusions only",
    ((0.8, HIGH), (0.667, "tentative"), (-math.inf, "low")),
    frozenset({HIGH}),
)
_LANDIS_KOCH = AgreementScale(
    "Landis and Koch (1977); substantial (> 0.60) and above read as high",
    (
        (0.81, "almost perfect"),
        (0.61, "substantial"),
        (0.41, "moderate"),
        (0.21, "fair"),
        (0.0, "slight"),
        (-math.inf, "poor"),
    ),
    frozenset({"almost perfect", "substantial"}),
)
_PERCENT = AgreementScale(
    "raw agreement, not chance-corrected: >= 0.80 is the usual minimum (McHugh 2012)",
    ((0.8, HIGH), (-math.inf, "low")),
    frozenset({HIGH}),
)

AGREEMENT_SCALES: dict[str, AgreementScale] = {
    KRIPPENDORFF_ALPHA_NOMINAL: _KRIPPENDORFF,
    PAIRWISE_AGREEMENT: _PERCENT,
    FLEISS_KAPPA: _LANDIS_KOCH,
    COHEN_KAPPA: _LANDIS_KOCH,
}
"""The one rule for reading agreement, per metric name (as ``IaaWindowClosed.metric`` and the
audit queries name them). Alpha near 0 inside a slice whose items share a class is expected
(every vote looks like chance), so a chance-corrected metric and raw agreement are never read
on one scale."""


def _scale(metric: str) -> AgreementScale:
    try:
        return AGREEMENT_SCALES[metric]
    except KeyError:
        known = ", ".join(sorted(AGREEMENT_SCALES))
        raise QualityError(f"no agreement scale for metric {metric!r} (known: {known})") from None


def agreement_level(metric: str, value: float | None) -> str:
    """The word ``metric``'s own scale gives ``value`` (``"n/a"`` when there is no value)."""
    scale = _scale(metric)
    if value is None or math.isnan(value):
        return "n/a"
    return scale.level(value)


def is_high_agreement(metric: str, value: float | None) -> bool:
    """Whether ``value`` is high agreement on ``metric``'s own scale."""
    return agreement_level(metric, value) in _scale(metric).high


def high_agreement_from(metric: str) -> float:
    """The least value of ``metric`` read as high agreement."""
    return _scale(metric).high_from


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
    min_agreement: float | None = None,
    alpha: float = 0.05,
    min_gap: float = 0.0,
    min_gold: int = 5,
) -> list[SliceReport]:
    """Flag slices with agreement >= ``min_agreement`` whose gold accuracy is significantly
    below the accuracy on all other gold items. Agreement is pairwise (share of agreeing vote
    pairs); ``min_agreement`` defaults to where its scale reads high
    (``high_agreement_from(PAIRWISE_AGREEMENT)``).

    Test: one-sided Fisher exact test on (correct, wrong) x (slice, rest), p-values Holm-adjusted
    over the slices that are tested, flag when adjusted p < ``alpha`` and the accuracy gap is at
    least ``min_gap``. Slices with fewer than ``min_gold`` gold items are reported but never
    tested or flagged; small slices otherwise rarely reach significance, so they stay quiet.
    """
    if not 0 < alpha < 1:
        raise QualityError("alpha must be in (0, 1)")
    if min_agreement is None:
        min_agreement = high_agreement_from(PAIRWISE_AGREEMENT)
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
