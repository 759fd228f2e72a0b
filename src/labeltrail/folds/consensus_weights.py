"""What the consensus fold knows of each annotator's reliability, and the vote weights from it.

An annotator's weight is the latest ``AnnotatorReliabilityUpdated``: a Dawid-Skene confusion
matrix where one exists for the item's classes, else the honeypot/gold (or adjudication)
accuracy as a one-coin model, else ``prior_accuracy``. The log-likelihood columns come from
:mod:`labeltrail.quality.item` (the quality core's per-item rules) and are cached per annotator
until its reliability changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from labeltrail.events.models import AnnotatorReliabilityUpdated, ConsensusUpdated
from labeltrail.quality.item import add_column, confusion_columns, normalise, one_coin_columns

__all__ = ["PRIOR", "Reliabilities", "Voted", "parse_estimates", "reproduce_posterior"]

_NORMALISED_MAX = 200_000


class Voted(Protocol):
    @property
    def annotator_id(self) -> str: ...
    @property
    def label(self) -> str: ...


PRIOR = "prior"
"""What ``estimates`` names for an annotator weighted at the prior accuracy (no estimate yet)."""


def parse_estimates(text: str) -> list[tuple[str, str]]:
    """``method_params["estimates"]`` -> [(annotator, event id or :data:`PRIOR`)], in vote
    order."""
    out: list[tuple[str, str]] = []
    for part in text.split(","):
        if part:
            annotator, _, used = part.rpartition("@")
            out.append((annotator, used))
    return out


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
    _used: dict[str, str] = field(default_factory=dict, repr=False)
    """annotator -> ``"<id>@<estimate's event id>"`` (``@prior`` without one), likewise."""
    _normalised: dict[tuple[float, ...], list[float]] = field(default_factory=dict, repr=False)
    """log-posterior -> posterior: items with the same votes' columns share one (a pure
    function of the key, so a hit returns what a recomputation would)."""

    def update(self, event: AnnotatorReliabilityUpdated) -> None:
        self.latest[(event.annotator_id, event.method)] = event
        self._columns.pop(event.annotator_id, None)
        self._weight.pop(event.annotator_id, None)
        self._used.pop(event.annotator_id, None)

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

    def estimate_text(self, annotator: str) -> str:
        """``"<id>@<event id>"``: the estimate behind the annotator's column (the one
        :meth:`estimate` prefers, whose confusion matrix or accuracy :meth:`columns` uses), or
        ``"<id>@prior"``; an update's ``method_params["estimates"]`` lists one per vote, so
        :meth:`from_estimates` can make its posterior again."""
        text = self._used.get(annotator)
        if text is None:
            known = self.estimate(annotator)
            used = known.envelope.event_id if known is not None else PRIOR
            text = self._used[annotator] = f"{annotator}@{used}"
        return text

    @classmethod
    def from_estimates(
        cls, prior_accuracy: float, estimates: Iterable[AnnotatorReliabilityUpdated]
    ) -> Reliabilities:
        """The reliabilities an update saw, from the estimates its ``estimates`` names (read
        back from the log by event id): each annotator's column is then the one it had."""
        out = cls(prior_accuracy)
        for estimate in estimates:
            out.update(estimate)
        return out

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


def reproduce_posterior(
    update: ConsensusUpdated,
    votes: Mapping[str, Voted],
    estimates: Mapping[str, AnnotatorReliabilityUpdated],
) -> list[float]:
    """The posterior of a reliability-weighted ``update`` made again from what it records: its
    votes (by id, in its order) and the estimates its ``method_params["estimates"]`` names (by
    event id) at its ``prior_accuracy``. Equal to ``update.posterior`` whatever order the stage
    read votes and estimates in; a missing vote or estimate raises ``KeyError``."""
    params = update.method_params
    named = [e for _, e in parse_estimates(params.get("estimates", "")) if e != PRIOR]
    reliability = Reliabilities.from_estimates(
        float(params["prior_accuracy"]), [estimates[e] for e in named]
    )
    item_votes = [votes[v] for v in update.vote_ids]
    return reliability.posterior(reliability.log_posterior(item_votes, list(update.classes)))
