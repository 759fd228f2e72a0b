"""Calibrated consensus confidence: the map the reliability stage fits on gold, and the one
rule by which the consensus stage applies it.

The reliability stage keeps each item's complete crowd consensus (:class:`GoldPairs`) and, at
each periodic refit, fits a temperature on the items that also have a gold class
(:func:`fit_calibration`), published as ``CalibrationFitted`` on the ``quality`` topic. The
consensus stage applies the latest map it has read for the item's schema version
(:class:`Calibrations`) to the posterior: the calibrated confidence is what the confidence
gate compares and what the label records, and the update's ``method_params`` name the map
(``calibration``: its event id, ``temperature``, ``confidence``), so the calibrated
distribution is made again from the update alone (:func:`calibrated`). Before any map the
confidence is the posterior's top value, as before (``docs/quality.md``, "Calibrated
confidence").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from labeltrail.events.base import epoch_millis
from labeltrail.events.models import CalibrationFitted, ConsensusUpdated
from labeltrail.quality.calibration import TemperatureCalibrator, reliability_bins, temper

__all__ = [
    "CalibrationConfig",
    "Calibrations",
    "GoldPairs",
    "calibrated",
    "fit_calibration",
]

PRODUCER = "reliability"


@dataclass(frozen=True)
class CalibrationConfig:
    """How the reliability stage fits the map (settings section ``calibration``)."""

    min_gold: int = 30
    """Fit only on at least this many gold items with a complete crowd consensus."""
    method: str = "temperature"
    """``temperature``: one parameter, the label (argmax) never changes."""
    bins: int = 10
    """Equal-width confidence bins of the reliability diagram and the ECE."""
    include_verdicts: bool = False
    """Count expert verdicts (adjudications) as gold too: more items, but the hard ones."""


def calibrated(posterior: list[float], params: Mapping[str, str]) -> list[float]:
    """The calibrated distribution an update's ``method_params`` record: the posterior through
    the temperature of the map it names, or the posterior itself when it names none."""
    if "calibration" not in params:
        return list(posterior)
    return temper(posterior, float(params["temperature"]))


@dataclass
class Calibrations:
    """The latest map per schema version: the greatest ``(window_end, event id)`` read, so the
    choice does not depend on the order the maps were read in."""

    latest: dict[str, CalibrationFitted] = field(default_factory=dict)

    def update(self, event: CalibrationFitted) -> None:
        known = self.latest.get(event.schema_version)
        if known is None or (known.window_end, known.event_id) < (
            event.window_end,
            event.event_id,
        ):
            self.latest[event.schema_version] = event

    def params(self, version: str, classes: list[str], posterior: list[float]) -> dict[str, str]:
        """What an update under ``version`` records of the map it applies (empty: none yet,
        or one fitted for other classes)."""
        known = self.latest.get(version)
        if known is None or known.classes != classes:
            return {}
        confidence = max(temper(posterior, known.temperature))
        return {
            "calibration": known.event_id,
            "temperature": repr(known.temperature),
            "confidence": f"{confidence:.6f}",
        }


class _Complete(NamedTuple):
    n_votes: int
    occurred_ms: int
    event_id: str
    classes: list[str]
    posterior: list[float]


@dataclass
class GoldPairs:
    """What the reliability stage keeps to fit on: each item's complete consensus (the one with
    the most votes, then the latest, then the greatest id: the same whatever the read order)
    and each item's gold class."""

    consensus: dict[tuple[str, str], _Complete] = field(default_factory=dict)
    gold: dict[tuple[str, str], str] = field(default_factory=dict)
    fitted: dict[str, str] = field(default_factory=dict)
    """schema version -> the id of the last map fitted (an unchanged sample is not refitted)."""
    _classes: dict[tuple[str, ...], list[str]] = field(default_factory=dict, repr=False)
    """One list per class list, shared by the items kept (a service keeps weeks of them)."""

    def on_consensus(self, event: ConsensusUpdated) -> None:
        if event.status == "collecting":
            return
        item = (event.comment_id, event.schema_version)
        new = _Complete(
            len(event.vote_ids),
            epoch_millis(event.envelope.occurred_at),
            event.event_id,
            self._classes.setdefault(tuple(event.classes), list(event.classes)),
            list(event.posterior),
        )
        known = self.consensus.get(item)
        if known is None or new[:3] > known[:3]:
            self.consensus[item] = new

    def forget(self, before: dt.datetime) -> None:
        """Drop the consensus of items with no gold class older than ``before``."""
        cut = epoch_millis(before)
        for item in [i for i, c in self.consensus.items() if c.occurred_ms < cut]:
            if item not in self.gold:
                del self.consensus[item]

    def fit(
        self, config: CalibrationConfig, end: dt.datetime, cause: str | None, occurred: dt.datetime
    ) -> list[CalibrationFitted]:
        """A map per schema version over the gold items whose consensus came before ``end``."""
        cut = epoch_millis(end)
        by_version: dict[str, list[tuple[_Complete, str]]] = {}
        for item in sorted(self.consensus):
            c = self.consensus[item]
            label = self.gold.get(item)
            if label is not None and label in c.classes and c.occurred_ms < cut:
                by_version.setdefault(item[1], []).append((c, label))
        out: list[CalibrationFitted] = []
        for version in sorted(by_version):
            event = fit_calibration(version, by_version[version], config, end, cause, occurred)
            if event is not None and self.fitted.get(version) != event.event_id:
                self.fitted[version] = event.event_id
                out.append(event)
        return out


def fit_calibration(
    version: str,
    pairs: list[tuple[_Complete, str]],
    config: CalibrationConfig,
    end: dt.datetime,
    cause: str | None,
    occurred: dt.datetime,
) -> CalibrationFitted | None:
    """The map for one schema version, or None below ``min_gold`` items (or when the items do
    not share one class list: the latest schema's are kept)."""
    if config.method != "temperature":
        raise ValueError(f"calibration method must be 'temperature', got {config.method!r}")
    classes = pairs[-1][0].classes if pairs else []
    pairs = sorted((p for p in pairs if p[0].classes == classes), key=lambda p: p[0].event_id)
    if len(pairs) < max(config.min_gold, 1):
        return None
    posteriors = np.asarray([c.posterior for c, _ in pairs], dtype=np.float64)
    gold = np.asarray([classes.index(label) for _, label in pairs], dtype=np.int64)
    model = TemperatureCalibrator().fit(posteriors, gold)
    temperature = round(model.temperature_, 6)
    after = np.asarray([temper(list(p), temperature) for p in posteriors.tolist()])
    right = posteriors.argmax(axis=1) == gold
    before_bins = reliability_bins(posteriors.max(axis=1), right, config.bins)
    after_bins = reliability_bins(after.max(axis=1), right, config.bins)
    ids = [c.event_id for c, _ in pairs]
    return CalibrationFitted.create(
        producer=PRODUCER,
        id_parts=("calibration", version, config.method, config.bins, ids, [g for _, g in pairs]),
        occurred_at=occurred,
        causation_id=cause,
        correlation_id=version,
        schema_version=version,
        method="temperature",
        temperature=temperature,
        classes=classes,
        n_gold=len(pairs),
        ece_before=min(before_bins.ece, 1.0),
        ece_after=min(after_bins.ece, 1.0),
        bin_count_before=before_bins.n,
        bin_confidence_before=before_bins.confidence,
        bin_accuracy_before=before_bins.accuracy,
        bin_count_after=after_bins.n,
        bin_confidence_after=after_bins.confidence,
        bin_accuracy_after=after_bins.accuracy,
        consensus_ids=ids,
        window_end=end,
    )
