"""A reliability-weighted update records the estimates it used, so its posterior can be made
again from the log whatever order the stage read votes and estimates in."""

from __future__ import annotations

import itertools

import pytest

from labeltrail.events import AnnotatorReliabilityUpdated, ConsensusUpdated, Event, VoteCast
from labeltrail.folds.consensus_weights import PRIOR, parse_estimates, reproduce_posterior
from labeltrail.ontology import MODERATION_CLASSES
from tests.folds.test_folds import POS, _setup, _vote


def _estimate(
    annotator: str, accuracy: float, *, confusion: bool = False
) -> AnnotatorReliabilityUpdated:
    k = len(MODERATION_CLASSES)
    matrix = (
        [[accuracy if i == j else (1 - accuracy) / (k - 1) for j in range(k)] for i in range(k)]
        if confusion
        else []
    )
    return AnnotatorReliabilityUpdated.create(
        producer="t",
        annotator_id=annotator,
        schema_version="v3",
        method="dawid_skene" if confusion else "beta_gold",
        accuracy=accuracy,
        accuracy_lower=accuracy - 0.05,
        accuracy_upper=min(1.0, accuracy + 0.02),
        n_observations=40,
        classes=list(MODERATION_CLASSES) if confusion else [],
        confusion=matrix,
    )


def _votes() -> list[VoteCast]:
    return [_vote("a1", "non-toxic"), _vote("a2", "non-toxic"), _vote("a3", "harassment")]


def _run(order: tuple[Event, ...]) -> ConsensusUpdated:
    fold = _setup("reliability-weighted")
    updates = [o for e in order for o in fold.apply(e, POS) if isinstance(o, ConsensusUpdated)]
    return updates[-1]


def test_every_interleaving_reproduces_its_own_posterior() -> None:
    estimates = [_estimate("a1", 0.3), _estimate("a2", 0.35, confusion=True), _estimate("a3", 0.97)]
    by_id = {e.envelope.event_id: e for e in estimates}
    votes = {v.vote_id: v for v in _votes()}
    posteriors = set()
    for order in itertools.permutations([*_votes(), *estimates]):
        update = _run(order)  # made by the last vote: estimates after it are not in it
        assert reproduce_posterior(update, votes, by_id) == update.posterior
        posteriors.add(tuple(update.posterior))
    # The orders really give other posteriors: the recorded estimates make each reproducible.
    assert len(posteriors) >= 4


def test_the_estimates_are_named_per_vote_with_the_prior() -> None:
    estimate = _estimate("a3", 0.97)
    update = _run((estimate, *_votes()))
    named = parse_estimates(update.method_params["estimates"])
    assert named == [("a1", PRIOR), ("a2", PRIOR), ("a3", estimate.envelope.event_id)]
    assert float(update.method_params["prior_accuracy"]) == pytest.approx(0.7)
    # Another estimate under the same name gives another posterior: the check can fail.
    forged = {estimate.envelope.event_id: _estimate("a3", 0.4)}
    votes = {v.vote_id: v for v in _votes()}
    assert reproduce_posterior(update, votes, forged) != update.posterior


def test_majority_vote_records_no_estimates() -> None:
    fold = _setup("mv")
    out = [o for v in _votes() for o in fold.apply(v, POS)]
    assert all("estimates" not in o.method_params for o in out if isinstance(o, ConsensusUpdated))
