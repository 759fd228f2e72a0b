"""Calibrated consensus confidence: the reliability stage fits the map on gold, the consensus
stage gates with the calibrated value and names the map, labels record it; before any map the
confidence is the posterior's top value (docs/quality.md, "Calibrated confidence")."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from labeltrail.events import (
    AdjudicationRecorded,
    AdjudicationRequested,
    CalibrationFitted,
    ConsensusUpdated,
    Event,
    LabelCommitted,
    TaskCreated,
    VoteCast,
)
from labeltrail.events.models import GOLD_REQUEST_PREFIX
from labeltrail.folds.calibration import CalibrationConfig, calibrated
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from labeltrail.ontology import MODERATION_CLASSES, moderation_schema_v3
from labeltrail.quality.calibration import expected_calibration_error, temper
from tests.folds.test_folds import POS

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
CLASSES = list(MODERATION_CLASSES)


def _item(i: int, labels: list[str], at: dt.datetime) -> list[Event]:
    """A crowd task on comment c<i> and one vote per label, by a<j>."""
    annotators = [f"a{(i + j) % 9}" for j in range(len(labels))]
    task = TaskCreated.create(
        producer="t",
        id_parts=("t", i),
        occurred_at=at,
        task_id=f"t{i}",
        comment_id=f"c{i}",
        schema_version="v3",
        kind="crowd",
        reason="random_audit",
        questions=[],
        redundancy=len(labels),
        annotators=annotators,
    )
    votes: list[Event] = [
        VoteCast.create(
            producer="t",
            id_parts=("v", i, j),
            occurred_at=at + dt.timedelta(minutes=j),
            vote_id=f"v{i}-{j}",
            task_id=f"t{i}",
            comment_id=f"c{i}",
            annotator_id=annotators[j],
            schema_version="v3",
            label=label,
            time_spent_ms=1000,
        )
        for j, label in enumerate(labels)
    ]
    return [task, *votes]


def _gold(i: int, label: str, at: dt.datetime) -> AdjudicationRecorded:
    return AdjudicationRecorded.create(
        producer="t",
        id_parts=("gold", i),
        occurred_at=at,
        adjudication_id=f"g{i}",
        request_id=f"{GOLD_REQUEST_PREFIX}set",
        task_id=f"gold:c{i}",
        comment_id=f"c{i}",
        schema_version="v3",
        label=label,
        reviewer_id="e1",
        confidence=1.0,
    )


def _miscalibrated_crowd(n: int, accuracy: float, seed: int = 5) -> tuple[list[Event], list[str]]:
    """n items of three votes by annotators right with probability ``accuracy`` (wrong votes
    spread over the other classes), and each item's true class."""
    rng = random.Random(seed)
    events: list[Event] = []
    truth = []
    for i in range(n):
        true = rng.choice(CLASSES)
        labels = [
            true if rng.random() < accuracy else rng.choice([c for c in CLASSES if c != true])
            for _ in range(3)
        ]
        events += _item(i, labels, T0 + dt.timedelta(minutes=10 * i))
        truth.append(true)
    return events, truth


def _consensus(config: ConsensusConfig, events: list[Event]) -> tuple[ConsensusFold, list[Event]]:
    fold = ConsensusFold(config)
    out: list[Event] = []
    for event in [moderation_schema_v3(), *events]:
        out += [o for o in fold.apply(event, POS) if isinstance(o, Event)]
    return fold, out


def _fitted(consensus: list[Event], inputs: list[Event], gold: list[Event], min_gold: int):
    reliability = ReliabilityFold(
        ReliabilityConfig(refit_on_drain=True, suspend=False),
        calibration=CalibrationConfig(min_gold=min_gold),
    )
    for event in [moderation_schema_v3(), *inputs, *gold, *consensus]:
        reliability.apply(event, POS)
    return [e for e in reliability.drain() if isinstance(e, CalibrationFitted)]


def test_the_map_fitted_on_gold_lowers_the_ece_of_an_overconfident_crowd() -> None:
    # Votes weighted as if each annotator were right 95% of the time; they are right 50%.
    events, truth = _miscalibrated_crowd(200, accuracy=0.5)
    _, out = _consensus(ConsensusConfig(prior_accuracy=0.95), events)
    complete = [u for u in out if isinstance(u, ConsensusUpdated) and u.status != "collecting"]
    gold = [_gold(i, truth[i], T0) for i in range(0, 200, 2)]  # every other item is gold
    (fit,) = _fitted(out, events, gold, min_gold=50)
    assert fit.n_gold == 100 and fit.method == "temperature" and fit.temperature > 1.5
    by_comment = {u.comment_id: u for u in complete}
    posteriors = [by_comment[f"c{i}"].posterior for i in range(0, 200, 2)]
    right = [
        CLASSES[p.index(max(p))] == truth[i]
        for p, i in zip(posteriors, range(0, 200, 2), strict=True)
    ]
    before = expected_calibration_error([max(p) for p in posteriors], right)
    after = expected_calibration_error([max(temper(p, fit.temperature)) for p in posteriors], right)
    assert fit.ece_before == pytest.approx(before) and fit.ece_after == pytest.approx(after)
    assert after < before / 2 and before > 0.15  # 0.171 -> 0.028 with this seed
    assert sum(fit.bin_count_before) == sum(fit.bin_count_after) == 100
    assert sorted(fit.consensus_ids) == sorted(
        by_comment[f"c{i}"].event_id for i in range(0, 200, 2)
    )
    # The held-out half (never fitted on) is better calibrated too.
    held = [by_comment[f"c{i}"].posterior for i in range(1, 200, 2)]
    held_right = [
        CLASSES[p.index(max(p))] == truth[i] for p, i in zip(held, range(1, 200, 2), strict=True)
    ]
    assert expected_calibration_error(
        [max(temper(p, fit.temperature)) for p in held], held_right
    ) < expected_calibration_error([max(p) for p in held], held_right)


def test_too_few_gold_items_fit_nothing() -> None:
    events, truth = _miscalibrated_crowd(40, accuracy=0.6)
    _, out = _consensus(ConsensusConfig(prior_accuracy=0.95), events)
    gold = [_gold(i, truth[i], T0) for i in range(40)]
    assert _fitted(out, events, gold, min_gold=41) == []
    assert len(_fitted(out, events, gold, min_gold=40)) == 1


def _map(temperature: float) -> CalibrationFitted:
    zeros = [0.0] * 10
    return CalibrationFitted.create(
        producer="t",
        id_parts=("map", temperature),
        occurred_at=T0,
        schema_version="v3",
        method="temperature",
        temperature=temperature,
        classes=CLASSES,
        n_gold=30,
        ece_before=0.2,
        ece_after=0.05,
        bin_count_before=[0] * 10,
        bin_confidence_before=zeros,
        bin_accuracy_before=zeros,
        bin_count_after=[0] * 10,
        bin_confidence_after=zeros,
        bin_accuracy_after=zeros,
        consensus_ids=[],
        window_end=T0,
    )


def _unanimous(fold: ConsensusFold, i: int) -> list[Event]:
    out: list[Event] = []
    for event in _item(i, ["harassment"] * 3, T0 + dt.timedelta(hours=i)):
        out += [o for o in fold.apply(event, POS) if isinstance(o, Event)]
    return out


def test_identity_before_a_map_and_the_gate_uses_the_calibrated_value_after() -> None:
    fold, _ = _consensus(ConsensusConfig(min_confidence=0.85), [])
    labels = LabelsFold()
    labels.apply(moderation_schema_v3(), POS)

    # No map yet: the confidence is the posterior's top value (0.99 for three agreeing votes
    # at the prior accuracy 0.7 over five classes), it passes, the label records it.
    before = [u for u in _unanimous(fold, 1) if isinstance(u, ConsensusUpdated)][-1]
    assert before.status == "passed" and "calibration" not in before.method_params
    (label,) = labels.apply(before, POS)
    assert isinstance(label, LabelCommitted)
    assert label.confidence == max(before.posterior) and label.distribution == before.posterior

    # A map read: the same votes' calibrated confidence is below the gate: to an expert.
    fitted = _map(4.0)
    fold.apply(fitted, POS)
    out = _unanimous(fold, 2)
    update = next(u for u in out if isinstance(u, ConsensusUpdated) and u.status != "collecting")
    assert update.posterior == before.posterior  # the posterior itself is never calibrated
    confidence = max(temper(update.posterior, 4.0))
    assert confidence < 0.85 < max(update.posterior)
    assert update.status == "adjudication"
    assert update.method_params["calibration"] == fitted.event_id
    assert update.method_params["temperature"] == "4.0"
    assert update.method_params["confidence"] == f"{confidence:.6f}"
    (request,) = [r for r in out if isinstance(r, AdjudicationRequested)]
    assert request.reason == f"calibrated confidence {confidence:.2f} below 0.85"

    # A gentler map lets it through: the label records the calibrated distribution and the
    # map's id, from which the distribution is made again.
    gentle = _map(1.2)
    gentle = gentle.model_copy(update={"window_end": T0 + dt.timedelta(days=1)})
    fold.apply(gentle, POS)
    update = [u for u in _unanimous(fold, 3) if isinstance(u, ConsensusUpdated)][-1]
    assert update.status == "passed" and update.method_params["calibration"] == gentle.event_id
    (label,) = labels.apply(update, POS)
    assert isinstance(label, LabelCommitted)
    assert label.distribution == calibrated(update.posterior, update.method_params)
    assert label.distribution == temper(update.posterior, 1.2) != update.posterior
    assert label.confidence == max(label.distribution) < max(update.posterior)
    assert label.method_params["calibration"] == gentle.event_id


def test_the_latest_map_wins_whatever_the_read_order() -> None:
    early, late = _map(4.0), _map(1.2).model_copy(update={"window_end": T0 + dt.timedelta(days=1)})
    for order in ([early, late], [late, early]):
        fold, _ = _consensus(ConsensusConfig(), list(order))
        update = [u for u in _unanimous(fold, 1) if isinstance(u, ConsensusUpdated)][-1]
        assert update.method_params["calibration"] == late.event_id


def test_calibration_off_applies_no_map() -> None:
    fold, _ = _consensus(ConsensusConfig(calibrate=False), [_map(4.0)])
    update = [u for u in _unanimous(fold, 1) if isinstance(u, ConsensusUpdated)][-1]
    assert "calibration" not in update.method_params


def test_without_calibration_the_reliability_stage_does_not_read_consensus() -> None:
    assert "consensus" not in ReliabilityFold().inputs
    assert "consensus" in ReliabilityFold(calibration=CalibrationConfig()).inputs


def test_the_fit_does_not_depend_on_the_read_order() -> None:
    events, truth = _miscalibrated_crowd(60, accuracy=0.5)
    _, out = _consensus(ConsensusConfig(prior_accuracy=0.95), events)
    gold = [_gold(i, truth[i], T0) for i in range(60)]
    (forward,) = _fitted(out, events, gold, min_gold=30)
    (backward,) = _fitted(out[::-1], events, gold[::-1], min_gold=30)
    assert forward.event_id == backward.event_id and forward.temperature == backward.temperature


def test_expert_verdicts_count_as_gold_only_when_asked() -> None:
    events, truth = _miscalibrated_crowd(40, accuracy=0.5)
    _, out = _consensus(ConsensusConfig(prior_accuracy=0.95), events)
    verdicts = [
        _gold(i, truth[i], T0).model_copy(update={"request_id": f"req-{i}"}) for i in range(40)
    ]
    assert _fitted(out, events, verdicts, min_gold=40) == []
    reliability = ReliabilityFold(
        ReliabilityConfig(refit_on_drain=True, suspend=False),
        calibration=CalibrationConfig(min_gold=40, include_verdicts=True),
    )
    for event in [moderation_schema_v3(), *events, *verdicts, *out]:
        reliability.apply(event, POS)
    (fit,) = [e for e in reliability.drain() if isinstance(e, CalibrationFitted)]
    assert fit.n_gold == 40
