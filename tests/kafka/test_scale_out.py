"""Two workers of each stage over the partitions give the labels one gives, through a rebalance."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from labeltrail.config import Settings
from labeltrail.events import LabelCommitted, TaskCreated
from labeltrail.events.base import Event
from labeltrail.folds.base import Fold
from labeltrail.folds.consensus import ConsensusFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.runner import StageRunner
from labeltrail.kafka.scaleout import BROADCAST_INPUTS, GroupStageRunner
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer
from labeltrail.sim.demo import seed_platform
from tests.folds.helpers import final_labels, run_in_memory
from tests.probes import read_topic, wait_for_progress, wait_until_settled

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N, SEED = 300, 17


def test_two_workers_per_stage_with_a_rebalance_midway(pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    config = PlatformConfig.sized(N, seed=SEED)
    platform = Platform(config)
    makers: dict[str, Callable[[], Fold]] = {
        "tasking": lambda: TaskingFold(
            TaskingConfig(min_crowd_pool=config.n_crowd, gold_set_size=config.n_gold)
        ),
        "consensus": ConsensusFold,
        "labels": LabelsFold,
    }
    keyed = {
        name: [s for s in make().inputs if s not in BROADCAST_INPUTS]
        for name, make in makers.items()
    }
    ensure_topics(settings)
    stop = threading.Event()
    runners: list[StageRunner] = [
        StageRunner(SimulatedScorer(platform), settings),
        StageRunner(SimulatedAnnotators(platform), settings),
    ]
    first = {name: GroupStageRunner(make, settings) for name, make in makers.items()}
    runners += first.values()
    threads = [threading.Thread(target=r.run, args=(stop,)) for r in runners]
    for t in threads:
        t.start()
    try:
        seed_platform(settings, platform)
        wait_for_progress(settings, "consensus", keyed["consensus"], timeout=120)
        # Mid-run, a second worker joins each stage: the group rebalances.
        second = {name: GroupStageRunner(make, settings) for name, make in makers.items()}
        more = [threading.Thread(target=r.run, args=(stop,)) for r in second.values()]
        for t in more:
            t.start()
        threads += more
        wait_until_settled(settings, keyed)
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    for name in makers:
        assert first[name].rebalances >= 2, f"{name}: the first worker saw no rebalance"
        assert second[name].rebalances >= 1
        assert second[name].stats.consumed > 0, f"{name}: the second worker got no work"
    labels = [e for e in read_topic(settings, "labels") if isinstance(e, LabelCommitted)]
    one = run_in_memory(platform)
    assert final_labels(list(labels)) == final_labels(one.log["labels"])
    # Every worker reads the whole gold set (the gold topic), so the honeypots are one's too.
    honeypots = _honeypots(read_topic(settings, "tasks"))
    assert honeypots and honeypots == _honeypots(one.log["tasks"])


def _honeypots(tasks: Sequence[Event]) -> set[tuple[str, str]]:
    return {
        (t.task_id, t.annotators[0])
        for t in tasks
        if isinstance(t, TaskCreated) and t.kind == "honeypot"
    }
