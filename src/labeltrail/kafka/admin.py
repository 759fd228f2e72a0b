"""Create labeltrail's topics idempotently."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from labeltrail.config import Settings
from labeltrail.events.topics import TOPICS, TopicSpec, topic_name
from labeltrail.exceptions import LabeltrailError

__all__ = ["KafkaUnavailableError", "ensure_topics", "topic_configs"]


class KafkaUnavailableError(LabeltrailError):
    """The Kafka cluster did not answer."""


def topic_configs(spec: TopicSpec) -> dict[str, str]:
    """Broker settings of a topic: compaction for registries, otherwise kept forever."""
    conf = {"cleanup.policy": "compact" if spec.compacted else "delete"}
    if not spec.compacted:
        conf["retention.ms"] = "-1"  # the log is the truth: never expire it
    conf.update(spec.config)
    return conf


def ensure_topics(settings: Settings, *, timeout: float = 30.0) -> dict[str, str]:
    """Create every missing topic; returns ``{topic: "created" | "exists"}``.

    An existing topic with fewer partitions than configured is an error: keyed state would
    be spread differently from what the processors expect.
    """
    admin = AdminClient(settings.kafka_config())
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"Kafka at {settings.kafka_bootstrap_servers} did not answer: {exc}"
        ) from exc
    result: dict[str, str] = {}
    wanted: list[NewTopic] = []
    for spec in TOPICS:
        name = topic_name(settings.topic_prefix, spec.suffix)
        partitions = 1 if spec.single_partition else settings.topic_partitions
        if name in existing:
            have = len(existing[name].partitions)
            if have < partitions:
                raise LabeltrailError(
                    f"topic {name} has {have} partitions, {partitions} are configured"
                )
            result[name] = "exists"
            continue
        wanted.append(
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=settings.topic_replication,
                config=topic_configs(spec),
            )
        )
    if wanted:
        futures = admin.create_topics(wanted, operation_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result()
                result[name] = "created"
            except KafkaException as exc:
                if exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                    result[name] = "exists"
                else:
                    raise LabeltrailError(f"cannot create topic {name}: {exc}") from exc
        _wait_for_leaders(admin, [t.topic for t in wanted], timeout)
    return result


def _wait_for_leaders(admin: AdminClient, topics: list[str], timeout: float) -> None:
    """New topics serve only once every partition has a leader."""
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(timeout=timeout).topics
        ready = all(
            t in meta
            and meta[t].error is None
            and meta[t].partitions
            and all(p.leader >= 0 and p.error is None for p in meta[t].partitions.values())
            for t in topics
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise KafkaUnavailableError(f"topics without leaders after {timeout}s: {topics}")
        time.sleep(0.1)
