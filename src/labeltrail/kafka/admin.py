"""The cluster seen from labeltrail: is it there (:func:`require_kafka`), create the topics
idempotently (:func:`ensure_topics`), and what they hold (:func:`describe_topics`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ClusterMetadata,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from labeltrail.config import Settings
from labeltrail.events.topics import TOPICS, TopicSpec, topic_name
from labeltrail.exceptions import LabeltrailError
from labeltrail.kafka.consumer import high_watermark, make_consumer
from labeltrail.kafka.security import first_refusal

__all__ = [
    "PREFLIGHT_TIMEOUT_S",
    "KafkaUnavailableError",
    "TopicInfo",
    "admin_client",
    "delete_topics",
    "describe_topics",
    "ensure_topics",
    "require_kafka",
    "topic_configs",
]

PREFLIGHT_TIMEOUT_S = 5.0
"""How long :func:`require_kafka` waits for the cluster's metadata."""

LOCAL_HOSTS = ("127.0.0.1", "localhost")


class KafkaUnavailableError(LabeltrailError):
    """The Kafka cluster did not answer."""


def _quiet_admin(settings: Settings) -> tuple[AdminClient, list[KafkaError]]:
    """An admin client that logs nothing and collects its errors instead.

    Without this librdkafka prints a "Connect ... failed" line to stderr several times a
    second for as long as no broker answers.
    """
    errors: list[KafkaError] = []
    conf: dict[str, Any] = {**settings.kafka_config(), "log_level": 0, "error_cb": errors.append}
    return AdminClient(conf), errors


def _unavailable(settings: Settings, timeout: float, cause: object) -> KafkaUnavailableError:
    bootstrap = settings.kafka_bootstrap_servers
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if host in LOCAL_HOSTS:
        how = (
            f"start the local broker with `python ops/kafka/local_kafka.py start --port {port}`"
            ", or point KAFKA_BOOTSTRAP_SERVERS (or LABELTRAIL_KAFKA_PORT) at a running one"
        )
    else:
        how = "check KAFKA_BOOTSTRAP_SERVERS and the LABELTRAIL_KAFKA_* security settings"
    return KafkaUnavailableError(
        f"no Kafka broker answered at {bootstrap} within {timeout:g} s ({cause}); {how}"
    )


def _connect(settings: Settings, timeout: float) -> tuple[AdminClient, ClusterMetadata]:
    """A quiet admin client and the cluster's metadata, or :class:`KafkaUnavailableError`."""
    admin, errors = _quiet_admin(settings)
    try:
        return admin, admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        admin.poll(0)  # serves error_cb: the first error says why (refused, unresolved, ...)
        refused = first_refusal(settings, [*errors, exc.args[0]])
        first = errors[0].str() if errors else exc.args[0].str()
    # Let the client go now: its threads keep reconnecting (and logging) while anything holds
    # it, and the traceback of the error below would hold this frame's locals.
    del admin, errors
    if refused is not None:  # it answered, and said no: a wrong password, an expired cert
        raise refused from None
    raise _unavailable(settings, timeout, first) from None


def admin_client(settings: Settings, *, timeout: float = PREFLIGHT_TIMEOUT_S) -> AdminClient:
    """A quiet admin client of a cluster that answered (as :func:`require_kafka` checks)."""
    return _connect(settings, timeout)[0]


def require_kafka(settings: Settings, *, timeout: float = PREFLIGHT_TIMEOUT_S) -> ClusterMetadata:
    """The cluster's metadata, or one :class:`KafkaUnavailableError` within ``timeout`` seconds
    that names the bootstrap address and how to start the local broker (librdkafka silenced).

    Commands that need Kafka call it first, instead of failing after their own, longer timeouts.
    """
    return _connect(settings, timeout)[1]


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
    admin, metadata = _connect(settings, timeout)
    existing = metadata.topics
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


@dataclass(frozen=True)
class TopicInfo:
    """One topic of the prefix as the broker has it (``exists=False``: in the registry, not
    created yet)."""

    name: str
    exists: bool
    partitions: int = 0
    cleanup_policy: str = ""
    retention_ms: str = ""
    messages: int = 0
    """High minus low watermark, summed over partitions: the records held (for a compacted
    topic an upper bound, until the cleaner has run)."""


def describe_topics(settings: Settings, *, timeout: float = 30.0) -> list[TopicInfo]:
    """Every topic named ``<prefix>.*`` on the cluster, plus the registry's missing ones."""
    admin, metadata = _connect(settings, min(timeout, PREFLIGHT_TIMEOUT_S))
    names = sorted(t for t in metadata.topics if t.startswith(f"{settings.topic_prefix}."))
    configs: dict[str, dict[str, str]] = {}
    counts: dict[str, int] = dict.fromkeys(names, 0)
    if names:
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
        futures = admin.describe_configs(resources, request_timeout=timeout)
        for resource, future in futures.items():
            entries = _result(future, timeout, f"describe topic {resource.name}")
            configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
        partitions = [
            TopicPartition(name, p) for name in names for p in metadata.topics[name].partitions
        ]
        earliest = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        low = _offsets(admin, partitions, earliest, timeout)
        high = _offsets(admin, partitions, latest, timeout)
        for key, end in high.items():
            counts[key[0]] += end - low[key]
    out = [
        TopicInfo(
            name,
            True,
            len(metadata.topics[name].partitions),
            configs[name].get("cleanup.policy", ""),
            configs[name].get("retention.ms", ""),
            counts[name],
        )
        for name in names
    ]
    registry = (topic_name(settings.topic_prefix, spec.suffix) for spec in TOPICS)
    out += [TopicInfo(name, False) for name in registry if name not in metadata.topics]
    return out


def delete_topics(settings: Settings, *, timeout: float = 30.0) -> list[str]:
    """Delete every topic named ``<prefix>.*`` (a finished simulation's, ``labeltrail day30
    --live``); returns their names. Never for a deployment's prefix: the log is the record."""
    admin, metadata = _connect(settings, min(timeout, PREFLIGHT_TIMEOUT_S))
    names = sorted(t for t in metadata.topics if t.startswith(f"{settings.topic_prefix}."))
    if names:
        for name, future in admin.delete_topics(names, operation_timeout=timeout).items():
            _result(future, timeout, f"delete topic {name}")
        # Deletion completes in the background: wait until the metadata no longer lists them.
        deadline = time.monotonic() + timeout
        while set(names) & set(admin.list_topics(timeout=timeout).topics):
            if time.monotonic() > deadline:
                raise LabeltrailError(f"topics {settings.topic_prefix}.* still listed")
            time.sleep(0.2)
    return names


def end_offset(settings: Settings, suffix: str) -> int:
    """The sum of the high watermarks of ``<prefix>.<suffix>``'s partitions (0 if absent).

    Asked of each partition's leader, retrying while leadership settles (a topic just
    created, a broker restarting), as the runners do.
    """
    consumer = make_consumer(settings, f"{settings.topic_prefix}.end-offset-probe")
    try:
        name = topic_name(settings.topic_prefix, suffix)
        meta = consumer.list_topics(name, timeout=30).topics.get(name)
        if meta is None or meta.error is not None:
            return 0
        return sum(high_watermark(consumer, TopicPartition(name, p)) for p in meta.partitions)
    finally:
        consumer.close()


def _offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout: float
) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout)
    return {
        (tp.topic, tp.partition): _result(future, timeout, f"read the offsets of {tp.topic}").offset
        for tp, future in futures.items()
    }


def _result(future: Any, timeout: float, what: str) -> Any:
    try:
        return future.result(timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        raise LabeltrailError(f"cannot {what}: {exc or 'timed out'}") from exc
