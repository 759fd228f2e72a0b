"""Behaviour pinned across refactors: the demo's world through every fold, in memory.

``tests/fixtures/behaviour.json`` was recorded from main before the house-plan renovation
(issue 13): per topic, how many events and a digest of their ids in log order, and every
committed label. Moving code must not change one id or one label. Re-record only for a change
that is meant to alter behaviour: ``python -m tests.test_behaviour --record``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from labeltrail.config import Settings
from labeltrail.events.models import LabelCommitted
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.folds.iaa import IaaConfig, IaaFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from labeltrail.folds.replay import Replay
from labeltrail.folds.tasking import TaskingFold
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer
from labeltrail.stages import tasking_config
from tests.folds.helpers import suffix_topic

FIXTURE = Path(__file__).parent / "fixtures" / "behaviour.json"


def observe() -> dict[str, Any]:
    """The demo's folds (as the demo builds them from default settings) over a 30-day world."""
    settings = Settings()
    platform = Platform(PlatformConfig.sized(400, seed=7, days=30))
    replay = Replay(
        [
            SimulatedScorer(platform, threshold=settings.low_margin_threshold),
            TaskingFold(
                tasking_config(
                    settings,
                    min_crowd_pool=len(platform.crowd_ids),
                    gold_set_size=platform.config.n_gold,
                )
            ),
            SimulatedAnnotators(platform),
            ConsensusFold(
                ConsensusConfig(
                    agreement_threshold=settings.agreement_threshold,
                    method=settings.consensus_method,
                )
            ),
            LabelsFold(),
            ReliabilityFold(ReliabilityConfig(refit_on_drain=True)),
            IaaFold(IaaConfig()),
        ],
        suffix_topic,
    )
    replay.append(platform.inputs())
    replay.run()
    topics = {
        topic: {
            "events": len(events),
            "ids": hashlib.sha256(
                "\n".join(e.envelope.event_id for e in events).encode()
            ).hexdigest(),
        }
        for topic, events in sorted(replay.log.items())
    }
    labels = sorted(
        [e.label_id, e.comment_id, e.label, e.route]
        for e in replay.log.get("labels", [])
        if isinstance(e, LabelCommitted)
    )
    return {"topics": topics, "labels": labels, "counts": dict(sorted(replay.counts.items()))}


def test_the_folds_make_the_same_ids_and_labels_as_before_the_renovation() -> None:
    expected = json.loads(FIXTURE.read_text())
    got = json.loads(json.dumps(observe()))
    assert got["topics"] == expected["topics"]
    assert got["labels"] == expected["labels"]
    assert got["counts"] == expected["counts"]


if __name__ == "__main__" and "--record" in sys.argv:
    FIXTURE.write_text(json.dumps(observe(), indent=1) + "\n")
