"""docker-compose.yml stays a valid deployment of every service (CI here has no Docker engine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from labeltrail.config import Settings
from labeltrail.events.topics import topic_name
from labeltrail.kafka.log import end_positions, read_until

REPO = Path(__file__).resolve().parents[1]
SIMULATION_ONLY = {"simulator.py"}


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_every_service_has_a_container_running_an_existing_entry_point() -> None:
    services = _compose()["services"]
    commands = {name: spec["command"] for name, spec in services.items() if "command" in spec}
    run = {Path(cmd[1]).name for cmd in commands.values() if cmd[0] == "python"}
    wanted = {p.name for p in (REPO / "services").glob("*.py")} - SIMULATION_ONLY
    assert wanted <= run, f"services without a container: {sorted(wanted - run)}"
    for name, cmd in commands.items():
        assert (REPO / cmd[1]).is_file(), f"{name} runs a missing file {cmd[1]}"


def test_stages_reach_kafka_inside_the_network_and_wait_for_it() -> None:
    compose = _compose()
    services = compose["services"]
    listeners = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    internal = next(part.split("//")[1] for part in listeners.split(",") if "INTERNAL" in part)
    for name, spec in services.items():
        if "build" not in spec:
            continue
        assert spec["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == internal, name
        assert spec["depends_on"]["kafka"]["condition"] == "service_healthy", name
    for spec in services.values():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in compose["volumes"], volume


@pytest.mark.integration
@pytest.mark.slow
def test_the_init_service_bootstraps_the_first_day_once(pipeline_settings: Settings) -> None:
    """The init container's script (ops/docker/first-day.sh) on the real broker with the
    mounted examples: schema, pool and gold set published; a second run adds no event."""
    init = _compose()["services"]["init"]
    mount = next(v for v in init["volumes"] if v.endswith(":ro"))
    source, target = mount.split(":")[:2]
    assert init["environment"]["LABELTRAIL_FIRST_DAY_DIR"] == target
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "KAFKA_BOOTSTRAP_SERVERS": pipeline_settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": pipeline_settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(pipeline_settings.topic_partitions),
        "LABELTRAIL_FIRST_DAY_DIR": str(REPO / source),
    }
    topics = [topic_name(pipeline_settings.topic_prefix, s) for s in ("schemas", "annotators")]
    topics.append(topic_name(pipeline_settings.topic_prefix, "gold"))

    def run() -> dict[str, set[str]]:
        done = subprocess.run(
            init["command"], cwd=REPO, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        ids: dict[str, set[str]] = {t: set() for t in topics}
        ends = end_positions(pipeline_settings, topics)
        for event, position in read_until(pipeline_settings, ends):
            ids[position.topic].add(event.event_id)
        return ids

    first = run()
    assert all(first.values()), first  # a schema, the pool and the gold set
    # Again: nothing new. (schema publish and annotators register send nothing the log holds;
    # gold publish sends the same events, with the same ids, which every reader keeps once.)
    assert run() == first, "the second bootstrap published something new"
