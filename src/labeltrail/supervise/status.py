"""What the supervised stages are doing, read from Kafka and from each one's metrics server:
lag per input partition, committed, dead letters, processed and rejected."""

from __future__ import annotations

import inspect
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError
from labeltrail.supervise.files import SupervisorError

__all__ = [
    "METRICS_BASE_PORT",
    "METRICS_BLOCK",
    "StageStatus",
    "dead_letters_by_stage",
    "free_metrics_port",
    "projector_status",
    "stage_status",
]


@dataclass(frozen=True)
class StageStatus:
    """What a stage's consumer group has done, read from Kafka."""

    name: str
    group: str
    partitions: list[Any]
    """:class:`labeltrail.kafka.lag.PartitionLag` of every input partition the group commits."""
    dead_lettered: int
    metrics: dict[str, Any] | None = None
    """What the running stage reports (:func:`labeltrail.kafka.metrics.read`): ``processed``,
    ``rejected`` by reason, ``healthy`` and more; None when metrics are off or it does not
    answer (``metrics_error`` says why)."""
    metrics_error: str | None = None

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def committed(self) -> int:
        """Records the group has dealt with (processed, skipped or rejected): the sum of its
        committed offsets."""
        return sum(p.committed or 0 for p in self.partitions)


def _committed_inputs(name: str) -> list[str]:
    """Topic suffixes whose offsets the stage's group commits: every input, except the
    broadcast registries a scalable stage reads whole outside the group."""
    from labeltrail.kafka.scaleout import BROADCAST_INPUTS
    from labeltrail.stages import STAGES

    stage = STAGES[name]
    fold_class = inspect.signature(stage.make, eval_str=True).return_annotation
    inputs: tuple[str, ...] = fold_class.inputs
    return [s for s in inputs if not (stage.scalable and s in BROADCAST_INPUTS)]


def dead_letters_by_stage(settings: Settings) -> Counter[str]:
    """Dead letters on ``<prefix>.deadletter`` so far, by the stage that wrote them."""
    from labeltrail.events.models import DeadLettered
    from labeltrail.events.topics import topic_name
    from labeltrail.kafka.log import end_positions, read_until

    topic = topic_name(settings.topic_prefix, "deadletter")
    counts: Counter[str] = Counter()
    for event, _position in read_until(settings, end_positions(settings, [topic])):
        if isinstance(event, DeadLettered):
            counts[event.stage] += 1
    return counts


def stage_status(settings: Settings, names: Sequence[str] | None = None) -> list[StageStatus]:
    """Each stage's lag per input partition and its dead letters (the configured cluster)."""
    from labeltrail.events.topics import topic_name
    from labeltrail.kafka.lag import group_lag
    from labeltrail.stages import STAGES

    dead = dead_letters_by_stage(settings)
    groups = {  # the runners' group of each stage (StageRunner.group)
        name: f"{settings.topic_prefix}.{name}"
        for name in (names if names is not None else list(STAGES))
    }
    lags = group_lag(
        settings,
        {
            group: [topic_name(settings.topic_prefix, s) for s in _committed_inputs(name)]
            for name, group in groups.items()
        },
    )
    out = []
    for name, group in groups.items():
        metrics, error = _metrics_of(settings, name)
        out.append(StageStatus(name, group, lags[group], dead[name], metrics, error))
    return out


def projector_status(settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The projector's own figures (its positions live in ClickHouse, which the running
    projector owns, so its lag comes from its metrics server), or why there are none."""
    return _metrics_of(settings, "projector")


def _metrics_of(settings: Settings, service: str) -> tuple[dict[str, Any] | None, str | None]:
    """The service's own figures from its metrics server, or why there are none."""
    from labeltrail.kafka.metrics import metrics_url, read

    url = metrics_url(settings, service)
    if url is None:
        return None, "metrics are off (LABELTRAIL_METRICS_PORT unset)"
    try:
        return read(url), None
    except LabeltrailError as exc:
        return None, str(exc)


METRICS_BASE_PORT = 9400
"""Where ``labeltrail up`` looks for a free block of metrics ports when none is configured."""

METRICS_BLOCK = 16
"""Ports per block: a base port plus each service's offset (``kafka.metrics.PORT_OFFSETS``)."""


def free_metrics_port(host: str, start: int = METRICS_BASE_PORT, tries: int = 50) -> int:
    """The first base port from ``start`` (in steps of a block) whose whole block is free."""
    for base in range(start, start + tries * METRICS_BLOCK, METRICS_BLOCK):
        if all(_port_free(host, base + i) for i in range(METRICS_BLOCK)):
            return base
    raise SupervisorError(f"no free block of {METRICS_BLOCK} metrics ports from {start}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
