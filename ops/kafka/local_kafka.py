#!/usr/bin/env python3
"""Run a real single-node Apache Kafka broker (KRaft) on this machine, from Maven Central jars.

No Docker needed: ``fetch`` resolves the pinned broker with Maven (``ops/kafka/pom.xml``) into a
lib dir, ``start`` formats KRaft storage and starts ``kafka.Kafka`` detached on 127.0.0.1, waits
until it serves (metadata, then a produce/consume round trip) and records its PID; ``stop`` ends
that PID (SIGTERM, then SIGKILL after a grace period), never a process found by name.

Usage::

    python ops/kafka/local_kafka.py fetch
    python ops/kafka/local_kafka.py start [--port 9092] [--timeout 90]
    python ops/kafka/local_kafka.py status
    python ops/kafka/local_kafka.py env        # KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092
    python ops/kafka/local_kafka.py stop
    python ops/kafka/local_kafka.py reset      # stop, then delete every topic (keeps the jars)

State lives under ``--state-dir`` (env ``LABELTRAIL_KAFKA_HOME``, default ``<repo>/var/kafka``):
``lib/`` (jars), ``data/`` (log.dirs), ``logs/`` (server.log, stdout.log), ``server.properties``,
``cluster.id``, ``broker.pid`` and ``broker.json``.

Importable: :func:`ensure_broker` returns the bootstrap string, :func:`start_broker` also says
whether this call started the broker, :func:`stop_broker` and :func:`broker_status`.

A *secured* broker (``start_broker(state_dir, port=..., secure=Secured(...))``, importable only,
always in its own state dir and ports, never the shared 9092 one) serves SASL_SSL
(SCRAM-SHA-512) on ``port`` and mutual TLS (``ssl.client.auth=required``) on
``Secured.ssl_port``, with PEM key and trust stores, the StandardAuthorizer (no ACL: denied)
and super users for the broker's own certificate and the admin user; its SCRAM users are
created when the storage is formatted (``--add-scram``). ``Secured.lib_dir`` reuses the jars
already fetched elsewhere. See docs/security.md.

Standard library only; ``confluent_kafka`` is used for the readiness check when importable
(otherwise readiness is the "Kafka Server started" log line plus an open port).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.properties"

HOST = "127.0.0.1"
DEFAULT_PORT = 9092
DEFAULT_TIMEOUT_S = 90.0
DEFAULT_STOP_GRACE_S = 30.0
MIN_JAVA = 17
READY_LINE = "Kafka Server started"
SCRATCH_TOPIC = "__labeltrail_readiness"

ENV_HOME = "LABELTRAIL_KAFKA_HOME"
ENV_PORT = "LABELTRAIL_KAFKA_PORT"
"""Also read by ``labeltrail.config.Settings``: with ``KAFKA_BOOTSTRAP_SERVERS`` unset, every
labeltrail command uses 127.0.0.1:<this port>, so one variable moves the broker and its clients."""
ENV_VERSION = "LABELTRAIL_KAFKA_VERSION"
ENV_JVM_OPTS = "LABELTRAIL_KAFKA_JVM_OPTS"

# Test-sized JVM (infra notes): small heap, serial GC, C1 only. --throughput drops C1-only.
JVM_OPTS = [
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]
JVM_FAST_START = ["-XX:TieredStopAtLevel=1"]
TOOL_JVM_OPTS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says why."""


@dataclass(frozen=True)
class Secured:
    """The listeners, stores and users of a secured broker (all files PEM)."""

    ssl_port: int
    """The mutual TLS listener (the broker's own connections use it too)."""
    keystore: Path
    """The broker's private key (unencrypted PKCS#8) and certificate chain, in one PEM file."""
    truststore: Path
    """The CA certificates that sign the broker's and the clients' certificates."""
    admin: tuple[str, str] = ("admin", "admin-secret")
    """A SCRAM-SHA-512 super user (name, password); the readiness check connects as it."""
    users: tuple[tuple[str, str], ...] = ()
    """More SCRAM-SHA-512 users (name, password), created when the storage is formatted."""
    broker: str = "broker"
    """The CN of the keystore's certificate: a super user (its own replication and control)."""
    super_users: tuple[str, ...] = ()
    """More super users: certificate CNs or SCRAM names."""
    lib_dir: Path | None = field(default=None)
    """Jars already fetched (e.g. the shared broker's ``var/kafka/lib``), linked, not fetched."""

    def client_conf(self, bootstrap: str) -> dict[str, object]:
        """librdkafka settings of the admin over SASL_SSL (what the readiness check uses)."""
        return {
            "bootstrap.servers": bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": self.admin[0],
            "sasl.password": self.admin[1],
            "ssl.ca.location": str(self.truststore),
        }

    def properties(self, port: int, controller_port: int) -> dict[str, str]:
        """What a secured broker's server.properties differs in."""
        supers = [self.broker, self.admin[0], *self.super_users]
        return {
            "listeners": (
                f"SASL_SSL://{HOST}:{port},SSL://{HOST}:{self.ssl_port},"
                f"CONTROLLER://{HOST}:{controller_port}"
            ),
            "advertised.listeners": f"SASL_SSL://{HOST}:{port},SSL://{HOST}:{self.ssl_port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name": "SSL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.truststore),
            # SSL listeners (clients and the broker's own) must show a certificate; the
            # SASL_SSL listener ignores this unprefixed setting (KIP-684).
            "ssl.client.auth": "required",
            # A certificate's principal is its CN: User:tasking, not the whole DN.
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)(,.*)?$/$1/,DEFAULT",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": ";".join(f"User:{name}" for name in supers),
        }

    def scram_args(self) -> list[str]:
        """``kafka-storage format`` arguments that create the SCRAM users."""
        args = []
        for name, password in (self.admin, *self.users):
            args += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        return args


# --------------------------------------------------------------------------------------------
# Paths and small helpers


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def server_properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def cluster_id(self) -> Path:
        return self.root / "cluster.id"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def info_file(self) -> Path:
        return self.root / "broker.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.logs / "stdout.log"


def default_state_dir() -> Path:
    env = os.environ.get(ENV_HOME)
    return Path(env).resolve() if env else REPO_ROOT / "var" / "kafka"


def default_port() -> int:
    return int(os.environ.get(ENV_PORT, DEFAULT_PORT))


def pinned_kafka_version() -> str:
    """The Kafka version pinned in pom.xml (override with LABELTRAIL_KAFKA_VERSION)."""
    env = os.environ.get(ENV_VERSION)
    if env:
        return env
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not match:
        raise LocalKafkaError(f"no <kafka.version> property in {POM}")
    return match.group(1).strip()


def _layout(state_dir: str | os.PathLike[str] | None) -> Layout:
    return Layout(Path(state_dir).resolve() if state_dir else default_state_dir())


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"[local-kafka] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    """Serialise fetch/start/stop across processes (pytest-xdist workers, two shells)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40, since: int = 0) -> str:
    """Last ``lines`` lines written after byte ``since``, without Kafka's indented config dumps."""
    try:
        with open(path, "rb") as fh:
            fh.seek(since if since <= path.stat().st_size else 0)  # 0: the log rolled over
            text = fh.read().decode(errors="replace")
    except OSError:
        return f"(no {path})"
    kept = [line for line in text.splitlines() if not line.startswith("\t")]
    return "\n".join(kept[-lines:]) or f"({path}: nothing new)"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Tools


def _require_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else None
    if not java or not os.access(java, os.X_OK):
        java = shutil.which("java")
    if not java:
        raise LocalKafkaError(
            f"java not found (need Java {MIN_JAVA}+ on PATH or JAVA_HOME); "
            "on Debian: apt-get install openjdk-17-jre-headless"
        )
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0_x" style
            major = int(match.group(2))
        if major < MIN_JAVA:
            raise LocalKafkaError(f"{java} is Java {major}; Kafka 4.x needs Java {MIN_JAVA}+")
    return java


def _require_mvn() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalKafkaError(
            "mvn not found: needed once to fetch the broker jars "
            "(on Debian: apt-get install maven), or point --state-dir at a lib/ already fetched"
        )
    return mvn


# --------------------------------------------------------------------------------------------
# fetch


def _lib_complete(layout: Layout, version: str) -> bool:
    marker = layout.lib / ".fetched"
    return (
        marker.is_file()
        and marker.read_text().strip() == version
        and (layout.lib / f"kafka_2.13-{version}.jar").is_file()
        and any(layout.lib.glob("log4j-core-*.jar"))
    )


def fetch(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    kafka_version: str | None = None,
    quiet: bool = False,
) -> Path:
    """Copy the broker's runtime jars into ``<state>/lib`` (no-op when already there)."""
    layout = _layout(state_dir)
    version = kafka_version or pinned_kafka_version()
    with _locked(layout):
        return _fetch_locked(layout, version, quiet)


def _fetch_locked(layout: Layout, version: str, quiet: bool) -> Path:
    if _lib_complete(layout, version):
        _log(f"jars for Kafka {version} already in {layout.lib}", quiet)
        return layout.lib
    mvn = _require_mvn()
    staging = layout.root / "lib.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-Dkafka.version={version}",
        f"-Dkafka.lib.dir={staging}",
    ]
    _log(f"fetching Apache Kafka {version} (kafka_2.13) with Maven into {layout.lib}", quiet)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        output = re.sub(r"\x1b\[[0-9;]*m", "", output)  # Maven's ANSI colour codes
        raise LocalKafkaError(
            f"Maven could not fetch Apache Kafka {version} (exit {proc.returncode}):\n"
            f"$ {' '.join(cmd)}\n{output[-6000:]}"
        )
    if not (staging / f"kafka_2.13-{version}.jar").is_file():
        raise LocalKafkaError(f"Maven finished but {staging} has no kafka_2.13-{version}.jar")
    (staging / ".fetched").write_text(version + "\n")
    shutil.rmtree(layout.lib, ignore_errors=True)  # never mix two versions on the classpath
    staging.rename(layout.lib)
    jars = len(list(layout.lib.glob("*.jar")))
    _log(f"fetched {jars} jars in {elapsed:.1f} s", quiet)
    return layout.lib


# --------------------------------------------------------------------------------------------
# Process bookkeeping


@dataclass
class BrokerInfo:
    """What ``start_broker`` knows about the broker it started or found."""

    bootstrap: str
    port: int
    controller_port: int
    pid: int | None
    state_dir: str
    kafka_version: str
    started: bool = False  # True when this call started the process
    owned: bool = True  # False: a broker on the port that this state dir did not start
    start_seconds: float | None = None


def _pid_alive(pid: int) -> bool:
    """True for a live (non-zombie) process with this PID."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own exited child: reap it
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_our_broker(pid: int, layout: Layout) -> bool:
    """Guard against PID reuse: the process must be kafka.Kafka with our server.properties."""
    if not _pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv]
    return "kafka.Kafka" in args and str(layout.server_properties) in args


def _read_pid(layout: Layout) -> int | None:
    try:
        return int(layout.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_info(layout: Layout) -> dict[str, object]:
    try:
        data = json.loads(layout.info_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _clear_pid(layout: Layout) -> None:
    for path in (layout.pid_file, layout.info_file):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _running_pid(layout: Layout) -> int | None:
    """PID from our pid file if that process is still our broker; clears a stale pid file."""
    pid = _read_pid(layout)
    if pid is None:
        return None
    if _is_our_broker(pid, layout):
        return pid
    _clear_pid(layout)
    return None


# --------------------------------------------------------------------------------------------
# Configuration


def _new_cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _cluster_id(layout: Layout) -> str:
    meta = layout.data / "meta.properties"
    if meta.is_file():  # already formatted: the id on disk wins
        for line in meta.read_text().splitlines():
            if line.startswith("cluster.id="):
                cid = line.split("=", 1)[1].strip()
                layout.cluster_id.write_text(cid + "\n")
                return cid
    if layout.cluster_id.is_file():
        cid = layout.cluster_id.read_text().strip()
        if cid:
            return cid
    cid = _new_cluster_id()
    layout.cluster_id.write_text(cid + "\n")
    return cid


def server_properties(
    layout: Layout, port: int, controller_port: int, secure: Secured | None = None
) -> str:
    """server.properties for one combined broker+controller node on 127.0.0.1 (``secure``:
    with the TLS and SASL listeners and the authorizer of :class:`Secured` instead)."""
    props = {
        # KRaft combined mode with a static quorum of one voter (format WITHOUT --standalone).
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(layout.data),
        # One node: replication factor 1 and min ISR 1 everywhere, or groups and transactions hang.
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Fast tests: no rebalance delay, one partition for the internal topics.
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "num.partitions": "1",
        # 2 shared cores.
        "num.network.threads": "2",
        "num.io.threads": "4",
        "background.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        # Our code creates its topics explicitly; auto-creation stays on for faust's convenience.
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        # A dev/test broker: keep the disk bounded.
        "log.retention.hours": "24",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }
    if secure is not None:
        props.update(secure.properties(port, controller_port))
    header = (
        "# Written by ops/kafka/local_kafka.py on every start; edits here are overwritten.\n"
        f"# Single-node KRaft broker for development and tests on {HOST}.\n"
    )
    return header + "".join(f"{k}={v}\n" for k, v in props.items())


def _classpath(layout: Layout) -> str:
    return str(layout.lib / "*")


def _format_storage(
    layout: Layout, java: str, cluster_id: str, extra: tuple[str, ...] = ()
) -> None:
    cmd = [
        java,
        *TOOL_JVM_OPTS,
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dkafka.logs.dir={layout.logs}",
        "-Dlabeltrail.kafka.logfile=storage-format.log",
        "-cp",
        _classpath(layout),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(layout.server_properties),
        "--ignore-formatted",
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LocalKafkaError(
            f"kafka.tools.StorageTool format failed (exit {proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr).strip()[-4000:]}"
        )


# --------------------------------------------------------------------------------------------
# Readiness


def _have_confluent_kafka() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True


def _quiet_client_conf(bootstrap: str, secure: Secured | None = None) -> dict[str, object]:
    # log_level 0: librdkafka would print "Connection refused" lines while the broker boots.
    conf = secure.client_conf(bootstrap) if secure is not None else {}
    return {"bootstrap.servers": bootstrap, **conf, "log_level": 0}


def _metadata_ok(bootstrap: str, secure: Secured | None = None) -> bool:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient(_quiet_client_conf(bootstrap, secure)).list_topics(timeout=2)
    except KafkaException:
        return False
    return bool(md.brokers)


def _round_trip(bootstrap: str, deadline: float, secure: Secured | None = None) -> None:
    """Create the scratch topic, produce one record, read it back through a consumer group."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    conf = _quiet_client_conf(bootstrap, secure)
    admin = AdminClient(conf)
    futures = admin.create_topics([NewTopic(SCRATCH_TOPIC, 1, 1)], operation_timeout=10)
    try:
        futures[SCRATCH_TOPIC].result(timeout=max(1.0, deadline - time.monotonic()))
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise

    token = uuid.uuid4().hex.encode()
    producer = Producer({**conf, "acks": "all", "message.timeout.ms": 30000})
    delivered: list[object] = []
    producer.produce(SCRATCH_TOPIC, value=token, on_delivery=lambda err, msg: delivered.append(err))
    if producer.flush(max(1.0, deadline - time.monotonic())) != 0 or delivered != [None]:
        raise LocalKafkaError(f"readiness produce did not complete: {delivered}")

    consumer = Consumer(
        {
            **conf,
            "group.id": "labeltrail-readiness",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([SCRATCH_TOPIC])
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.value() == token:
                consumer.commit(message=msg, asynchronous=False)
                return
        raise LocalKafkaError("readiness consume timed out: produced record never read back")
    finally:
        consumer.close()


def _kafka_answers(bootstrap: str) -> bool:
    port = int(bootstrap.rsplit(":", 1)[1])
    if not _port_open(port):
        return False
    return _metadata_ok(bootstrap) if _have_confluent_kafka() else True


def _wait_ready(
    layout: Layout,
    pid: int | None,
    bootstrap: str,
    timeout: float,
    log_offsets: tuple[int, int] = (0, 0),
    secure: Secured | None = None,
) -> None:
    """Wait until the broker serves; ``pid``: fail early if that process exits.

    ``log_offsets``: sizes of server.log and stdout.log when the broker was spawned, so an error
    shows only what this start wrote."""
    deadline = time.monotonic() + timeout
    port = int(bootstrap.rsplit(":", 1)[1])
    use_client = _have_confluent_kafka()

    def died() -> bool:
        return pid is not None and not _pid_alive(pid)

    last_error = ""
    while time.monotonic() < deadline:
        if died():
            break
        if _port_open(port):
            if not use_client:
                if READY_LINE in _tail(layout.server_log, 10**6, log_offsets[0]):
                    return
            elif _metadata_ok(bootstrap, secure):
                try:
                    _round_trip(bootstrap, deadline, secure)
                    return
                except Exception as exc:  # KafkaException or our timeout: retry until deadline
                    last_error = f"last readiness error: {exc!r}\n"
        time.sleep(0.25)
    reason = f"exited (PID {pid})" if died() else f"did not serve within {timeout:.0f} s"
    partitions = sum(1 for _ in layout.data.glob("*-*")) if layout.data.is_dir() else 0
    hint = (
        f"the state holds {partitions} partition directories (test runs leave their prefixed "
        "topics; loading them all delays the start): `local_kafka.py reset` empties it, or "
        "pass a longer --timeout\n"
        if partitions > 2_000
        else ""
    )
    raise LocalKafkaError(
        f"Kafka broker on {bootstrap} {reason}.\n{hint}{last_error}"
        f"--- tail of {layout.server_log} ---\n"
        f"{_tail(layout.server_log, 40, log_offsets[0])}\n"
        f"--- tail of {layout.stdout_log} ---\n"
        f"{_tail(layout.stdout_log, 20, log_offsets[1])}"
    )


# --------------------------------------------------------------------------------------------
# start / stop / status


def _spawn_detached(cmd: list[str], layout: Layout) -> int:
    """Start ``cmd`` as a daemon and return its PID.

    A short-lived ``sh`` starts it in the background in a new session and exits, so the broker
    is never a child of this (possibly long-lived, e.g. pytest) process: no zombie when it ends,
    no ``Popen`` left to warn "still running", and no terminal signals reach it.
    """
    script = '"$@" </dev/null >>"$LT_KAFKA_STDOUT" 2>&1 & echo $!'
    proc = subprocess.run(
        ["/bin/sh", "-c", script, "sh", *cmd],
        env={**os.environ, "LT_KAFKA_STDOUT": str(layout.stdout_log)},
        cwd=layout.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        check=False,
    )
    try:
        return int(proc.stdout.strip())
    except ValueError:
        raise LocalKafkaError(
            f"could not start the broker: {(proc.stdout + proc.stderr).strip()}"
        ) from None


def start_broker(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    port: int | None = None,
    controller_port: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    kafka_version: str | None = None,
    throughput: bool = False,
    quiet: bool = False,
    secure: Secured | None = None,
) -> BrokerInfo:
    """Start the broker (fetching jars first if needed) or reuse the one already serving.

    Reuses, in order: the live broker recorded in this state dir's pid file; a Kafka broker
    already answering on the port (``owned=False``: started elsewhere, never stopped by us).
    ``secure``: a secured broker (:class:`Secured`); give it a state dir of its own.
    """
    layout = _layout(state_dir)
    port = port or default_port()
    controller_port = controller_port or port + 1
    bootstrap = f"{HOST}:{port}"
    version = kafka_version or pinned_kafka_version()

    with _locked(layout):
        pid = _running_pid(layout)
        if pid is not None:
            info = _read_info(layout)
            running_bootstrap = str(info.get("bootstrap", bootstrap))
            if running_bootstrap != bootstrap:
                raise LocalKafkaError(
                    f"the broker of {layout.root} already runs on {running_bootstrap} "
                    f"(PID {pid}); stop it first to use port {port}"
                )
            _wait_ready(layout, None, bootstrap, timeout, secure=secure)
            _log(f"reusing broker PID {pid} on {bootstrap}", quiet)
            return BrokerInfo(
                bootstrap,
                port,
                controller_port,
                pid,
                str(layout.root),
                str(info.get("kafka_version", version)),
            )

        if _port_open(port) or _port_open(controller_port):
            if _have_confluent_kafka() and _metadata_ok(bootstrap, secure):
                _log(f"a Kafka broker not started from {layout.root} answers on {bootstrap}", quiet)
                return BrokerInfo(
                    bootstrap, port, controller_port, None, str(layout.root), "?", owned=False
                )
            raise LocalKafkaError(
                f"port {port} or {controller_port} on {HOST} is taken by something that is not "
                "a Kafka broker from this state dir; choose another with --port"
            )

        java = _require_java()
        if secure is not None and secure.lib_dir is not None and not layout.lib.exists():
            layout.lib.symlink_to(Path(secure.lib_dir).resolve(), target_is_directory=True)
        _fetch_locked(layout, version, quiet)
        for d in (layout.data, layout.logs):
            d.mkdir(parents=True, exist_ok=True)
        layout.server_properties.write_text(
            server_properties(layout, port, controller_port, secure)
        )

        t0 = time.monotonic()
        scram = tuple(secure.scram_args()) if secure is not None else ()
        _format_storage(layout, java, _cluster_id(layout), scram)
        t_format = time.monotonic() - t0

        jvm = [*JVM_OPTS, *([] if throughput else JVM_FAST_START)]
        jvm += os.environ.get(ENV_JVM_OPTS, "").split()
        cmd = [
            java,
            *jvm,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={layout.logs}",
            "-cp",
            _classpath(layout),
            "kafka.Kafka",
            str(layout.server_properties),
        ]
        log_offsets = (_size(layout.server_log), _size(layout.stdout_log))
        pid = _spawn_detached(cmd, layout)
        layout.pid_file.write_text(f"{pid}\n")
        info = {
            "pid": pid,
            "bootstrap": bootstrap,
            "port": port,
            "controller_port": controller_port,
            "kafka_version": version,
            "started_at": time.time(),
            "secure": secure is not None,
        }
        layout.info_file.write_text(json.dumps(info, indent=2) + "\n")
        try:
            _wait_ready(layout, pid, bootstrap, timeout, log_offsets, secure)
        except BaseException:
            _terminate(pid, DEFAULT_STOP_GRACE_S)
            _clear_pid(layout)
            raise
        elapsed = time.monotonic() - t0
        _log(
            f"Kafka {version} serving on {bootstrap} (PID {pid}); "
            f"start took {elapsed:.1f} s (format {t_format:.1f} s)",
            quiet,
        )
        return BrokerInfo(
            bootstrap,
            port,
            controller_port,
            pid,
            str(layout.root),
            version,
            started=True,
            start_seconds=elapsed,
        )


def ensure_broker(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    port: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    quiet: bool = False,
) -> str:
    """Make sure a broker serves on 127.0.0.1:<port>; return its bootstrap string."""
    return start_broker(state_dir, port=port, timeout=timeout, quiet=quiet).bootstrap


def _terminate(pid: int, grace: float) -> bool:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. True if it had to be killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return False
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not _pid_alive(pid):
            break
        time.sleep(0.1)
    return True


def stop_broker(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    grace: float = DEFAULT_STOP_GRACE_S,
    quiet: bool = False,
) -> bool:
    """Stop the broker recorded in the pid file. Returns False if none was running."""
    layout = _layout(state_dir)
    with _locked(layout):
        pid = _running_pid(layout)
        if pid is None:
            _log(f"no broker running from {layout.root}", quiet)
            return False
        t0 = time.monotonic()
        killed = _terminate(pid, grace)
        _clear_pid(layout)
        how = "killed (SIGKILL) after the grace period" if killed else "stopped"
        _log(f"broker PID {pid} {how} in {time.monotonic() - t0:.1f} s", quiet)
        return True


def broker_status(state_dir: str | os.PathLike[str] | None = None) -> dict[str, object] | None:
    """The recorded broker's info plus ``answers``, or None if no broker runs from this dir."""
    layout = _layout(state_dir)
    pid = _running_pid(layout)
    if pid is None:
        return None
    info = _read_info(layout)
    info["pid"] = pid
    bootstrap = str(info.get("bootstrap", f"{HOST}:{default_port()}"))
    # A secured broker takes no anonymous client: its open port is all status can tell.
    secured = bool(info.get("secure"))
    port = int(bootstrap.rsplit(":", 1)[1])
    info["answers"] = _port_open(port) if secured else _kafka_answers(bootstrap)
    return info


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--state-dir",
        default=None,
        help=f"state dir (env {ENV_HOME}, default <repo>/var/kafka)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_fetch = sub.add_parser("fetch", help="fetch the pinned broker jars with Maven")
    p_fetch.add_argument("--kafka-version", default=None, help="override the pinned version")

    p_start = sub.add_parser("start", help="start (or reuse) the broker and wait until it serves")
    p_start.add_argument("--port", type=int, default=None, help=f"default {DEFAULT_PORT}")
    p_start.add_argument("--controller-port", type=int, default=None, help="default port+1")
    p_start.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    p_start.add_argument("--kafka-version", default=None, help="override the pinned version")
    p_start.add_argument(
        "--throughput", action="store_true", help="full JIT (drop -XX:TieredStopAtLevel=1)"
    )

    p_stop = sub.add_parser("stop", help="stop the broker by its recorded PID")
    p_stop.add_argument("--grace", type=float, default=DEFAULT_STOP_GRACE_S)

    sub.add_parser("status", help="is the recorded broker running and answering? (exit 0/1)")

    p_reset = sub.add_parser(
        "reset", help="stop the broker and delete its topics and logs (keeps the jars)"
    )
    p_reset.add_argument("--grace", type=float, default=DEFAULT_STOP_GRACE_S)

    p_env = sub.add_parser("env", help="print KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<port>")
    p_env.add_argument("--port", type=int, default=None)

    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            t0 = time.monotonic()
            lib = fetch(args.state_dir, kafka_version=args.kafka_version)
            print(f"{lib} ({time.monotonic() - t0:.1f} s)")
        elif args.command == "start":
            info = start_broker(
                args.state_dir,
                port=args.port,
                controller_port=args.controller_port,
                timeout=args.timeout,
                kafka_version=args.kafka_version,
                throughput=args.throughput,
            )
            print(json.dumps(asdict(info)))
        elif args.command == "stop":
            stop_broker(args.state_dir, grace=args.grace)
        elif args.command == "reset":
            stop_broker(args.state_dir, grace=args.grace)
            layout = _layout(args.state_dir)
            for folder in (layout.data, layout.logs):
                shutil.rmtree(folder, ignore_errors=True)
            print(f"[local-kafka] emptied {layout.data} and {layout.logs}")
        elif args.command == "status":
            status = broker_status(args.state_dir)
            if status is None:
                print(f"not running (state dir {_layout(args.state_dir).root})")
                return 1
            print(json.dumps(status))
            return 0 if status["answers"] else 1
        elif args.command == "env":
            port = args.port
            if port is None:
                info_port = _read_info(_layout(args.state_dir)).get("port")
                port = int(info_port) if isinstance(info_port, int) else default_port()
            print(f"KAFKA_BOOTSTRAP_SERVERS={HOST}:{port}")
    except LocalKafkaError as exc:
        print(f"local-kafka: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
