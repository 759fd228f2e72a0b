"""kill -9 the projector process mid-stream, restart it: ClickHouse holds every event once.

The projector runs as its own OS process (``labeltrail projections run``) against the real
broker and a chdb directory on disk. It is killed with SIGKILL twice while it projects, each time
once it has recorded some batches' positions (read from the parts ClickHouse leaves on disk: the
test cannot open the directory while the process owns it). The kernel drops the killed process's
lock on the directory, so a new process opens it, resumes at the recorded positions and catches
up. Then every table holds each event once, and its row count and content checksum equal those of
an uninterrupted projection of the same topics into a fresh directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labeltrail.clickhouse.client import client_from
from labeltrail.clickhouse.rebuild import compare_checksums, rebuild
from labeltrail.clickhouse.writer import BatchWriter, table_checksums
from labeltrail.config import Settings
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from tests.audit.history import blind_spot_scenario, iaa_window, reliability_updates, simulated
from tests.unavailable import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BATCH = 40
PART = re.compile(r"^all_(\d+)_(\d+)_\d+")


def _produce(settings: Settings) -> int:
    ensure_topics(settings)
    events = simulated(150, seed=17)
    events += [*reliability_updates(events), *blind_spot_scenario(), iaa_window()]
    producer = EventProducer(settings)
    for event in events:
        producer.send(event)
    producer.flush()
    return len(events)


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "labeltrail"
    if not script.is_file():
        unavailable(f"the labeltrail entry point is not installed next to {sys.executable}")
    return [str(script)]


def _start(settings: Settings, log: Path, *, follow: bool) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_CLICKHOUSE_DSN": settings.clickhouse_dsn,
    }
    args = [*_cli(), "projections", "run", "--batch-size", str(BATCH)]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*args, "--follow"] if follow else args, cwd=ROOT, env=env, stdout=out, stderr=out
        )


def _position_inserts(directory: Path) -> int:
    """How many position inserts the projector has made: the highest block number among the
    parts of consumer_positions (merges keep the range, so this only grows)."""
    table = directory / "data" / "default" / "consumer_positions"
    if not table.is_dir():
        return 0
    blocks = [int(m.group(2)) for p in table.iterdir() if (m := PART.match(p.name))]
    return max(blocks, default=0)


def _kill_after(
    proc: subprocess.Popen[bytes], directory: Path, inserts: int, log: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while _position_inserts(directory) < inserts:
        assert proc.poll() is None, f"projector exited early: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no progress: {log.read_text()[-2000:]}"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _covered(settings: Settings) -> int:
    """Records covered by the positions recorded in the (closed) database."""
    client = client_from(settings)
    try:
        stored = BatchWriter(client, f"{settings.topic_prefix}.projector").stored_positions()
    finally:
        client.close()  # release the directory for the next projector process
    return sum(stored.values())


def test_sigkill_mid_stream_then_restart_holds_each_event_once(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    produced = _produce(settings)
    directory = Path(settings.clickhouse_dsn.removeprefix("chdb://"))
    log = tmp_path / "projector.log"

    covered = []
    for inserts in (3, 9):
        proc = _start(settings, log, follow=True)
        try:
            _kill_after(proc, directory, inserts, log)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        covered.append(_covered(settings))
    # Killed mid-stream both times, the second time further on.
    assert 0 < covered[0] < covered[1] < produced, (covered, produced)

    finisher = _start(settings, log, follow=False)
    assert finisher.wait(300) == 0, log.read_text()[-3000:]
    resumed = re.findall(r"projected (\d+), rejected (\d+)", log.read_text())
    assert resumed, log.read_text()[-2000:]
    projected, rejected = (int(x) for x in resumed[-1])
    assert rejected == 0
    # It resumed exactly at the recorded positions (a batch whose data was written but whose
    # positions were not is read again, and the tables absorb it).
    assert projected == produced - covered[1]

    client = client_from(settings)
    try:
        sql = "SELECT count(), uniqExact(event_id) FROM {t:Identifier} FINAL"
        total, unique = client.query(sql, parameters={"t": "events"}).result_rows[0]
        assert total == unique == produced
        for table in ("comments", "tasks", "assignments", "votes", "consensus", "labels"):
            n, u = client.query(sql, parameters={"t": table}).result_rows[0]
            assert n == u > 0, table
        killed_sums = table_checksums(client)
    finally:
        client.close()

    uninterrupted = rebuild(settings, f"chdb://{tmp_path / 'uninterrupted'}", timeout=300)
    assert uninterrupted.stats.projected == produced
    clean = client_from(settings, dsn=uninterrupted.dsn)
    try:
        clean_sums = table_checksums(clean)
    finally:
        clean.close()
    assert compare_checksums(killed_sums, clean_sums) == []
    assert killed_sums["events"][0] == produced
