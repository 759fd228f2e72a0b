"""Run the simulated platform through the folds in memory (the batch path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from labeltrail.events.base import Event
from labeltrail.events.topics import topic_for
from labeltrail.folds.base import Fold
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.replay import Replay
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from labeltrail.sim import Platform, SimulatedAnnotators, SimulatedScorer


def suffix_topic(event: Event) -> str:
    name = type(event).__name__
    pool, route = getattr(event, "pool", None), getattr(event, "route", None)
    return topic_for(name, "x", pool=pool, route=route).removeprefix("x.")


def run_in_memory(
    platform: Platform,
    extra_folds: Sequence[Fold] = (),
    *,
    consensus: str | None = None,
    threshold: float | None = None,
) -> Replay:
    """The platform through the loop's folds, then ``extra_folds`` (e.g. reliability, iaa);
    ``consensus`` names the consensus method (the fold's default when None), ``threshold``
    its agreement threshold (likewise)."""
    config = ConsensusConfig()
    if consensus:
        config = replace(config, method=consensus)
    if threshold is not None:
        config = replace(config, agreement_threshold=threshold)
    replay = Replay(
        [
            SimulatedScorer(platform),
            TaskingFold(TaskingConfig(gold_set_size=platform.config.n_gold)),
            SimulatedAnnotators(platform),
            ConsensusFold(config),
            LabelsFold(),
            *extra_folds,
        ],
        suffix_topic,
    )
    replay.append(platform.inputs())
    replay.run()
    return replay


def final_labels(labels: list[Event]) -> dict[str, tuple[str, str]]:
    """comment -> (label, route); an adjudication outranks a crowd consensus."""
    out: dict[str, tuple[str, str]] = {}
    for event in labels:
        label, route = getattr(event, "label"), getattr(event, "route")  # noqa: B009
        cid = getattr(event, "comment_id")  # noqa: B009
        if cid not in out or route == "adjudication":
            out[cid] = (label, route)
    return out
