"""All configuration, read from the environment in one place.

Each setting's variable is ``LABELTRAIL_<NAME>`` unless stated; ``KAFKA_BOOTSTRAP_SERVERS`` is
read as is, because that is the name operators already use.
"""

from __future__ import annotations

from functools import cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "settings"]


class Settings(BaseSettings):
    """labeltrail's settings (frozen; build a new one to change them)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_", frozen=True, extra="ignore")

    kafka_port: int = Field(9092, ge=1, le=65535)
    """``LABELTRAIL_KAFKA_PORT``: the port of the local broker (``ops/kafka/local_kafka.py``
    reads the same variable); the bootstrap default is ``127.0.0.1:<port>``."""

    kafka_bootstrap_servers: str = Field(
        default_factory=lambda data: f"127.0.0.1:{data['kafka_port']}",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "LABELTRAIL_KAFKA_BOOTSTRAP"),
    )
    """``KAFKA_BOOTSTRAP_SERVERS``: the Kafka cluster to use (unset: the local broker on
    ``LABELTRAIL_KAFKA_PORT``)."""

    kafka_security_protocol: str = "PLAINTEXT"
    """``LABELTRAIL_KAFKA_SECURITY_PROTOCOL``: PLAINTEXT, SSL, SASL_SSL, ..."""

    kafka_sasl_mechanism: str | None = None
    """``LABELTRAIL_KAFKA_SASL_MECHANISM``: e.g. PLAIN or SCRAM-SHA-512."""

    kafka_sasl_username: str | None = None
    """``LABELTRAIL_KAFKA_SASL_USERNAME``."""

    kafka_sasl_password: SecretStr | None = None
    """``LABELTRAIL_KAFKA_SASL_PASSWORD``: kept secret until a client is built."""

    kafka_message_max_bytes: int = Field(1_000_000, ge=64 * 1024)
    """``LABELTRAIL_KAFKA_MESSAGE_MAX_BYTES``: the largest record a producer sends (librdkafka's
    ``message.max.bytes``; keep it at most the topics' ``max.message.bytes``). A larger output
    is refused before it is sent, so the input that caused it is dead-lettered instead."""

    kafka_session_timeout_ms: int = Field(10_000, ge=6_000)
    """``LABELTRAIL_KAFKA_SESSION_TIMEOUT_MS``: how long the group waits for a silent worker
    before it hands its partitions to another (librdkafka's default is 45 s)."""

    group_instance_id: str | None = None
    """``LABELTRAIL_GROUP_INSTANCE_ID``: static group membership for a scalable stage's worker
    (unique per worker of a stage, stable across its restarts; ``{hostname}`` is replaced by
    the host's name, so one value serves every container): a restarted worker gets its
    partitions back at once, without a rebalance. Unset: dynamic membership."""

    runner: str = Field("confluent", pattern="^(confluent|faust)$")
    """``LABELTRAIL_RUNNER``: what feeds a stage service's fold from Kafka, ``confluent`` (the
    StageRunner) or ``faust`` (a faust worker); same guarantees, see docs/streaming.md."""

    topic_prefix: str = "labeltrail"
    """``LABELTRAIL_TOPIC_PREFIX``: every topic name starts with it (isolates test runs)."""

    topic_partitions: int = Field(6, ge=1)
    """``LABELTRAIL_TOPIC_PARTITIONS``: partitions of the keyed topics."""

    topic_replication: int = Field(1, ge=1)
    """``LABELTRAIL_TOPIC_REPLICATION``: replication factor for new topics."""

    clickhouse_dsn: str = "chdb://var/labeltrail/clickhouse"
    """``LABELTRAIL_CLICKHOUSE_DSN``: ``chdb:///<dir>`` (in process) or ``http://host:8123/db``."""

    clickhouse_password: SecretStr | None = None
    """``LABELTRAIL_CLICKHOUSE_PASSWORD``: for a server DSN without an inline password."""

    agreement_threshold: float = Field(0.85, ge=0.0, le=1.0)
    """``LABELTRAIL_AGREEMENT_THRESHOLD``: per-item agreement below it goes to an expert."""

    consensus_method: str = Field("reliability-weighted", pattern="^(reliability-weighted|mv)$")
    """``LABELTRAIL_CONSENSUS_METHOD``: ``reliability-weighted`` (votes weighted by each
    annotator's current reliability) or ``mv`` (plain majority vote)."""

    honeypot_rate: float = Field(0.05, ge=0.0, le=1.0)
    """``LABELTRAIL_HONEYPOT_RATE``: share of crowd tasks that are honeypots."""

    redundancy: int = Field(3, ge=1)
    """``LABELTRAIL_REDUNDANCY``: distinct crowd annotators per item."""

    min_crowd_pool: int = Field(0, ge=0)
    """``LABELTRAIL_MIN_CROWD_POOL``: tasking holds work until this many crowd annotators are
    registered (so a rebuild assigns the same annotators)."""

    gold_set_size: int = Field(150, ge=1)
    """``LABELTRAIL_GOLD_SET_SIZE``: the gold set's size (the article's 150). Tasking pairs a
    task chosen as a honeypot carrier with each gold item with probability 1 / this, so the
    honeypot rate holds only when it matches the gold set actually published."""

    auto_accept_threshold: float | None = Field(None, ge=0.0, le=1.0)
    """``LABELTRAIL_AUTO_ACCEPT_THRESHOLD``: a model probability at or above it, on a comment
    the scorer routed ``auto_accept``, commits a machine-made label; unset: never."""

    crowd_cost_usd: float = 0.04
    """``LABELTRAIL_CROWD_COST_USD``: cost of one crowd label."""

    expert_cost_usd: float = 5.00
    """``LABELTRAIL_EXPERT_COST_USD``: cost of one expert label."""

    low_margin_threshold: float = Field(0.1, ge=0.0, le=1.0)
    """``LABELTRAIL_LOW_MARGIN_THRESHOLD``: a model margin below it routes to annotation."""

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings for this cluster (the only place the secret is revealed)."""
        conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password is not None:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        return conf


@cache
def settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
