"""No broker: one clear error within seconds, from the adapter and from every Kafka command.

Runs against a port nothing listens on (no broker needed); the CLI runs as a real process so
that what librdkafka would write straight to file descriptor 2 is seen too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labeltrail.config import Settings
from labeltrail.kafka.admin import KafkaUnavailableError, require_kafka

GOOD_COMMENT = {
    "comment_id": "c-1",
    "video_id": "v-1",
    "author_hash": "h",
    "text": "hello",
    "source": "product_log",
    "posted_at": "2024-09-02T10:23:00+00:00",
}


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_require_kafka_fails_fast_with_the_address_and_the_remedy() -> None:
    port = _closed_port()
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(KafkaUnavailableError) as caught:
        require_kafka(settings, timeout=2.0)
    assert time.monotonic() - t0 < 5.0
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert f"ops/kafka/local_kafka.py start --port {port}" in message
    assert "Connection refused" in message  # librdkafka's first error, not its spam


def test_a_remote_cluster_gets_no_local_broker_advice() -> None:
    settings = Settings(kafka_bootstrap_servers="kafka.invalid:9092")
    with pytest.raises(KafkaUnavailableError) as caught:
        require_kafka(settings, timeout=1.0)
    assert "kafka.invalid:9092" in str(caught.value)
    assert "local_kafka.py" not in str(caught.value)


def _write(path: Path, rows: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


KAFKA_COMMANDS = [
    ["demo", "--comments", "10"],
    ["ingest", "{comments}"],
    ["gold", "publish", "{gold}"],
    ["topics", "create"],
    ["topics", "list"],
    ["projections", "run"],
    ["projections", "rebuild"],
    ["annotate", "serve", "--port", "0"],
    ["export", "create", "--schema-version", "v3"],
    ["export", "verify", "some-export-id"],
]


def test_every_kafka_command_fails_fast_and_quietly(tmp_path: Path) -> None:
    """LABELTRAIL_KAFKA_PORT alone points every command at the (absent) local broker, and each
    says so in one line within seconds: exit 1, no traceback, no librdkafka log lines."""
    port = _closed_port()
    files = {
        "comments": _write(tmp_path / "comments.jsonl", [GOOD_COMMENT]),
        "gold": _write(
            tmp_path / "gold.jsonl",
            [{**GOOD_COMMENT, "label": "none", "reviewer_id": "e1", "schema_version": "v3"}],
        ),
    }
    drop = {"KAFKA_BOOTSTRAP_SERVERS", "LABELTRAIL_KAFKA_BOOTSTRAP", "COLUMNS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {
        "LABELTRAIL_KAFKA_PORT": str(port),
        "LABELTRAIL_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'ch'}",
    }
    t0 = time.monotonic()
    running = [  # concurrently: each waits out the same few seconds
        subprocess.Popen(
            [sys.executable, "-m", "labeltrail.cli", *(a.format(**files) for a in args)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in KAFKA_COMMANDS
    ]
    for args, proc in zip(KAFKA_COMMANDS, running, strict=True):
        try:
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"{args}: still running after 60 s") from None
        command = " ".join(args[:2])
        assert proc.returncode == 1, (command, stderr)
        assert f"no Kafka broker answered at 127.0.0.1:{port}" in stderr, (command, stderr)
        assert f"local_kafka.py start --port {port}`" in stderr, (command, stderr)
        assert "Traceback" not in stderr and "rdkafka" not in stderr, (command, stderr)
        assert len(stderr.splitlines()) == 1, (command, stderr)
    # Eight interpreters start at once on a small machine, so the bound is loose; before the
    # preflight, ingest alone waited 60 s and the demo 31 s. The adapter's own bound is above.
    elapsed = time.monotonic() - t0
    assert elapsed < 30.0, f"{len(KAFKA_COMMANDS)} commands took {elapsed:.1f} s"
