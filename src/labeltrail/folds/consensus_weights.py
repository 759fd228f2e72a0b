"""What the consensus fold knows of each annotator's reliability, and the vote weights from it.

An annotator's weight is the latest ``AnnotatorReliabilityUpdated``: a Dawid-Skene confusion
matrix where one exists for the item's classes, else the honeypot/gold (or adjudication)
accuracy as a one-coin model, else ``prior_accuracy``. The log-likelihood columns come from
:mod:`labeltrail.quality.item` (the quality core's per-item rules) and are cached per annotator
until its reliability changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from labeltrail.events.models import AnnotatorReliabilityUpdated
from labeltrail.quality.item import add_column, confusion_columns, normalise, one_coin_columns

__all__ = ["Reliabilities", "Voted"]

_NORMALISED_MAX = 200_000


class Voted(Protocol):
    @property
    def annotator_id(self) -> str: ...
    @property
    def label(self) -> str: ...


_PREFERENCE = ("dawid_skene", "beta_gold", "adjudication")
"""Dawid-Skene's estimate first (it has a confusion matrix), then gold/honeypots."""


@dataclass
class Reliabilities:
    prior_accuracy: float
    """Accuracy assumed for an annotator with no reliability estimate yet."""
    latest: dict[tuple[str, str], AnnotatorReliabilityUpdated] = field(default_factory=dict)
    """(annotator, method) -> the latest estimate by that method."""
    _columns: dict[str, dict[tuple[str, ...], dict[str, list[float]]]] = field(
        default_factory=dict, repr=False
    )
    _weight: dict[str, str] = field(default_factory=dict, repr=False)
    """annotator -> ``"<id>=<accuracy:.3f>"``, until its reliability changes."""
    _normalised: dict[tuple[float, ...], list[float]] = field(default_factory=dict, repr=False)
    """log-posterior -> posterior: items with the same votes' columns share one (a pure
    function of the key, so a hit returns what a recomputation would)."""

    def update(self, event: AnnotatorReliabilityUpdated) -> None:
        self.latest[(event.annotator_id, event.method)] = event
        self._columns.pop(event.annotator_id, None)
        self._weight.pop(event.annotator_id, None)

    def estimate(self, annotator: str) -> AnnotatorReliabilityUpdated | None:
        for method in _PREFERENCE:
            known = self.latest.get((annotator, method))
            if known is not None:
                return known
        return None

    def accuracy(self, annotator: str) -> float:
        known = self.estimate(annotator)
        return known.accuracy if known is not None else self.prior_accuracy

    def weight_text(self, annotator: str) -> str:
        """``"<id>=<accuracy:.3f>"``: how the update's ``method_params`` records the weight."""
        text = self._weight.get(annotator)
        if text is None:
            text = self._weight[annotator] = f"{annotator}={self.accuracy(annotator):.3f}"
        return text

    def columns(self, annotator: str, classes: list[str]) -> dict[str, list[float]]:
        """answer -> [log P(answer | truth = c) for c in classes], cached per annotator: from
        the Dawid-Skene confusion matrix where one is known for these classes, else a
        one-coin model at the annotator's accuracy."""
        per_classes = self._columns.setdefault(annotator, {})
        key = tuple(classes)
        cached = per_classes.get(key)
        if cached is not None:
            return cached
        known = self.latest.get((annotator, "dawid_skene"))
        if known is not None and known.confusion and known.classes == classes:
            columns = confusion_columns(known.confusion, classes)
        else:
            columns = one_coin_columns(self.accuracy(annotator), classes)
        per_classes[key] = columns
        return columns

    def log_posterior(self, votes: Sequence[Voted], classes: list[str]) -> list[float]:
        """The unnormalised log-posterior: log-likelihood columns summed in vote order."""
        logp = [0.0] * len(classes)
        for vote in votes:
            logp = add_column(logp, self.columns(vote.annotator_id, classes)[vote.label])
        return logp

    def posterior(self, logp: list[float]) -> list[float]:
        """:func:`~labeltrail.quality.item.normalise` of ``logp``, shared between the items
        with the same log-posterior (a fresh list each time)."""
        key = tuple(logp)
        shared = self._normalised.get(key)
        if shared is None:
            if len(self._normalised) >= _NORMALISED_MAX:
                self._normalised.clear()
            shared = self._normalised[key] = normalise(logp)
        return list(shared)
