"""kill -9 a service mid-stream, restart it: the committed labels are those of a clean run.

The stages run as separate processes (``services/*.py``) against the real broker. Each of
tasking, consensus and labels is killed with SIGKILL once during the run and started again;
the labels on the log must then equal the in-memory reference run of the same folds, and the
projection into ClickHouse must hold every event once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from labeltrail.clickhouse.client import apply_ddl, connect
from labeltrail.clickhouse.projector import Projector
from labeltrail.config import Settings
from labeltrail.demo import seed_platform
from labeltrail.events import LabelCommitted, decode
from labeltrail.events.topics import topic_name
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.runner import consumer_config, high_watermark
from labeltrail.pipeline.consensus import ConsensusFold
from labeltrail.pipeline.labels import LabelsFold
from labeltrail.pipeline.tasking import TaskingFold
from labeltrail.sim import Platform, PlatformConfig
from tests.pipeline.helpers import final_labels, run_in_memory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
N, SEED = 300, 13
STAGES = {
    "scorer": ["services/simulator.py", "scorer", str(N), str(SEED)],
    "tasking": ["services/tasking.py"],
    "annotators": ["services/simulator.py", "annotators", str(N), str(SEED)],
    "consensus": ["services/consensus.py"],
    "labels": ["services/labels.py"],
}
GROUPS = {"scorer": "sim.scorer", "annotators": "sim.annotators"}
INPUTS = {
    "scorer": ("comments",),
    "tasking": TaskingFold().inputs,
    "annotators": ("tasks.crowd", "tasks.expert"),
    "consensus": ConsensusFold().inputs,
    "labels": LabelsFold().inputs,
}


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_MIN_CROWD_POOL": str(PlatformConfig.sized(N, seed=SEED).n_crowd),
    }


def _start(stage: str, settings: Settings, logs: Path) -> subprocess.Popen[bytes]:
    with (logs / f"{stage}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, *STAGES[stage]], cwd=ROOT, env=_env(settings), stdout=log, stderr=log
        )


def _committed(settings: Settings, stage: str) -> int:
    """How far a stage's group has committed, summed over its inputs."""
    meta_consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.meta-probe"))
    probe = Consumer(
        consumer_config(settings, f"{settings.topic_prefix}.{GROUPS.get(stage, stage)}")
    )
    try:
        meta = meta_consumer.list_topics(timeout=10).topics
        topics = [topic_name(settings.topic_prefix, s) for s in INPUTS[stage]]
        parts = [TopicPartition(t, p) for t in topics for p in meta[t].partitions]
        return sum(max(tp.offset, 0) for tp in probe.committed(parts, timeout=10))
    finally:
        probe.close()
        meta_consumer.close()


def _lag(settings: Settings) -> int:
    """Unread messages summed over every stage's consumer group."""
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.lag-probe"))
    total = 0
    try:
        meta = consumer.list_topics(timeout=10).topics
        for stage in STAGES:
            group = f"{settings.topic_prefix}.{GROUPS.get(stage, stage)}"
            probe = Consumer(consumer_config(settings, group))
            try:
                topics = [topic_name(settings.topic_prefix, s) for s in INPUTS[stage]]
                parts = [TopicPartition(t, p) for t in topics for p in meta[t].partitions]
                for tp in probe.committed(parts, timeout=10):
                    total += max(high_watermark(consumer, tp) - max(tp.offset, 0), 0)
            finally:
                probe.close()
    finally:
        consumer.close()
    return total


def _labels_on_log(settings: Settings) -> list[LabelCommitted]:
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.label-reader"))
    consumer.subscribe([topic_name(settings.topic_prefix, "labels")])
    out: list[LabelCommitted] = []
    idle = 0
    try:
        while idle < 6:
            batch = consumer.consume(500, timeout=0.5)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error() is None:
                    event = decode(msg.value() or b"")
                    assert isinstance(event, LabelCommitted)
                    out.append(event)
    finally:
        consumer.close()
    return out


def test_kill_minus_nine_each_service_then_restart(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    platform = Platform(PlatformConfig.sized(N, seed=SEED))
    ensure_topics(settings)
    procs = {stage: _start(stage, settings, tmp_path) for stage in STAGES}
    try:
        seed_platform(settings, platform)
        kills = 0
        for victim in ("consensus", "tasking", "labels"):
            # Kill it mid-stream: once it has committed some of its input.
            deadline = time.monotonic() + 60
            while _committed(settings, victim) == 0:
                assert time.monotonic() < deadline, f"{victim} made no progress"
                time.sleep(0.2)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(30)
            assert procs[victim].returncode == -signal.SIGKILL
            kills += 1
            procs[victim] = _start(victim, settings, tmp_path)
        assert kills == 3
        deadline = time.monotonic() + 240
        quiet = 0
        while quiet < 3:
            assert time.monotonic() < deadline, "pipeline did not settle; see stage logs"
            for stage, proc in procs.items():
                log = (tmp_path / f"{stage}.log").read_text()[-2000:]
                assert proc.poll() is None, f"{stage} died: {log}"
            quiet = quiet + 1 if _lag(settings) == 0 else 0
            time.sleep(1.0)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(30)

    reference = final_labels(run_in_memory(platform).log["labels"])
    on_log = _labels_on_log(settings)
    got = final_labels(list(on_log))
    missing = sorted(set(reference) - set(got))
    wrong = sorted(c for c in got if got[c] != reference.get(c))
    assert not missing and not wrong, (settings.topic_prefix, missing[:10], wrong[:10])
    restored = sum(
        int(n)
        for stage in ("consensus", "tasking", "labels")
        for n in re.findall(r"restored=(\d+)", (tmp_path / f"{stage}.log").read_text())
    )
    assert restored >= 1, "a restarted stage should have rebuilt its state from the log"

    client = connect(settings.clickhouse_dsn)
    apply_ddl(client)
    projector = Projector(client, settings)
    stop = threading.Event()
    thread = threading.Thread(target=projector.run, args=(stop,))
    thread.start()
    assert projector.caught_up.wait(120)
    stop.set()
    thread.join(30)
    sql = "SELECT count(), uniqExact(event_id) FROM events FINAL"
    total, unique = client.query(sql).result_rows[0]
    assert total == unique
    label_ids = client.query("SELECT count(), uniqExact(label_id) FROM v_labels").result_rows[0]
    assert label_ids[0] == label_ids[1] == len({e.label_id for e in on_log})
