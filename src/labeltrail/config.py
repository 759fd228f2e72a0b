"""All configuration, read from the environment in one place: one frozen :class:`Settings`.

Pipeline-wide settings sit at the root (Kafka, topics, ClickHouse, the runner, and the three
routing decisions the scorer, tasking and consensus share); each stage or command with knobs
of its own has a section (``settings.tasking``, ``settings.labels``, ``settings.reliability``,
``settings.iaa``, ``settings.learning``, ``settings.trainer``, ``settings.active``,
``settings.annotate``, and ``settings.kafka``, how Kafka clients authenticate). A section
is itself a ``BaseSettings`` with its own variable prefix, built when the root is, so every
variable keeps its name. ``KAFKA_BOOTSTRAP_SERVERS`` is read as is, because that is the name
operators already use. Change settings with ``model_copy(update=...)`` (a section's too), never
by mutation. README's settings table lists every variable (``tests/test_config.py`` checks it
against :func:`variables`).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ActiveSettings",
    "AnnotateSettings",
    "CalibrationSettings",
    "IaaSettings",
    "KafkaSecuritySettings",
    "LabelsSettings",
    "LearningSettings",
    "ReliabilitySettings",
    "Settings",
    "TaskingSettings",
    "TrainerSettings",
    "WeakSettings",
    "settings",
    "variables",
]


class _Section(BaseSettings):
    """One section of the settings: frozen, its variables under its own ``env_prefix``."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")


class TaskingSettings(_Section):
    """The tasking stage: redundancy, honeypots, costs and model drafts (``LABELTRAIL_*``)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_")

    redundancy: int = Field(3, ge=1)
    """``LABELTRAIL_REDUNDANCY``: distinct crowd annotators per item."""

    honeypot_rate: float = Field(0.05, ge=0.0, le=1.0)
    """``LABELTRAIL_HONEYPOT_RATE``: share of crowd tasks that are honeypots."""

    min_crowd_pool: int = Field(0, ge=0)
    """``LABELTRAIL_MIN_CROWD_POOL``: tasking holds work until this many crowd annotators are
    registered (so a rebuild assigns the same annotators)."""

    min_expert_pool: int = Field(1, ge=1)
    """``LABELTRAIL_MIN_EXPERT_POOL``: tasking holds adjudication requests until this many
    experts are registered (one by default; the registry's size for rebuilds that choose the
    same experts)."""

    gold_set_size: int = Field(150, ge=1)
    """``LABELTRAIL_GOLD_SET_SIZE``: the gold set's size (the article's 150). Tasking pairs a
    task chosen as a honeypot carrier with each gold item with probability 1 / this, so the
    honeypot rate holds only when it matches the gold set actually published."""

    crowd_cost_usd: float = 0.04
    """``LABELTRAIL_CROWD_COST_USD``: cost of one crowd label."""

    expert_cost_usd: float = 5.00
    """``LABELTRAIL_EXPERT_COST_USD``: cost of one expert label."""

    prelabels: bool = False
    """``LABELTRAIL_PRELABELS``: copy the model's top class and probability into each crowd
    task as a draft the annotator confirms or corrects (model-assisted labeling)."""


class LabelsSettings(_Section):
    """The labels stage: machine-made labels (``LABELTRAIL_*``)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_")

    auto_accept_threshold: float | None = Field(None, ge=0.0, le=1.0)
    """``LABELTRAIL_AUTO_ACCEPT_THRESHOLD``: a model probability at or above it, on a comment
    the scorer routed ``auto_accept``, commits a machine-made label; unset: never."""


class ReliabilitySettings(_Section):
    """The reliability stage (``LABELTRAIL_RELIABILITY_*``)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_RELIABILITY_")

    refit_on_drain: bool = False
    """``LABELTRAIL_RELIABILITY_REFIT_ON_DRAIN``: run the pending Dawid-Skene refit when the
    input is drained: right for a finite replay (the demo), wrong for a live service (the
    runner drains whenever it is caught up), where refits follow event time only."""

    refit_method: str = Field("pds", pattern="^(pds|ds)$")
    """``LABELTRAIL_RELIABILITY_REFIT_METHOD``: the refit's model: ``pds`` (pooled-prior
    Bayesian Dawid-Skene, the project's default method) or ``ds`` (plain Dawid-Skene); the
    reliability-weighted consensus weighs votes by the confusion matrices it publishes."""

    suspend: bool = True
    """``LABELTRAIL_RELIABILITY_SUSPEND``: quality control acts: an annotator whose honeypot
    and gold accuracy falls below the floor is suspended (``AnnotatorSuspended``, actor
    ``qc``): tasking gives them nothing new and reassigns their open tasks."""

    suspend_floor: float = Field(0.7, gt=0.0, lt=1.0)
    """``LABELTRAIL_RELIABILITY_SUSPEND_FLOOR``: the accuracy floor."""

    suspend_probability: float = Field(0.95, ge=0.5, lt=1.0)
    """``LABELTRAIL_RELIABILITY_SUSPEND_PROBABILITY``: suspend when the Beta posterior puts
    more than this probability on an accuracy below the floor."""

    suspend_min_results: int = Field(10, ge=1)
    """``LABELTRAIL_RELIABILITY_SUSPEND_MIN_RESULTS``: never on fewer honeypot and gold
    results (since registration or the last reinstatement)."""


class CalibrationSettings(_Section):
    """The consensus confidence's calibration against gold (``LABELTRAIL_CALIBRATION_*``;
    docs/quality.md, "Calibrated confidence")."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_CALIBRATION_")

    enabled: bool = True
    """``LABELTRAIL_CALIBRATION_ENABLED``: the reliability stage fits a map at each refit and
    the consensus stage applies the latest one to the confidence that gates commit; a published
    model gets an auto-accept map fitted on its gold scores, which the scorer applies."""

    min_gold: int = Field(30, ge=1)
    """``LABELTRAIL_CALIBRATION_MIN_GOLD``: fit only on at least this many gold items with a
    complete crowd consensus (before: the confidence is the posterior's top value); a model's
    auto-accept map on at least this many gold items of its schema version."""

    method: str = Field("temperature", pattern="^temperature$")
    """``LABELTRAIL_CALIBRATION_METHOD``: ``temperature`` scaling (one parameter; the label
    never changes)."""

    bins: int = Field(10, ge=2, le=50)
    """``LABELTRAIL_CALIBRATION_BINS``: confidence bins of the reliability diagram and ECE."""

    include_verdicts: bool = False
    """``LABELTRAIL_CALIBRATION_INCLUDE_VERDICTS``: count expert verdicts as gold too (more
    items, but the hard ones: those the agreement gate sent to an expert)."""

    min_confidence: float = Field(0.0, ge=0.0, le=1.0)
    """``LABELTRAIL_CALIBRATION_MIN_CONFIDENCE``: a complete item also needs its calibrated
    confidence at or above this to be committed; below, it goes to an expert. 0: the
    agreement threshold alone gates."""


class IaaSettings(_Section):
    """The inter-annotator agreement stage (``LABELTRAIL_IAA_*``)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_IAA_")

    allowed_lateness: dt.timedelta = Field(dt.timedelta(days=1), ge=dt.timedelta(0))
    """``LABELTRAIL_IAA_ALLOWED_LATENESS``: how far event time runs past a window's end before
    it closes (an ISO 8601 duration such as ``P1D`` or ``PT2H``, or ``HH:MM:SS``); later
    votes are dead-lettered as late."""

    close_on_drain: bool = False
    """``LABELTRAIL_IAA_CLOSE_ON_DRAIN``: close every open window when the input is drained:
    right for a finite replay, wrong live (it would cut today's window short)."""


class LearningSettings(_Section):
    """The scorer and where models live (``LABELTRAIL_LEARNING_*``)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_LEARNING_")

    models_dir: Path = Path("var/models")
    """``LABELTRAIL_LEARNING_MODELS_DIR``: where model artifacts are written and resolved."""

    auto_accept_threshold: float | None = Field(None, ge=0.0, le=1.0)
    """``LABELTRAIL_LEARNING_AUTO_ACCEPT_THRESHOLD``: top probability at which the scorer
    routes a comment ``auto_accept`` (unset: never)."""

    scorer_threads: int = Field(1, ge=1)
    """``LABELTRAIL_LEARNING_SCORER_THREADS``: onnxruntime intra-op threads per scorer."""

    gate_tolerance: float = Field(0.02, ge=0.0, le=1.0)
    """``LABELTRAIL_LEARNING_GATE_TOLERANCE``: the publish gate refuses a model whose gold
    accuracy on any slice is lower than the live model's by more than this (the trainer and
    ``labeltrail model publish``; ``--force`` overrides, recorded)."""


class WeakSettings(_Section):
    """Weak supervision live: the lf stage and the joint label model's weak stage
    (``LABELTRAIL_WEAK_*``; docs/learning.md, "Weak supervision, live")."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_WEAK_")

    lf_paths: list[str] = []
    """``LABELTRAIL_WEAK_LF_PATHS``: more LFs, as ``module:attr`` paths (a JSON list), besides
    the entry points of the group ``labeltrail.lfs``."""

    entry_points: bool = True
    """``LABELTRAIL_WEAK_ENTRY_POINTS``: run the LFs registered as entry points."""

    schema_version: str = "v3"
    """``LABELTRAIL_WEAK_SCHEMA_VERSION``: the schema whose classes LFs vote and weak labels
    are committed under."""

    refit_every: dt.timedelta = Field(dt.timedelta(days=1), gt=dt.timedelta(0))
    """``LABELTRAIL_WEAK_REFIT_EVERY``: event time between two fits of the joint label model."""

    refit_on_drain: bool = False
    """``LABELTRAIL_WEAK_REFIT_ON_DRAIN``: fit when the input is drained (a finite replay)."""

    model_min_confidence: float = Field(0.6, ge=0.0, le=1.0)
    """``LABELTRAIL_WEAK_MODEL_MIN_CONFIDENCE``: the model's score votes its top class from
    this probability on (it abstains below)."""


class TrainerSettings(_Section):
    """When the trainer retrains and the model it trains (``LABELTRAIL_TRAINER_*``); the
    fields are :class:`~labeltrail.learning.retrain.RetrainConfig`'s, by name."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_TRAINER_")

    every_labels: int = Field(500, ge=0)
    """``LABELTRAIL_TRAINER_EVERY_LABELS``: an export and a model per this many new labels
    (0: only on exports made elsewhere)."""

    min_rows: int = Field(50, ge=1)
    """``LABELTRAIL_TRAINER_MIN_ROWS``: fewer training rows are not trained on."""

    schema_version: str = "v3"
    """``LABELTRAIL_TRAINER_SCHEMA_VERSION``: the label schema the model predicts."""

    weak_labels: Literal["off", "fill"] = "off"
    """``LABELTRAIL_TRAINER_WEAK_LABELS``: ``fill`` trains on the weak stage's labels of
    comments no human label covers (from an export that names ``weak.labels``); ``off``
    leaves them out."""

    weak_weight: float = Field(0.5, ge=0.0, le=1.0)
    """``LABELTRAIL_TRAINER_WEAK_WEIGHT``: a weak row's weight, times its confidence."""

    n_buckets: int = Field(2**16, ge=16)
    """``LABELTRAIL_TRAINER_N_BUCKETS``: hashed n-gram buckets."""

    dim: int = Field(32, ge=1)
    """``LABELTRAIL_TRAINER_DIM``: embedding width."""

    hidden: int = Field(32, ge=1)
    """``LABELTRAIL_TRAINER_HIDDEN``: hidden layer width."""

    epochs: int = Field(12, ge=1)
    """``LABELTRAIL_TRAINER_EPOCHS``."""

    batch_size: int = Field(32, ge=1)
    """``LABELTRAIL_TRAINER_BATCH_SIZE``."""

    seed: int = 0
    """``LABELTRAIL_TRAINER_SEED``: fixes initialization and shuffling."""

    threads: int = Field(1, ge=1)
    """``LABELTRAIL_TRAINER_THREADS``: torch threads (more than free cores slows sparse updates)."""


class ActiveSettings(_Section):
    """Active learning as a service (``LABELTRAIL_ACTIVE_*``; docs/learning.md, "Active
    learning service"): when it picks a batch, how, and the daily budget. A task costs the
    budget tasking's ``crowd_cost_usd`` times its ``redundancy``."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_ACTIVE_")

    strategy: Literal["least_confidence", "margin", "entropy", "qbc"] = "margin"
    """``LABELTRAIL_ACTIVE_STRATEGY``: how uncertainty is scored (``qbc``: disagreement of the
    published models that scored a comment)."""

    batch_size: int = Field(50, ge=1)
    """``LABELTRAIL_ACTIVE_BATCH_SIZE``: comments requested per batch (the budget may cut it)."""

    diversity: float = Field(0.5, ge=0.0, le=1.0)
    """``LABELTRAIL_ACTIVE_DIVERSITY``: weight of text diversity against uncertainty."""

    every_labels: int = Field(100, ge=0)
    """``LABELTRAIL_ACTIVE_EVERY_LABELS``: a batch per this many new labels (0: not on labels)."""

    every_minutes: float = Field(60.0, ge=0.0)
    """``LABELTRAIL_ACTIVE_EVERY_MINUTES``: a batch once this many minutes of event time have
    passed since the last (0: not on time)."""

    tasks_per_day: int = Field(500, ge=0)
    """``LABELTRAIL_ACTIVE_TASKS_PER_DAY``: at most this many requests per event day."""

    usd_per_day: float = Field(100.0, ge=0.0)
    """``LABELTRAIL_ACTIVE_USD_PER_DAY``: at most this much spent per event day."""

    committee: int = Field(3, ge=3)
    """``LABELTRAIL_ACTIVE_COMMITTEE``: qbc counts a comment once this many models scored it."""

    seed: int = 0
    """``LABELTRAIL_ACTIVE_SEED``: salts the text sketches diversity is measured on."""


class ErasureSettings(_Section):
    """Crypto-shredding of comment text (``LABELTRAIL_ERASURE_*``, ``docs/erasure.md``)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_ERASURE_")

    enabled: bool = True
    """``LABELTRAIL_ERASURE_ENABLED``: seal each comment's text and author under a data key of
    its own when it is produced, so ``labeltrail erase`` can destroy them."""


class AnnotateSettings(_Section):
    """The annotation frontend (``LABELTRAIL_ANNOTATE_*``)."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_ANNOTATE_")

    host: str = "127.0.0.1"
    """``LABELTRAIL_ANNOTATE_HOST``: the address to listen on."""

    port: int = Field(8080, ge=0, le=65535)
    """``LABELTRAIL_ANNOTATE_PORT``: the port to listen on (0 picks a free one)."""

    tokens_file: str | None = None
    """``LABELTRAIL_ANNOTATE_TOKENS_FILE``: lines ``annotator_id sha256:<hex>``."""

    tokens: str = ""
    """``LABELTRAIL_ANNOTATE_TOKENS``: the same entries inline, separated by commas."""

    submit_rate: float = Field(2.0, gt=0)
    """``LABELTRAIL_ANNOTATE_SUBMIT_RATE``: sustained submissions per second per annotator."""

    submit_burst: int = Field(10, ge=1)
    """``LABELTRAIL_ANNOTATE_SUBMIT_BURST``: submissions an annotator may make at once."""

    signin_rate: float = Field(0.2, gt=0)
    """``LABELTRAIL_ANNOTATE_SIGNIN_RATE``: sign-in attempts per second per client address."""

    signin_burst: int = Field(10, ge=1)
    """``LABELTRAIL_ANNOTATE_SIGNIN_BURST``: sign-in attempts a client may make at once."""

    auth_fail_rate: float = Field(0.1, gt=0)
    """``LABELTRAIL_ANNOTATE_AUTH_FAIL_RATE``: failed credentials (bearer, session cookie or
    sign-in) forgiven per second, per client address and per credential."""

    auth_fail_burst: int = Field(10, ge=1)
    """``LABELTRAIL_ANNOTATE_AUTH_FAIL_BURST``: failures allowed before a 429."""

    session_max_age: float = Field(12 * 3600.0, gt=0)
    """``LABELTRAIL_ANNOTATE_SESSION_MAX_AGE``: seconds a sign-in session lasts (12 h)."""

    session_idle: float = Field(3600.0, gt=0)
    """``LABELTRAIL_ANNOTATE_SESSION_IDLE``: seconds without a request that end a session."""

    token_max_age: float = Field(90 * 86400.0, gt=0)
    """``LABELTRAIL_ANNOTATE_TOKEN_MAX_AGE``: seconds a token lasts after its issue time (90 d)."""

    secure_cookie: bool = False
    """``LABELTRAIL_ANNOTATE_SECURE_COOKIE``: mark the session cookie Secure (behind TLS)."""

    shutdown_timeout: float = Field(30.0, gt=0)
    """``LABELTRAIL_ANNOTATE_SHUTDOWN_TIMEOUT``: seconds in-flight requests get on SIGTERM."""

    ready_timeout: float = Field(120.0, gt=0)
    """``LABELTRAIL_ANNOTATE_READY_TIMEOUT``: seconds to wait for the task log to be read."""


class KafkaSecuritySettings(_Section):
    """How every Kafka client authenticates to the cluster (``LABELTRAIL_KAFKA_*``):
    PLAINTEXT, TLS with mutual TLS, or SASL (SCRAM or PLAIN) over TLS (docs/security.md).
    The address is the root's ``kafka_bootstrap_servers``."""

    model_config = SettingsConfigDict(env_prefix="LABELTRAIL_KAFKA_")

    security_protocol: str = Field("PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_SSL|SASL_PLAINTEXT)$")
    """``LABELTRAIL_KAFKA_SECURITY_PROTOCOL``: PLAINTEXT, SSL (TLS; mutual TLS with a client
    certificate), SASL_SSL (SASL over TLS) or SASL_PLAINTEXT (SASL without TLS: tests only)."""

    sasl_mechanism: str | None = Field(None, pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$")
    """``LABELTRAIL_KAFKA_SASL_MECHANISM``: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (required
    with a SASL protocol)."""

    sasl_username: str | None = None
    """``LABELTRAIL_KAFKA_SASL_USERNAME``: the SASL user, the principal ``User:<name>``."""

    sasl_password: SecretStr | None = None
    """``LABELTRAIL_KAFKA_SASL_PASSWORD``: kept secret until a client is built."""

    ssl_ca_file: Path | None = None
    """``LABELTRAIL_KAFKA_SSL_CA_FILE``: PEM certificates that sign the brokers' (unset: the
    system's trust store)."""

    ssl_cert_file: Path | None = None
    """``LABELTRAIL_KAFKA_SSL_CERT_FILE``: this client's PEM certificate, for mutual TLS."""

    ssl_key_file: Path | None = None
    """``LABELTRAIL_KAFKA_SSL_KEY_FILE``: the PEM private key of that certificate."""

    ssl_key_password: SecretStr | None = None
    """``LABELTRAIL_KAFKA_SSL_KEY_PASSWORD``: the key's password, if it is encrypted."""

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"{self.security_protocol} needs LABELTRAIL_KAFKA_SASL_MECHANISM, "
                "LABELTRAIL_KAFKA_SASL_USERNAME and LABELTRAIL_KAFKA_SASL_PASSWORD"
            )
        if not sasl and (self.sasl_mechanism or self.sasl_username):
            raise ValueError(
                f"SASL settings are set but LABELTRAIL_KAFKA_SECURITY_PROTOCOL is "
                f"{self.security_protocol} (SASL_SSL uses them)"
            )
        if not tls and (self.ssl_ca_file or self.ssl_cert_file or self.ssl_key_file):
            raise ValueError(
                f"TLS files are set but LABELTRAIL_KAFKA_SECURITY_PROTOCOL is "
                f"{self.security_protocol} (SSL or SASL_SSL use them)"
            )
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError(
                "mutual TLS needs both LABELTRAIL_KAFKA_SSL_CERT_FILE and "
                "LABELTRAIL_KAFKA_SSL_KEY_FILE"
            )
        return self

    def librdkafka(self) -> dict[str, str]:
        """These settings in librdkafka's terms (the only place the secrets are revealed)."""
        conf = {"security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_file:
            conf["ssl.ca.location"] = str(self.ssl_ca_file)
        if self.ssl_cert_file:
            conf["ssl.certificate.location"] = str(self.ssl_cert_file)
        if self.ssl_key_file:
            conf["ssl.key.location"] = str(self.ssl_key_file)
        if self.ssl_key_password is not None:
            conf["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return conf


class Settings(BaseSettings):
    """labeltrail's settings (frozen; ``model_copy(update=...)`` makes a changed one)."""

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

    fused: bool = False
    """``LABELTRAIL_FUSED``: ``labeltrail up`` runs every stage but the scorer and the trainer
    (tasking, consensus, labels, reliability, iaa...) as one process (``labeltrail serve
    fused``) instead of one each: what one writes for another is handed over in memory and
    still written to its topic. The separate services scale out; the fused one is for a small
    deployment (docs/streaming.md)."""

    metrics_port: int = Field(0, ge=0, le=65535 - 15)
    """``LABELTRAIL_METRICS_PORT``: base port of the services' ``/metrics`` and ``/healthz``;
    each service listens on it plus its own offset (projector 0, tasking 1, consensus 2,
    labels 3, reliability 4, iaa 5, scorer 6, trainer 7, another fold 9; see
    docs/operations.md). 0: no metrics server."""

    metrics_host: str = "127.0.0.1"
    """``LABELTRAIL_METRICS_HOST``: the address the metrics servers listen on."""

    topic_prefix: str = "labeltrail"
    """``LABELTRAIL_TOPIC_PREFIX``: every topic name starts with it (isolates test runs)."""

    topic_partitions: int = Field(6, ge=1)
    """``LABELTRAIL_TOPIC_PARTITIONS``: partitions of the keyed topics."""

    topic_replication: int = Field(1, ge=1)
    """``LABELTRAIL_TOPIC_REPLICATION``: replication factor for new topics."""

    wire_format: str = Field("single-object", pattern="^(single-object|registry)$")
    """``LABELTRAIL_WIRE_FORMAT``: how events are written, ``single-object`` (Avro's
    single-object encoding, no registry) or ``registry`` (Confluent framing: a schema id from
    the schema registry); either is read (docs/producers.md)."""

    schema_registry_url: str | None = None
    """``LABELTRAIL_SCHEMA_REGISTRY_URL``: a Confluent-compatible schema registry; needed to
    write ``registry`` and to read Confluent-framed records."""

    clickhouse_dsn: str = "chdb://var/labeltrail/clickhouse"
    """``LABELTRAIL_CLICKHOUSE_DSN``: ``chdb:///<dir>`` (in process) or ``http://host:8123/db``."""

    clickhouse_password: SecretStr | None = None
    """``LABELTRAIL_CLICKHOUSE_PASSWORD``: for a server DSN without an inline password."""

    clickhouse_http_port: int = Field(0, ge=0, le=65535)
    """``LABELTRAIL_CLICKHOUSE_HTTP_PORT``: the port where a projector on a ``chdb://``
    directory serves its engine read-only over ClickHouse's HTTP interface, so readers query
    while it projects (docs/audit.md). 0: any free port (the CLI finds it in the directory)."""

    clickhouse_http_host: str = "127.0.0.1"
    """``LABELTRAIL_CLICKHOUSE_HTTP_HOST``: the address that read endpoint listens on."""

    agreement_threshold: float = Field(0.85, ge=0.0, le=1.0)
    """``LABELTRAIL_AGREEMENT_THRESHOLD``: per-item agreement below it goes to an expert."""

    consensus_method: str = Field("reliability-weighted", pattern="^(reliability-weighted|mv)$")
    """``LABELTRAIL_CONSENSUS_METHOD``: ``reliability-weighted`` (votes weighted by each
    annotator's current reliability) or ``mv`` (plain majority vote)."""

    low_margin_threshold: float = Field(0.1, ge=0.0, le=1.0)
    """``LABELTRAIL_LOW_MARGIN_THRESHOLD``: a model margin below it routes to annotation."""

    tasking: TaskingSettings = Field(default_factory=TaskingSettings)
    """The tasking stage, model drafts included."""

    labels: LabelsSettings = Field(default_factory=LabelsSettings)
    """The labels stage, auto-accept included."""

    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)
    """The reliability stage."""

    iaa: IaaSettings = Field(default_factory=IaaSettings)
    """The agreement stage."""

    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    """The consensus confidence's calibration against gold."""

    learning: LearningSettings = Field(default_factory=LearningSettings)
    """The scorer, and where models are kept."""

    trainer: TrainerSettings = Field(default_factory=TrainerSettings)
    """The trainer."""

    weak: WeakSettings = Field(default_factory=WeakSettings)
    """Weak supervision live: LFs and the joint label model."""

    active: ActiveSettings = Field(default_factory=ActiveSettings)
    """The active learning service."""

    annotate: AnnotateSettings = Field(default_factory=AnnotateSettings)
    """The annotation frontend."""

    erasure: ErasureSettings = Field(default_factory=ErasureSettings)
    """Sealing comment text so that it can be erased."""

    kafka: KafkaSecuritySettings = Field(default_factory=KafkaSecuritySettings)
    """How every Kafka client authenticates: TLS, mutual TLS, SASL (docs/security.md)."""

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings for this cluster: its address and how to authenticate
        (:meth:`KafkaSecuritySettings.librdkafka`). Every Kafka client labeltrail builds
        starts from it (faust's from the same section, ``labeltrail.kafka.security``)."""
        return {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            **self.kafka.librdkafka(),
        }


@cache
def settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()


def variables() -> dict[str, str]:
    """Every environment variable the settings read, mapped to its setting's dotted path
    (``LABELTRAIL_PRELABELS`` -> ``tasking.prelabels``); a setting read under several names
    has one entry per name."""
    found: dict[str, str] = {}

    def walk(model: type[BaseSettings], path: str) -> None:
        prefix = model.model_config.get("env_prefix", "")
        for name, info in model.model_fields.items():
            kind = info.annotation
            if isinstance(kind, type) and issubclass(kind, BaseSettings):
                walk(kind, f"{path}{name}.")
                continue
            alias = info.validation_alias
            names = (
                [str(a) for a in alias.choices]
                if isinstance(alias, AliasChoices)
                else [str(alias)]
                if alias is not None
                else [f"{prefix}{name}"]
            )
            for env in names:
                found[env.upper()] = f"{path}{name}"

    walk(Settings, "")
    return found
