"""The audit commands end to end (typer runner, real chdb), table and JSON output."""

from __future__ import annotations

import json

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.events import Event
from tests.audit.history import adjudicated_comment


@pytest.fixture
def env(loaded: Client, loaded_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at the loaded database (same path: chdb shares it within a process)."""
    monkeypatch.setenv("LABELTRAIL_CLICKHOUSE_DSN", loaded_dsn)


def test_commands_print_tables_and_json(env: None, history: list[Event]) -> None:
    runner = CliRunner()
    comment = adjudicated_comment(history)
    out = runner.invoke(app, ["audit", "trace", comment])
    assert out.exit_code == 0, out.output
    assert "[AdjudicationRecorded]" in out.output
    out = runner.invoke(app, ["audit", "label-as-of", "all", "--schema-version", "v3", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert comment in {r["comment_id"] for r in rows}
    for args in (
        ["audit", "explain", comment],
        ["audit", "annotator", "annotator_a", "--json"],
        ["audit", "iaa"],
        ["audit", "blind-spots", "--json"],
        ["audit", "pool", "--target", '{"en-US": 0.5}'],
        ["audit", "cost", "--json"],
    ):
        out = runner.invoke(app, args)
        assert out.exit_code == 0, (args, out.output)


def test_an_injection_through_the_cli_finds_nothing(env: None) -> None:
    out = CliRunner().invoke(app, ["audit", "trace", "x' OR '1'='1"])
    assert out.exit_code == 3
    assert "no events" in out.output
