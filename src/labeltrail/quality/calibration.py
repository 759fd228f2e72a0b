"""Calibrated confidence per item: temperature scaling fitted on gold items, ECE and the
reliability diagram's bins (what the reliability stage publishes as ``CalibrationFitted``,
docs/quality.md, "Calibrated confidence")."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

from labeltrail.exceptions import NotFittedError, VoteFormatError
from labeltrail.quality._encoding import NO_GOLD

__all__ = [
    "ReliabilityBins",
    "TemperatureCalibrator",
    "expected_calibration_error",
    "reliability_bins",
    "temper",
    "temper_rows",
]

_FLOOR = 1e-12


def _tempered(log_p: NDArray[np.float64], temperature: float) -> NDArray[np.float64]:
    z = log_p / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


class TemperatureCalibrator:
    """Temperature scaling of posteriors: ``softmax(log p / T)``, T fitted by minimising the
    negative log-likelihood of gold labels. T > 1 softens overconfident models such as
    Dawid-Skene on few votes. Learned: ``temperature_``.
    """

    def __init__(self, bounds: tuple[float, float] = (0.05, 20.0)) -> None:
        self.bounds = bounds

    def fit(self, posteriors: ArrayLike, gold: ArrayLike) -> TemperatureCalibrator:
        """posteriors: (n_items, n_classes); gold: (n_items,) codes, -1 = no gold."""
        p = np.asarray(posteriors, dtype=np.float64)
        g = np.asarray(gold, dtype=np.int64)
        if p.ndim != 2 or g.shape != (p.shape[0],):
            raise VoteFormatError("posteriors (n_items, n_classes) and gold (n_items,) expected")
        rows = np.flatnonzero(g != NO_GOLD)
        if rows.size == 0:
            raise VoteFormatError("calibration needs at least one gold item")
        log_p = np.log(np.clip(p[rows], _FLOOR, None))
        target = g[rows]

        def nll(log_t: float) -> float:
            q = _tempered(log_p, float(np.exp(log_t)))
            return float(-np.log(np.clip(q[np.arange(rows.size), target], _FLOOR, None)).sum())

        lo, hi = np.log(self.bounds[0]), np.log(self.bounds[1])
        res = minimize_scalar(nll, bounds=(lo, hi), method="bounded")
        self.temperature_ = float(np.exp(res.x))
        return self

    def transform(self, posteriors: ArrayLike) -> NDArray[np.float64]:
        """Calibrated posteriors (n_items, n_classes); argmax (and so the label) is unchanged."""
        if not hasattr(self, "temperature_"):
            raise NotFittedError("TemperatureCalibrator is not fitted")
        return temper_rows(posteriors, self.temperature_)


def temper_rows(posteriors: ArrayLike, temperature: float) -> NDArray[np.float64]:
    """Rows ``(n, n_classes)`` through a fitted temperature, ``softmax(log p / T)``, in
    float64 and unrounded (the scorer's batch path; :func:`temper` is one posterior)."""
    p = np.asarray(posteriors, dtype=np.float64)
    return _tempered(np.log(np.clip(p, _FLOOR, None)), temperature)


def temper(posterior: list[float], temperature: float) -> list[float]:
    """One posterior through a fitted temperature (``softmax(log p / T)``), rounded to 6
    places like the posteriors the consensus stage records; ``T = 1`` returns it unchanged."""
    if temperature == 1.0:
        return list(posterior)
    z = [math.log(max(p, _FLOOR)) / temperature for p in posterior]
    top = max(z)
    e = [math.exp(x - top) for x in z]
    total = sum(e)
    return [round(x / total, 6) for x in e]


class ReliabilityBins(NamedTuple):
    """A reliability diagram's equal-width confidence bins: per bin, how many items, their mean
    confidence and the share right (0 for an empty bin)."""

    n: list[int]
    confidence: list[float]
    accuracy: list[float]

    @property
    def ece(self) -> float:
        """The expected calibration error these bins give."""
        total = sum(self.n)
        rows = zip(self.n, self.confidence, self.accuracy, strict=True)
        gaps = [k * abs(a - c) for k, c, a in rows]
        return float(sum(gaps) / total) if total else 0.0


def reliability_bins(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int = 10
) -> ReliabilityBins:
    """confidence: (n,) in [0, 1]; correct: (n,) booleans; ``n_bins`` equal-width bins."""
    c = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if c.shape != ok.shape or c.ndim != 1 or c.size == 0:
        raise VoteFormatError("confidence and correct must be equal-length 1-D arrays")
    bins = np.minimum((c * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=c, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=ok.astype(np.float64), minlength=n_bins)
    safe = np.maximum(count, 1)
    return ReliabilityBins(
        [int(k) for k in count],
        [float(x) for x in conf_sum / safe],
        [float(x) for x in acc_sum / safe],
    )


def expected_calibration_error(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int = 10
) -> float:
    """ECE with equal-width bins: sum over bins of |accuracy - mean confidence| x bin share.

    confidence: (n,) in [0, 1]; correct: (n,) booleans.
    """
    return reliability_bins(confidence, correct, n_bins).ece
