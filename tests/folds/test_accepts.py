"""A fold's ``accepts`` names every type it handles; ``build_event`` builds what pydantic would."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from labeltrail.events.base import Envelope, Event, LogPosition
from labeltrail.events.models import TaskCreated
from labeltrail.folds.base import Fold, Rejected, build_event
from labeltrail.folds.iaa import IaaFold
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from labeltrail.folds.tasking import TaskingFold
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory


@pytest.fixture(scope="module")
def log() -> dict[str, list[Event]]:
    platform = Platform(PlatformConfig(n_comments=200, n_gold=20, seed=3))
    return dict(run_in_memory(platform, [ReliabilityFold(), IaaFold()]).log)


def _row(output: Event | Rejected) -> str:
    if isinstance(output, Rejected):
        return output.reason
    data = output.model_dump(mode="json")
    del data["envelope"]["recorded_at"]  # wall-clock time of the write
    return repr(data)


def _outputs(fold: Fold, log: dict[str, list[Event]], *, skip: bool) -> list[Any]:
    accepts: frozenset[str] = getattr(fold, "accepts")  # noqa: B009
    out: list[Any] = []
    for topic in fold.inputs:
        for offset, event in enumerate(log.get(topic, [])):
            if skip and type(event).__name__ not in accepts:
                continue
            position = LogPosition(topic=topic, partition=0, offset=offset)
            out += [_row(o) for o in fold.apply(event, position)]
    drain = getattr(fold, "drain", None)
    if drain is not None:  # what a fold holds (open windows) is compared too
        out += [_row(o) for o in drain()]
    return out


@pytest.mark.parametrize(
    "make",
    [TaskingFold, lambda: ReliabilityFold(ReliabilityConfig()), IaaFold],
    ids=["tasking", "reliability", "iaa"],
)
def test_skipping_types_a_fold_does_not_accept_changes_nothing(
    make: Any, log: dict[str, list[Event]]
) -> None:
    every = _outputs(make(), log, skip=False)
    assert every, "the fold produced nothing from the run"
    skipped_types = {
        type(e).__name__ for t in make().inputs for e in log.get(t, [])
    } - make().accepts
    assert _outputs(make(), log, skip=True) == every
    if make is TaskingFold:
        assert "ConsensusUpdated" in skipped_types


def test_build_event_equals_the_validated_event() -> None:
    when = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    fields: dict[str, Any] = {
        "task_id": "t1",
        "comment_id": "c1",
        "schema_version": "v3",
        "kind": "crowd",
        "reason": "random_audit",
        "questions": ["q1"],
        "redundancy": 3,
        "annotators": ["a1", "a2", "a3"],
        "cost_usd": 0.12,
    }
    built = build_event(
        TaskCreated,
        event_id="e1",
        producer="p",
        occurred_at=when,
        causation_id=None,
        correlation_id="c1",
        **fields,
    )
    validated = TaskCreated(
        envelope=Envelope(
            event_id="e1",
            event_type="TaskCreated",
            occurred_at=when,
            recorded_at=built.envelope.recorded_at,
            producer="p",
            causation_id=None,
            correlation_id="c1",
        ),
        **fields,
    )
    assert built == validated
    assert built.model_dump() == validated.model_dump()
    assert built.envelope.occurred_at.tzinfo == dt.UTC
    assert built.envelope.occurred_at.microsecond == 123000
