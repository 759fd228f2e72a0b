"""Tasking's outputs depend on each input topic's content, not on how the topics interleave.

A recorded run's inputs to tasking are fed again to fresh folds, each topic in its own order,
the topics merged in different ways (gold first, gold last, random merges); the outputs,
ids included, must be the same set every time. The registries (schemas, annotators) are read
first, as a worker loads its broadcast inputs before its keyed ones.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import TaskCreated
from labeltrail.folds.base import Rejected
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from labeltrail.kafka.scaleout import BROADCAST_INPUTS
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory

N_GOLD = 30
CONFIG = TaskingConfig(honeypot_rate=0.3, gold_set_size=N_GOLD)

Topics = dict[str, list[Event]]


@pytest.fixture(scope="module")
def recorded() -> Topics:
    platform = Platform(PlatformConfig(n_comments=240, n_gold=N_GOLD, seed=5))
    replay = run_in_memory(platform)
    return {topic: list(replay.log.get(topic, [])) for topic in TaskingFold().inputs}


def _canonical(outputs: list[Any], *, context: bool = True) -> list[str]:
    rows = []
    for out in outputs:
        if isinstance(out, Rejected):
            rows.append(f"rejected:{out.reason}")
        else:
            data = out.model_dump(mode="json")
            del data["envelope"]["recorded_at"]  # wall-clock time of the write
            if not context:
                data.pop("context", None)
            rows.append(repr(sorted(data.items())))
    return sorted(rows)


def _feed(order: list[tuple[str, int]], topics: Topics) -> list[Any]:
    fold = TaskingFold(CONFIG)
    out: list[Any] = []
    for topic, offset in order:
        out += fold.apply(
            topics[topic][offset], LogPosition(topic=topic, partition=0, offset=offset)
        )
    return out + fold.drain()


def _merge(topics: Topics, keyed: list[str], rng: random.Random | None) -> list[tuple[str, int]]:
    """Broadcast topics first, then the keyed ones: in ``keyed`` order one after another, or,
    with ``rng``, merged at random; each topic keeps its own order."""
    order = [(t, i) for t in topics if t in BROADCAST_INPUTS for i in range(len(topics[t]))]
    if rng is None:
        return order + [(t, i) for t in keyed for i in range(len(topics[t]))]
    cursors = dict.fromkeys(keyed, 0)
    remaining = [t for t in keyed if topics[t]]
    while remaining:
        topic = rng.choice(remaining)
        order.append((topic, cursors[topic]))
        cursors[topic] += 1
        if cursors[topic] == len(topics[topic]):
            remaining.remove(topic)
    return order


def test_outputs_do_not_depend_on_the_interleaving_of_topics(recorded: Topics) -> None:
    keyed = [t for t in TaskingFold().inputs if t not in BROADCAST_INPUTS]
    assert "adjudications" in keyed and recorded["adjudications"], "the run recorded no gold"
    gold_first = _feed(_merge(recorded, keyed, None), recorded)
    reference = _canonical(gold_first)
    kinds = [o.kind for o in gold_first if isinstance(o, TaskCreated)]
    assert kinds.count("honeypot") > 0 and kinds.count("expert") > 0 and kinds.count("crowd") > 0

    gold_last = [t for t in keyed if t != "adjudications"] + ["adjudications"]
    reversed_topics = list(reversed(keyed))
    orders = [_merge(recorded, gold_last, None), _merge(recorded, reversed_topics, None)]
    orders += [_merge(recorded, keyed, random.Random(seed)) for seed in range(3)]
    for order in orders:
        assert _canonical(_feed(order, recorded)) == reference


def test_a_chosen_task_waits_for_gold_that_comes_later(recorded: Topics) -> None:
    """Gold read after every score still yields the honeypots, with the same ids."""
    keyed = [t for t in TaskingFold().inputs if t not in BROADCAST_INPUTS]
    early = _feed(_merge(recorded, keyed, None), recorded)
    late_order = [t for t in keyed if t != "adjudications"] + ["adjudications"]
    late = _feed(_merge(recorded, late_order, None), recorded)

    def honeypot_ids(outs: list[Any]) -> set[str]:
        return {o.task_id for o in outs if isinstance(o, TaskCreated) and o.kind == "honeypot"}

    assert honeypot_ids(early) and honeypot_ids(early) == honeypot_ids(late)


def _worker_topics(recorded: Topics, gold: list[Event], worker: int, workers: int) -> Topics:
    """What one of ``workers`` tasking workers reads: every broadcast input whole (the gold
    topic included), and its share of the keyed partitions (split by key, as a group would)."""
    out: Topics = {}
    for topic, events in recorded.items():
        if topic == "gold":
            out[topic] = gold
        elif topic in BROADCAST_INPUTS:
            out[topic] = events
        else:
            out[topic] = [e for e in events if stable_partition(e.key, workers) == worker]
    return out


def stable_partition(key: str, workers: int) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % workers


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_over_partitions_make_the_tasks_one_makes(recorded: Topics, workers: int) -> None:
    """Each worker pairs its own chosen tasks with any gold item, since the gold topic gives
    every worker the whole gold set: together they make exactly one worker's tasks.

    Except an expert task's thread context: the parent comments a worker has read, and a
    parent on another worker's partition is not among them (docs/pipeline.md, scale-out).
    """
    platform = Platform(PlatformConfig(n_comments=240, n_gold=N_GOLD, seed=5))
    gold = list(platform.gold_topic_events())
    keyed = [t for t in TaskingFold().inputs if t not in BROADCAST_INPUTS]
    one = _feed(_merge(recorded, keyed, None), recorded)

    def together(gold_copies: list[Event]) -> list[Any]:
        out: list[Any] = []
        for worker in range(workers):
            topics = _worker_topics(recorded, gold_copies, worker, workers)
            out += _feed(_merge(topics, keyed, random.Random(worker)), topics)
        return out

    def honeypots(outs: list[Any]) -> int:
        return sum(isinstance(o, TaskCreated) and o.kind == "honeypot" for o in outs)

    assert _canonical(together(gold), context=False) == _canonical(one, context=False)
    # Without the gold topic a worker sees only its partitions' gold: fewer honeypots.
    assert honeypots(together([])) < honeypots(one)
