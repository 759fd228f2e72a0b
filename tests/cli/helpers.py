"""Run the ``labeltrail`` CLI in process against one test's broker, topics and ClickHouse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.config import Settings
from tests.kafka.runners import run_stage


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    """Exit code and output of ``labeltrail ARGS`` under ``settings`` (wide lines)."""
    env = {
        "LABELTRAIL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap_servers,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_CLICKHOUSE_DSN": settings.clickhouse_dsn,
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def cli_rows(settings: Settings, *args: str) -> list[dict[str, Any]]:
    """The rows ``labeltrail ARGS --json`` prints (it must succeed)."""
    code, out = cli(settings, *args, "--json")
    assert code == 0, out
    body = json.loads(out)
    assert isinstance(body, list)
    return body


def run_registered_stage(name: str, settings: Settings, tmp: Path) -> dict[str, Any]:
    """The registered stage ``name`` as its service builds it (``STAGES[name].make``), run
    over its input to the end and drained; its counters."""
    outcome = run_stage("confluent", f"labeltrail.stages:make_{name}", settings, tmp, finite=True)
    assert outcome.code == 0, outcome.error
    return outcome.stats
