"""pytest plugin: a real Apache Kafka broker for the tests that need one.

Fixtures:

``kafka_bootstrap`` (session) -> ``"host:port"``, resolved in this order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` if set: an existing cluster, used as is and never stopped.
2. A Docker engine that answers (``docker`` SDK ping or ``docker info``, 3 s timeout) and
   testcontainers installed (``pip install -e .[docker]``): the official ``apache/kafka`` image
   (env ``LABELTRAIL_KAFKA_IMAGE``) in a container, one per pytest process, removed at the end.
   Set ``LABELTRAIL_KAFKA_NO_DOCKER=1`` to skip this step.
3. The local broker of ``ops/kafka/local_kafka.py`` (Maven Central jars, KRaft, 127.0.0.1:9092,
   state in ``var/kafka``): reused if it already serves, otherwise started.

Who stops the local broker: a broker that was already running (started by ``.ci/run``, by
``local_kafka.py start`` or by another checkout) is never stopped. One that a fixture started is
stopped by the last pytest process that uses it: every process (each pytest-xdist worker
included) registers its PID in ``var/kafka/fixture-users.json`` under a file lock and removes it
at session end; the one that leaves the list empty stops the broker. Dead PIDs are pruned, so a
crashed run does not keep it alive forever. (A worker that asks after all others finished starts
it again: correct, only slower.)

If no broker can be had, tests that need one fail when ``CI=true`` and are skipped otherwise.

``kafka_topic_factory`` (function) -> ``create(prefix="test", *, partitions=1, config=None)``
creates a uniquely named topic with the AdminClient, waits until every partition has a leader,
returns its name, and deletes the topics it created when the test ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.unavailable import unavailable

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_KAFKA_SCRIPT = REPO_ROOT / "ops" / "kafka" / "local_kafka.py"

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
ENV_IMAGE = "LABELTRAIL_KAFKA_IMAGE"
ENV_NO_DOCKER = "LABELTRAIL_KAFKA_NO_DOCKER"
DEFAULT_IMAGE = "apache/kafka:4.4.0"  # same Kafka version as ops/kafka/pom.xml
DOCKER_PROBE_TIMEOUT_S = 3.0
BROKER_START_TIMEOUT_S = 90.0


def load_ops_script(path: Path, name: str) -> ModuleType:
    """Import a script under ops/ as module ``name`` (``ops`` is not a package), once."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the body runs
    spec.loader.exec_module(module)
    return module


def load_local_kafka() -> ModuleType:
    """Import ops/kafka/local_kafka.py."""
    return load_ops_script(LOCAL_KAFKA_SCRIPT, "labeltrail_ops_local_kafka")


# --------------------------------------------------------------------------------------------
# Docker / testcontainers


def docker_engine_answers(timeout: float = DOCKER_PROBE_TIMEOUT_S) -> bool:
    """True if a Docker engine responds within ``timeout`` seconds (a bare client is not enough)."""
    if os.environ.get(ENV_NO_DOCKER, "").lower() in {"1", "true", "yes"}:
        return False
    try:
        import docker
    except ImportError:
        docker = None
    if docker is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                client = docker.from_env(timeout=int(max(1, timeout)))
                try:
                    return bool(client.ping())
                finally:
                    client.close()
            except Exception:
                return False
    exe = shutil.which("docker")
    if exe is None:
        return False
    try:
        proc = subprocess.run(
            [exe, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def docker_kafka(image: str | None = None) -> Iterator[str]:
    """A single-node KRaft broker from the official apache/kafka image, via testcontainers.

    testcontainers' own ``KafkaContainer`` drives the Confluent images' start scripts, so the
    official image runs in a generic container with a fixed host port that it can advertise.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        host_port = _free_port()
        container = DockerContainer(image or os.environ.get(ENV_IMAGE, DEFAULT_IMAGE))
        container.with_bind_ports(9092, host_port)
        env = {
            "CLUSTER_ID": "bGFiZWx0cmFpbC10ZXN0cw",
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{host_port}",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
            "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
            "KAFKA_MIN_INSYNC_REPLICAS": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        }
        for key, value in env.items():
            container.with_env(key, value)
        with container:
            wait_for_logs(container, "Kafka Server started", timeout=BROKER_START_TIMEOUT_S)
            yield f"127.0.0.1:{host_port}"


# --------------------------------------------------------------------------------------------
# Local broker with a cross-process user list


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_users(path: Path) -> list[int]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    return [p for p in data if isinstance(p, int) and _pid_alive(p)]


@contextlib.contextmanager
def local_kafka(state_dir: Path | None = None) -> Iterator[str]:
    """Reuse or start the ops/kafka broker; stop it at the end only if a fixture started it
    and no other pytest process still uses it."""
    lk = load_local_kafka()
    root = Path(state_dir) if state_dir else lk.default_state_dir()
    lock = root / ".fixture.lock"
    users_file = root / "fixture-users.json"
    marker = root / "fixture-started"  # holds the PID of a broker that a fixture started
    me = os.getpid()

    with _flock(lock):
        info = lk.start_broker(root, timeout=BROKER_START_TIMEOUT_S)
        if info.started:
            marker.write_text(f"{info.pid}\n")
        users = [p for p in _read_users(users_file) if p != me] + [me]
        users_file.write_text(json.dumps(users))
    try:
        yield info.bootstrap
    finally:
        with _flock(lock):
            users = [p for p in _read_users(users_file) if p != me]
            users_file.write_text(json.dumps(users))
            try:
                started_pid = int(marker.read_text().strip())
            except (OSError, ValueError):
                started_pid = None
            running = lk.broker_status(root)
            if not users and started_pid is not None:
                if running is not None and running.get("pid") == started_pid:
                    lk.stop_broker(root)
                marker.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Fixtures


def _unavailable(reasons: list[str]) -> None:
    msg = "no Kafka broker available:\n" + "\n".join(f"- {r}" for r in reasons)
    unavailable(msg)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for this test session (see module doc)."""
    external = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if external:
        yield external
        return

    reasons: list[str] = []
    with contextlib.ExitStack() as stack:
        bootstrap: str | None = None
        if docker_engine_answers():
            try:
                bootstrap = stack.enter_context(docker_kafka())
            except ImportError as exc:
                reasons.append(f"Docker answers but testcontainers is not installed ({exc})")
            except Exception as exc:
                reasons.append(f"testcontainers Kafka failed: {exc!r}")
        else:
            reasons.append("no Docker engine answers")
        if bootstrap is None:
            try:
                bootstrap = stack.enter_context(local_kafka())
            except Exception as exc:
                reasons.append(f"local broker (ops/kafka/local_kafka.py) failed: {exc}")
        if bootstrap is None:
            _unavailable(reasons)  # outside the except block: no chained traceback
            return
        yield bootstrap


def _topic_name(prefix: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix).strip("-.") or "test"
    return f"{clean[:180]}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def kafka_topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """``create(prefix="test", *, partitions=1, config=None) -> topic name``."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def create(
        prefix: str = "test", *, partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        name = _topic_name(prefix)
        # replication_factor -1: the broker's default.replication.factor (1 on a single node).
        topic: Any = NewTopic(name, num_partitions=partitions, config=config or {})
        admin.create_topics([topic], operation_timeout=30)[name].result(timeout=60)
        created.append(name)
        deadline = time.monotonic() + 30
        while True:
            md = admin.list_topics(topic=name, timeout=5).topics.get(name)
            if (
                md is not None
                and md.error is None
                and len(md.partitions) == partitions
                and all(p.leader >= 0 for p in md.partitions.values())
            ):
                return name
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} has no leaders after 30 s")
            time.sleep(0.1)

    yield create

    if created:
        for future in admin.delete_topics(created, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
