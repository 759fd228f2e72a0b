"""``labeltrail schema ...`` and ``labeltrail annotators ...`` on the real broker: what a team
runs on day one. Bad input is a clear error (exit 2, the line and field named) and nothing is
published; the same file twice adds nothing; every command's events reach ClickHouse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings
from labeltrail.events import AnnotatorSuspended, LabelSchemaPublished
from tests.probes import read_topic

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.integration
def test_schema_publish_list_show_and_twice_adds_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    s = pipeline_settings
    v1, v2 = str(EXAMPLES / "ontology.yaml"), str(EXAMPLES / "ontology-v2.yaml")
    code, out = _run(s, "schema", "publish", v2)
    assert code == 2 and "supersedes: v1 is not published" in out, out
    code, out = _run(s, "schema", "publish", v1)
    assert code == 0 and "published schema v1: 5 classes, 4 questions" in out, out
    code, out = _run(s, "schema", "publish", v1)
    assert code == 0 and "already published: nothing to do" in out, out
    code, out = _run(s, "schema", "publish", v2)
    assert code == 0 and "supersedes v1 (relabel_subset)" in out, out
    edited = tmp_path / "edited.yaml"
    edited.write_text((EXAMPLES / "ontology.yaml").read_text().replace("Read the whole", "Read"))
    code, out = _run(s, "schema", "publish", str(edited))
    assert code == 2 and "v1 is already published with other content" in out, out
    assert "guideline_hash" in out

    published = read_topic(s, "schemas")
    assert [e.version for e in published if isinstance(e, LabelSchemaPublished)] == ["v1", "v2"]

    code, out = _run(s, "schema", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["version"] for r in rows] == ["v1", "v2"]
    assert rows[1]["relabel_classes"] == ["harassment", "mild"]
    code, out = _run(s, "schema", "show", "v2")
    assert code == 0 and "q5_coded" in out and "relabel_subset" in out, out
    code, out = _run(s, "schema", "show", "v7")
    assert code == 3 and "no schema version 'v7'" in out


@pytest.mark.integration
def test_a_schema_file_with_a_duplicate_class_publishes_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text(
        (EXAMPLES / "ontology.yaml").read_text().replace("  - threats\n", "  - hate\n", 1)
    )
    code, out = _run(pipeline_settings, "schema", "publish", str(bad))
    assert code == 2, out
    assert "line 13: classes[4]: class 'hate' is listed twice" in out
    assert "nothing produced" in out
    assert read_topic(pipeline_settings, "schemas") == []


@pytest.mark.integration
def test_a_pool_row_without_consent_but_with_demographics_publishes_nothing(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    lines = (EXAMPLES / "annotators.csv").read_text().splitlines()
    lines[3] = "crowd-003,crowd,en-IN,en;hi,no,25-34,,"  # line 4 of the file
    bad = tmp_path / "pool.csv"
    bad.write_text("\n".join(lines) + "\n")
    code, out = _run(pipeline_settings, "annotators", "register", str(bad))
    assert code == 2, out
    assert "line 4: demographics.age_band: demographics given without consent" in out
    assert read_topic(pipeline_settings, "annotators") == []


@pytest.mark.integration
def test_register_suspend_reinstate_and_the_audit_trail(pipeline_settings: Settings) -> None:
    s = pipeline_settings
    pool = str(EXAMPLES / "annotators.csv")
    code, out = _run(s, "annotators", "register", pool)
    assert code == 0 and "registered 15 annotator(s) (crowd 12, expert 3)" in out, out
    code, out = _run(s, "annotators", "register", pool)
    assert code == 0 and "registered 0 annotator(s)" in out, out
    assert len(read_topic(s, "annotators")) == 15

    code, out = _run(s, "annotators", "suspend", "crowd-404", "--reason", "spam")
    assert code == 2 and "'crowd-404' is not registered" in out and "nothing published" in out
    assert read_topic(s, "annotators.status") == []

    code, out = _run(
        s,
        "annotators",
        "suspend",
        "crowd-006",
        "--reason",
        "copy-pasted answers",
        "--actor",
        "lead",
    )
    assert code == 0 and "crowd-006 is suspended" in out, out
    code, out = _run(s, "annotators", "suspend", "crowd-006", "--reason", "again")
    assert code == 0 and "already suspended: nothing to do" in out
    code, out = _run(s, "annotators", "list", "--json")
    status = {r["annotator_id"]: r for r in json.loads(out)}
    assert status["crowd-006"]["status"] == "suspended"
    assert status["crowd-006"]["suspended_by"] == "lead"
    assert status["crowd-003"]["demographics"] == {}
    assert status["crowd-001"]["demographics"]["age_band"] == "25-34"
    code, out = _run(s, "annotators", "reinstate", "crowd-006", "--reason", "appeal upheld")
    assert code == 0 and "crowd-006 is active" in out
    status_log = read_topic(s, "annotators.status")
    assert [type(e).__name__ for e in status_log] == ["AnnotatorSuspended", "AnnotatorReinstated"]
    assert isinstance(status_log[0], AnnotatorSuspended) and status_log[0].actor == "lead"

    assert _run(s, "schema", "publish", str(EXAMPLES / "ontology.yaml"))[0] == 0
    client = client_from(s)
    try:
        apply_ddl(client)
        run_until_caught_up(Projector(client, s, batch_size=100), timeout=120)
        counts = {
            table: client.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0]
            for table in (
                "label_schemas",
                "annotators",
                "annotator_suspensions",
                "annotator_reinstatements",
            )
        }
        assert counts == {
            "label_schemas": 1,
            "annotators": 15,
            "annotator_suspensions": 1,
            "annotator_reinstatements": 1,
        }
        who = client.query("SELECT actor, reason FROM annotator_suspensions FINAL").result_rows
        assert who == [("lead", "copy-pasted answers")]
    finally:
        client.close()


def test_check_validates_without_a_broker(tmp_path: Path) -> None:
    """``--check`` reads no topic: it works with no broker at the configured address."""
    nowhere = Settings(kafka_bootstrap_servers="127.0.0.1:1", topic_prefix="unused")
    code, out = _run(nowhere, "schema", "publish", str(EXAMPLES / "ontology.yaml"), "--check")
    assert code == 0 and "schema v1, valid (nothing published)" in out, out
    pool = tmp_path / "pool.csv"
    pool.write_text(POOL_HEADER + "a1,crowd,en-US,en,no,18-24\n")
    code, out = _run(nowhere, "annotators", "register", str(pool), "--check")
    assert code == 2 and "line 2: demographics.age_band" in out, out


POOL_HEADER = "annotator_id,pool,locale,languages,consent,demographics.age_band\n"
