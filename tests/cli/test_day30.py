"""``labeltrail day30 --live``: the day-30 loop on the services, from the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.config import Settings
from tests.learning.fixtures import require_model_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_day30_live_without_the_questions_stage_relabels_and_deletes_its_topics(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    require_model_stack()
    settings = pipeline_settings
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": "3",
    }
    args = [
        "day30",
        "--live",
        "--comments",
        "1000",
        "--models-dir",
        str(tmp_path / "models"),
        "--workdir",
        str(tmp_path / "day30"),
        "--without",
        "questions",
    ]
    result = CliRunner().invoke(app, args, env=env, terminal_width=200)
    assert result.exit_code == 0, result.output
    print(result.output)
    assert f"topics {settings.topic_prefix}.day30-" in result.output
    # Without the questions stage nothing sends the coded slice to experts by its
    # needs-context answers: the team's relabel does, through tasking, as in memory.
    stages = next(x for x in result.output.splitlines() if x.startswith("stages "))
    assert "questions" not in stages and "trainer" in stages
    relabel = re.search(
        r"flagged slices \['coded_harassment'\]; relabel requests (\d+)", result.output
    )
    assert relabel is not None and int(relabel.group(1)) > 0, result.output
    assert "iaa blind-spot alert: week window, slice coded_harassment" in result.output
    line = next(x for x in result.output.splitlines() if x.startswith("coded_harassment"))
    recall = json.loads(re.sub(r"^.*recall \(v1, v2\) ", "", line))["harassment"]
    assert recall[1] - recall[0] >= 0.3, line
    # The run's own ClickHouse and exports, under its run directory.
    (run,) = (tmp_path / "day30").iterdir()
    assert (run / "clickhouse").is_dir() and len(list((run / "exports").iterdir())) == 2
    # Its topics are gone (the fixture deletes the test prefix's anyway; this is the command's).
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    left = [t for t in admin.list_topics(timeout=10).topics if ".day30-" in t]
    assert not [t for t in left if t.startswith(settings.topic_prefix)], left
    # --live trains on the committed labels only, and cannot run without its core stages.
    refused = CliRunner().invoke(app, ["day30", "--live", "--soft-labels", "multisource"])
    assert refused.exit_code == 2
    coreless = CliRunner().invoke(app, [*args[:-1], "trainer"], env=env)
    assert coreless.exit_code != 0 and "the loop needs ['trainer']" in coreless.output


def test_day30_weak_is_an_option_of_live_and_needs_the_weak_stage(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    """``--weak`` (the multi-source v2) runs only live, and not with the weak stage left out;
    the run itself is ``tests/sim/test_scenario_live.py``'s."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": pipeline_settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": pipeline_settings.topic_prefix,
    }
    alone = CliRunner().invoke(app, ["day30", "--weak"], env=env)
    assert alone.exit_code == 2 and "options of --live" in alone.output
    where = ["--workdir", str(tmp_path / "day30"), "--models-dir", str(tmp_path / "models")]
    args = ["day30", "--live", "--weak", *where, "--without", "weak"]
    weakless = CliRunner().invoke(app, args, env=env, terminal_width=200)
    assert weakless.exit_code != 0 and "the loop needs ['weak']" in weakless.output
