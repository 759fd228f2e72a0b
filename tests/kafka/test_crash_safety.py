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
from contextlib import closing
from pathlib import Path

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.config import Settings
from labeltrail.events import LabelCommitted
from labeltrail.folds.consensus import ConsensusFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.tasking import TaskingFold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.scaleout import BROADCAST_INPUTS
from labeltrail.sim import Platform, PlatformConfig
from labeltrail.sim.demo import seed_platform
from tests.folds.helpers import final_labels, run_in_memory
from tests.probes import read_topic, wait_for_progress, wait_until_settled

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
    "tasking": [s for s in TaskingFold().inputs if s not in BROADCAST_INPUTS],
    "annotators": ("tasks.crowd", "tasks.expert"),
    "consensus": [s for s in ConsensusFold().inputs if s not in BROADCAST_INPUTS],
    "labels": [s for s in LabelsFold().inputs if s not in BROADCAST_INPUTS],
}
"""What each stage's group commits: broadcast inputs are read whole, outside the group."""


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
            wait_for_progress(settings, GROUPS.get(victim, victim), INPUTS[victim])
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(30)
            assert procs[victim].returncode == -signal.SIGKILL
            kills += 1
            procs[victim] = _start(victim, settings, tmp_path)
        assert kills == 3

        def still_alive() -> None:
            for stage, proc in procs.items():
                log = (tmp_path / f"{stage}.log").read_text()[-2000:]
                assert proc.poll() is None, f"{stage} died: {log}"

        groups = {GROUPS.get(k, k): v for k, v in INPUTS.items()}
        wait_until_settled(settings, groups, still_alive=still_alive)

        def restarted_live(stage: str) -> bool:
            # The pipeline can settle before a restarted stage has finished its restore (its
            # victim may have written all its outputs before the kill): wait for the restart's
            # own "now live", after its last "reading" line.
            log = (tmp_path / f"{stage}.log").read_text()
            return "now live" in log[log.rfind(": reading ") :]

        deadline = time.monotonic() + 120
        while not all(restarted_live(s) for s in ("consensus", "tasking", "labels")):
            still_alive()
            assert time.monotonic() < deadline, "a restarted stage never went live"
            time.sleep(0.5)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(30)

    reference = final_labels(run_in_memory(platform).log["labels"])
    on_log = [e for e in read_topic(settings, "labels") if isinstance(e, LabelCommitted)]
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

    with closing(client_from(settings)) as client:
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
