"""The audit commands end to end (typer runner, real chdb), table and JSON output."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from rich.console import Console
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.cli import audit as audit_cli
from labeltrail.events import Event, LabelCommitted
from labeltrail.exceptions import QualityError
from labeltrail.quality.blindspots import (
    FLEISS_KAPPA,
    KRIPPENDORFF_ALPHA_NOMINAL,
    PAIRWISE_AGREEMENT,
    agreement_level,
    high_agreement_from,
    is_high_agreement,
)
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


def _json(args: list[str]) -> list[dict[str, Any]]:
    out = CliRunner().invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def test_iaa_rows_name_their_metric_and_window_and_never_repeat(env: None) -> None:
    """The stream emits day and week windows, each with alpha and pairwise agreement: without
    the metric and window columns those rows looked alike (or the same slice got two
    agreements), and the reader could not tell which was which."""
    rows = _json(["audit", "iaa"])
    assert {r["metric"] for r in rows} == {"pairwise_agreement", "krippendorff_alpha_nominal"}
    assert {r["window"] for r in rows} == {"day", "week"}
    whole = [json.dumps(r, sort_keys=True) for r in rows]
    assert len(whole) == len(set(whole))
    key = ("source", "window", "window_start", "schema_version", "question", "slice", "metric")
    keys = [tuple(r[k] for k in key) for r in rows]
    assert len(keys) == len(set(keys)), [k for k in keys if keys.count(k) > 1][:3]
    coded = {
        r["metric"]: r
        for r in rows
        if r["source"] == "stream" and r["window"] == "week" and r["slice"] == "coded"
    }
    assert coded["krippendorff_alpha_nominal"]["level"] == "low"  # -0.08: alpha's own scale
    assert coded["pairwise_agreement"]["level"] == "high"  # 0.95


def test_blind_spots_call_agreement_high_only_on_its_own_scale(env: None) -> None:
    rows = _json(["audit", "blind-spots"])
    assert rows and all(r["level"] == "high" for r in rows), rows
    assert {r["metric"] for r in rows} == {"pairwise_agreement"}  # never alpha -0.08
    assert all(is_high_agreement(r["metric"], r["agreement"]) for r in rows)
    assert {(r["source"], r["window"]) for r in rows} >= {("projection", "all"), ("stream", "week")}


def test_agreement_levels_follow_each_metrics_scale() -> None:
    assert agreement_level(KRIPPENDORFF_ALPHA_NOMINAL, 0.8) == "high"
    assert agreement_level(KRIPPENDORFF_ALPHA_NOMINAL, 0.7) == "tentative"
    assert agreement_level(KRIPPENDORFF_ALPHA_NOMINAL, -0.08) == "low"
    assert agreement_level(FLEISS_KAPPA, 0.65) == "substantial"
    assert is_high_agreement(FLEISS_KAPPA, 0.65) and not is_high_agreement(FLEISS_KAPPA, 0.5)
    assert agreement_level(PAIRWISE_AGREEMENT, None) == "n/a"
    assert high_agreement_from(PAIRWISE_AGREEMENT) == 0.8
    with pytest.raises(QualityError, match="no agreement scale"):
        agreement_level("vibes", 0.9)


def test_unknown_ids_are_errors(env: None) -> None:
    runner = CliRunner()
    for args, said in (
        (["audit", "annotator", "nobody-xyz"], "no annotator 'nobody-xyz'"),
        (["audit", "annotator", "nobody-xyz", "--json"], "no annotator 'nobody-xyz'"),
        (["audit", "label-as-of", "nobody-xyz"], "no comment 'nobody-xyz'"),
        (["audit", "label-as-of", "nobody-xyz", "--json"], "no comment 'nobody-xyz'"),
        (["audit", "label-as-of", "all", "--schema-version", "v9"], "no schema version 'v9'"),
        (["audit", "iaa", "--schema-version", "v9"], "no schema version 'v9'"),
        (["audit", "cost", "--schema-version", "v9"], "no schema version 'v9'"),
        (["audit", "explain", "nobody-xyz"], "no label 'nobody-xyz'"),
    ):
        out = runner.invoke(app, args)
        assert out.exit_code == 3, (args, out.output)
        assert said in out.output, (args, out.output)


def test_an_expert_without_votes_has_no_made_up_vote_times(env: None) -> None:
    (record,) = _json(["audit", "annotator", "e-01"])
    assert record["votes"] == 0 and record["reviews"] > 0
    assert record["first_vote_at"] is None and record["last_vote_at"] is None


def test_label_as_of_explains_recorded_and_event_time(env: None, history: list[Event]) -> None:
    """A date read off the trace is event time; the default clock is recorded time, and a
    replayed history was recorded long after its events."""
    label = next(e for e in history if isinstance(e, LabelCommitted))
    day_after = (label.envelope.occurred_at + dt.timedelta(days=1)).isoformat()
    assert label.envelope.recorded_at > label.envelope.occurred_at + dt.timedelta(days=2)
    runner = CliRunner()
    out = runner.invoke(app, ["audit", "label-as-of", label.comment_id, "--at", day_after])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "recorded time" in text and "--time event" in text, text
    assert f"{label.envelope.recorded_at:%Y-%m-%dT%H:%M}" in text  # when it was recorded
    rows = _json(["audit", "label-as-of", label.comment_id, "--at", day_after, "--time", "event"])
    assert [r["comment_id"] for r in rows] == [label.comment_id]
    helped = runner.invoke(app, ["audit", "label-as-of", "--help"], terminal_width=200)
    assert "event" in helped.output and "recorded" in helped.output


def test_label_as_of_table_is_readable_at_160_columns(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_cli, "console", Console(width=160))
    rows = _json(["audit", "label-as-of", "all", "--schema-version", "v3"])
    out = CliRunner().invoke(app, ["audit", "label-as-of", "all", "--schema-version", "v3"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert max(len(line) for line in lines) <= 160
    header = next(line for line in lines if "comment_id" in line)
    for column in audit_cli.LABEL_COLUMNS:
        assert column in header, column  # whole names, one header line
    for row in rows:  # one line per label, with its label whole
        assert any(row["comment_id"] in line and row["label"] in line for line in lines), row
    assert "annotator_ids" not in header and "--wide" in out.output
    wide = CliRunner().invoke(app, ["audit", "label-as-of", "all", "--wide"])
    assert wide.exit_code == 0 and "not shown" not in wide.output
    top = next(line for line in wide.output.splitlines() if "┳" in line)
    assert top.count("┳") + 1 == len(rows[0])  # every column
