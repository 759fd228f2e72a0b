"""Schema migration policies in exports, on the real broker and the embedded ClickHouse:
``keep_as_feature`` carries the old version's latest label (and its confidence) as feature
columns that ``export verify`` rebuilds from the log; ``discard`` refuses an export under the
discarded version."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from labeltrail.cli.export import export_app
from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.config import Settings
from labeltrail.events import Event, LabelCommitted, LabelSchemaPublished
from labeltrail.exceptions import LabeltrailError
from labeltrail.export.build import create_export, read_parquet_rows, verify_directory
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.ontology import MODERATION_CLASSES

pytestmark = pytest.mark.integration


def _schema(version: str, supersedes: str | None = None, policy: str = "none") -> Event:
    return LabelSchemaPublished.create(
        producer="tests",
        id_parts=(version,),
        version=version,
        classes=list(MODERATION_CLASSES),
        questions=[],
        guideline_hash=f"sha256:{version}",
        supersedes=supersedes,
        old_label_policy=policy,
    )


def _label(comment: str, version: str, label: str, confidence: float, n: int = 0) -> Event:
    return LabelCommitted.create(
        producer="tests",
        id_parts=(comment, version, str(n)),
        label_id=f"l-{comment}-{version}-{n}",
        comment_id=comment,
        schema_version=version,
        label=label,
        classes=list(MODERATION_CLASSES),
        distribution=[0.2] * 5,
        confidence=confidence,
        route="consensus",
        method="mv",
        vote_ids=[],
        annotator_ids=[],
    )


def _publish(settings: Settings, events: list[Event]) -> None:
    producer = EventProducer(settings)
    for event in events:
        producer.send(event)
        producer.flush()  # one after the other: the latest label is the last one sent


def _verify_cli(settings: Settings, directory: Path) -> tuple[int, str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
    }
    result = CliRunner().invoke(export_app, ["verify", str(directory)], env=env)
    return result.exit_code, result.output


def test_keep_as_feature_exports_the_old_label_and_verifies(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    _publish(
        settings,
        [
            _schema("v1"),
            _label("c1", "v1", "mild", 0.6),
            _label("c1", "v1", "harassment", 0.8, n=1),  # the latest v1 label of c1
            _label("c2", "v1", "non-toxic", 0.9),
            _schema("v2", supersedes="v1", policy="keep_as_feature"),
            _label("c1", "v2", "hate", 0.7),
            _label("c3", "v2", "non-toxic", 0.95),  # no v1 label
        ],
    )
    client = client_from(settings)
    apply_ddl(client)
    export = create_export(client, settings, schema_version="v2", out_dir=tmp_path / "x")
    old = create_export(client, settings, schema_version="v1", out_dir=tmp_path / "x")
    client.close()

    assert export.aggregator_params["prior_labels"] == "v1"
    directory = Path(export.uri.removeprefix("file://"))
    columns = pq.read_schema(directory / "rows.parquet").names
    assert {"prior_label_v1", "prior_confidence_v1"} <= set(columns)
    rows = {r["comment_id"]: r for r in read_parquet_rows(directory / "rows.parquet")}
    assert sorted(rows) == ["c1", "c3"]
    assert (rows["c1"]["label"], rows["c1"]["prior_label_v1"]) == ("hate", "harassment")
    assert rows["c1"]["prior_confidence_v1"] == pytest.approx(0.8)
    assert (rows["c3"]["prior_label_v1"], rows["c3"]["prior_confidence_v1"]) == (None, None)
    jsonl_row = (directory / "rows.jsonl").read_text().splitlines()[0]
    assert '"prior_label_v1":"harassment"' in jsonl_row

    result = verify_directory(settings, directory)
    assert result.ok, result.problems
    code, output = _verify_cli(settings, directory)
    assert code == 0, output
    # The old version's own export is unchanged in shape: no feature column.
    old_dir = Path(old.uri.removeprefix("file://"))
    assert "prior_label_v1" not in pq.read_schema(old_dir / "rows.parquet").names
    assert "prior_labels" not in old.aggregator_params


def test_an_export_under_a_discarded_version_is_refused(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    _publish(settings, [_schema("v1"), _label("c1", "v1", "mild", 0.6)])
    client = client_from(settings)
    apply_ddl(client)
    before = create_export(client, settings, schema_version="v1", out_dir=tmp_path / "before")
    assert before.row_count == 1
    _publish(settings, [_schema("v2", supersedes="v1", policy="discard")])

    with pytest.raises(
        LabeltrailError, match=r"v2 superseded it with the migration policy 'discard'"
    ):
        create_export(client, settings, schema_version="v1", out_dir=tmp_path / "after")
    client.close()
    assert not (tmp_path / "after").exists()
