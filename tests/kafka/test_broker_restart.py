"""Restarting the broker mid-run loses nothing: the labels equal a clean run's.

The test starts a broker of its own (the local one from Maven Central jars, on a free port
and its own state directory), so that stopping it does not disturb other tests.
"""

from __future__ import annotations

import random
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from labeltrail.config import Settings
from labeltrail.sim import PlatformConfig
from labeltrail.sim.demo import DemoResult, run_demo
from tests.kafka_fixture import load_local_kafka
from tests.sim.test_demo import _assert_labels_match_the_folds, _assert_no_duplicates
from tests.unavailable import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = PlatformConfig.sized(300, seed=23)


def _free_port_pair() -> int:
    """A free port and the next one (the controller's), below the kernel's ephemeral range
    (32768-60999 here): the broker stops and starts again mid-test, and a port picked from that
    range can meanwhile become some client connection's local port (the restart then failed
    with "Address already in use" on the controller port)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise AssertionError("no free port pair")


@pytest.fixture
def own_broker(tmp_path: Path) -> tuple[str, Path]:
    if not (shutil.which("java") and shutil.which("mvn")):
        message = "java and mvn are needed for a broker of the test's own"
        unavailable(message)
    local_kafka = load_local_kafka()
    state = tmp_path / "kafka"
    shared_lib = Path(__file__).resolve().parents[2] / "var" / "kafka" / "lib"
    if shared_lib.is_dir():  # reuse the jars the session broker fetched
        shutil.copytree(shared_lib, state / "lib")
    port = _free_port_pair()
    # A second JVM starting beside a loaded test run can be slow: allow it three minutes.
    bootstrap = local_kafka.ensure_broker(state, port=port, quiet=True, timeout=180)
    yield bootstrap, state
    local_kafka.stop_broker(state, quiet=True)


def test_broker_restart_mid_run_loses_nothing(own_broker: tuple[str, Path], tmp_path: Path) -> None:
    bootstrap, state = own_broker
    local_kafka = load_local_kafka()
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix="restart",
        topic_partitions=3,
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}",
    )
    result: list[DemoResult] = []
    errors: list[BaseException] = []
    running = threading.Event()

    def demo() -> None:
        try:
            result.append(
                run_demo(
                    settings,
                    config=CONFIG,
                    timeout=400,
                    progress=lambda m: running.set() if m.startswith("stages") else None,
                )
            )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=demo)
    thread.start()
    assert running.wait(120), "the demo did not start its stages"
    time.sleep(3.0)  # mid-run
    assert local_kafka.stop_broker(state, quiet=True)
    time.sleep(3.0)
    local_kafka.ensure_broker(state, port=int(bootstrap.rsplit(":", 1)[1]), quiet=True, timeout=180)
    thread.join(480)
    assert not thread.is_alive(), "the demo did not finish after the broker came back"
    assert not errors, errors
    assert result[0].dead_letters == 0
    assert result[0].seconds > 6.0, "the run should have spanned the broker restart"
    _assert_labels_match_the_folds(settings, CONFIG)
    _assert_no_duplicates(settings)
