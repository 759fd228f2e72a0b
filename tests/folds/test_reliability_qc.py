"""Quality control that acts: the reliability fold suspends an annotator whose honeypot and
gold accuracy falls below the floor, with the evidence; without Kafka."""

from __future__ import annotations

import pytest
from scipy import stats

from labeltrail.events.models import AnnotatorReinstated, AnnotatorSuspended, HoneypotScored
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from tests.folds.test_reliability import POS, honeypot, run


def _feed(fold: ReliabilityFold, results: list[HoneypotScored]) -> list[AnnotatorSuspended]:
    return [o for o in run(fold, list(results)) if isinstance(o, AnnotatorSuspended)]


def _failing(annotator: str, start: int = 0, n: int = 14) -> list[HoneypotScored]:
    """Two right, then wrong: P(accuracy < 0.7) passes 0.95 at the 10th result."""
    return [honeypot(annotator, i < 2, start + i) for i in range(n)]


def test_failing_honeypots_suspend_once_with_the_evidence() -> None:
    fold = ReliabilityFold()
    results = _failing("a1")
    (suspension,) = _feed(fold, results)
    # The first result at which the posterior crosses, with at least 10 results.
    assert suspension.envelope.causation_id == results[9].event_id
    assert suspension.annotator_id == "a1" and suspension.actor == "qc"
    assert suspension.envelope.occurred_at == results[9].envelope.occurred_at
    evidence = suspension.evidence
    assert (evidence["n"], evidence["correct"], evidence["incorrect"]) == ("10", "2", "8")
    assert evidence["floor"] == "0.7" and evidence["probability"] == "0.95"
    p = float(stats.beta.cdf(0.7, 1 + 2, 1 + 8))
    assert float(evidence["p_below_floor"]) == pytest.approx(p, abs=1e-4) and p > 0.95
    assert "P(accuracy < 0.7)" in suspension.reason
    # The same inputs, the same suspension id.
    (again,) = _feed(ReliabilityFold(), results)
    assert again.event_id == suspension.event_id


def test_a_good_annotator_and_too_little_evidence_are_left_alone() -> None:
    fold = ReliabilityFold()
    assert _feed(fold, [honeypot("good", i % 5 != 0, i) for i in range(40)]) == []
    assert _feed(fold, [honeypot("new", False, i) for i in range(9)]) == []


def test_adjudication_feedback_is_not_evidence_for_suspension() -> None:
    fold = ReliabilityFold()
    results = [honeypot("a1", False, i, "adjudication") for i in range(20)]
    assert _feed(fold, results) == []
    assert _feed(fold, [honeypot("a1", i < 2, 100 + i, "gold") for i in range(10)])


def test_a_reinstatement_starts_the_evidence_afresh() -> None:
    fold = ReliabilityFold()
    assert len(_feed(fold, _failing("a1"))) == 1
    reinstated = AnnotatorReinstated.create(
        producer="t", annotator_id="a1", reason="retrained", actor="expert-1"
    )
    assert fold.apply(reinstated, POS) == []
    # Nine more failures are not yet ten results since the reinstatement.
    assert _feed(fold, [honeypot("a1", False, 100 + i) for i in range(9)]) == []
    assert len(_feed(fold, [honeypot("a1", False, 200)])) == 1


def test_a_manual_suspension_is_not_repeated_by_qc() -> None:
    fold = ReliabilityFold()
    manual = AnnotatorSuspended.create(
        producer="t", annotator_id="a1", reason="spam reports", actor="lead-1"
    )
    assert fold.apply(manual, POS) == []
    assert _feed(fold, _failing("a1")) == []


def test_qc_can_be_turned_off() -> None:
    assert _feed(ReliabilityFold(ReliabilityConfig(suspend=False)), _failing("a1")) == []


def test_the_stage_takes_its_floor_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from labeltrail.config import Settings
    from labeltrail.stages import make_reliability

    monkeypatch.setenv("LABELTRAIL_RELIABILITY_SUSPEND_FLOOR", "0.15")
    monkeypatch.setenv("LABELTRAIL_RELIABILITY_SUSPEND_MIN_RESULTS", "12")
    config = make_reliability(Settings()).config
    assert (config.suspend_floor, config.suspend_min_results) == (0.15, 12)
    assert _feed(make_reliability(Settings()), _failing("a1")) == []  # 2 in 14 is not below 0.15
    monkeypatch.setenv("LABELTRAIL_RELIABILITY_SUSPEND", "false")
    assert make_reliability(Settings()).config.suspend is False
