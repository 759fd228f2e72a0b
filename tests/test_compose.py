"""docker-compose.yml stays a valid deployment of every service (CI here has no Docker engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

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
