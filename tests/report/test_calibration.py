"""Calibrated confidence end to end, and its reliability diagram in ``labeltrail report``.

On the real broker and the embedded ClickHouse: an over-confident crowd's campaign imported
(``labeltrail import votes``) with a gold set for most of its items (``labeltrail gold
publish``); the consensus and reliability stages, as their services build them, fold it and
the reliability stage fits a map on the gold items' consensus; a second campaign is imported and
the consensus and labels stages label it with the map; everything is projected, and the
``calibration`` query and the report show which map gated which labels and its diagram. A
lighter test draws the diagram from projected events alone and reads its numbers back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
from pathlib import Path

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from, run_named
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings
from labeltrail.events.models import CalibrationFitted, ConsensusUpdated, LabelCommitted
from labeltrail.folds.calibration import calibrated
from labeltrail.quality.calibration import expected_calibration_error, temper
from labeltrail.report.html import build_report
from tests.audit.history import project
from tests.cli.helpers import cli, run_registered_stage
from tests.cli.test_import import _publish_schema
from tests.probes import read_topic

START = dt.datetime(2021, 1, 4, 9, tzinfo=dt.UTC)  # a Monday
VERSION = "convabuse-v1"
CLASSES = [
    "not_abusive",
    "ambiguous",
    "mildly_abusive",
    "strongly_abusive",
    "very_strongly_abusive",
]
ANNOTATORS = [f"ann{i}" for i in range(6)]


def _campaign(items: range, rng: random.Random, accuracy: float) -> tuple[str, dict[str, str]]:
    """The import CSV of three votes per item, each right with probability ``accuracy`` (a
    wrong vote spread over the other classes), and every item's true class."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["item_id", "annotator_id", "label", "annotated_at", "text"])
    truth: dict[str, str] = {}
    for i in items:
        item = f"cal-{i:03d}"
        truth[item] = true = rng.choice(CLASSES)
        for j, annotator in enumerate(rng.sample(ANNOTATORS, 3)):
            right = rng.random() < accuracy
            label = true if right else rng.choice([c for c in CLASSES if c != true])
            at = START + dt.timedelta(minutes=3 * i + j)
            writer.writerow([item, annotator, label, at.isoformat(), f"utterance {i}"])
    return out.getvalue(), truth


def _gold_lines(truth: dict[str, str]) -> str:
    return "".join(
        json.dumps(
            {
                "comment_id": item,
                "video_id": "convabuse",
                "author_hash": "x",
                "text": f"gold {item}",
                "source": "pool",
                "posted_at": START.isoformat(),
                "label": label,
                "reviewer_id": "expert-1",
                "schema_version": VERSION,
            }
        )
        + "\n"
        for item, label in truth.items()
    )


def _import(settings: Settings, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text(text, encoding="utf-8")
    args = ("import", "votes", str(path), "--format", "csv", "--schema-version", VERSION)
    code, out = cli(settings, *args, "--source", name)
    assert code == 0, out


@pytest.mark.integration
def test_a_map_fitted_on_gold_gates_the_next_labels_and_is_in_the_report(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings.model_copy(
        update={
            "calibration": pipeline_settings.calibration.model_copy(update={"min_gold": 40}),
            "reliability": pipeline_settings.reliability.model_copy(
                update={"refit_on_drain": True, "suspend": False}
            ),
        }
    )
    _publish_schema(settings)
    rng = random.Random(3)
    first, truth = _campaign(range(100), rng, accuracy=0.4)
    _import(settings, tmp_path, "first", first)
    gold = {item: truth[item] for item in sorted(truth)[:80]}
    (tmp_path / "gold.jsonl").write_text(_gold_lines(gold), encoding="utf-8")
    code, out = cli(settings, "gold", "publish", str(tmp_path / "gold.jsonl"), "--set", "cal")
    assert code == 0, out

    run_registered_stage("consensus", settings, tmp_path / "consensus1")
    complete = {
        e.comment_id: e
        for e in read_topic(settings, "consensus")
        if isinstance(e, ConsensusUpdated) and e.status != "collecting"
    }
    assert len(complete) == 100 and not any(
        "calibration" in e.method_params for e in complete.values()
    )
    run_registered_stage("reliability", settings, tmp_path / "reliability")
    (fit,) = [e for e in read_topic(settings, "quality") if isinstance(e, CalibrationFitted)]
    assert fit.schema_version == VERSION and fit.n_gold == 80 and fit.classes == CLASSES
    assert sorted(fit.consensus_ids) == sorted(complete[item].event_id for item in gold)
    posteriors = [complete[item].posterior for item in sorted(gold)]
    right = [
        CLASSES[p.index(max(p))] == gold[item]
        for p, item in zip(posteriors, sorted(gold), strict=True)
    ]
    assert fit.ece_before == pytest.approx(
        expected_calibration_error([max(p) for p in posteriors], right)
    )
    assert fit.temperature > 1 and fit.ece_after < fit.ece_before  # the crowd is over-confident

    # The stage reads the map (live records of different topics come in any order: a map
    # read with new votes may apply from any of them; here it is read first).
    run_registered_stage("consensus", settings, tmp_path / "consensus2")
    second, _ = _campaign(range(100, 160), rng, accuracy=0.4)
    _import(settings, tmp_path, "second", second)
    run_registered_stage("consensus", settings, tmp_path / "consensus3")
    run_registered_stage("labels", settings, tmp_path / "labels")
    updates = {
        e.event_id: e for e in read_topic(settings, "consensus") if isinstance(e, ConsensusUpdated)
    }
    labels = [e for e in read_topic(settings, "labels") if isinstance(e, LabelCommitted)]
    new = [e for e in labels if int(e.comment_id.removeprefix("cal-")) >= 100]
    old = [e for e in labels if int(e.comment_id.removeprefix("cal-")) < 100]
    assert new and old
    for label in old:  # before the map: the posterior as it was
        assert "calibration" not in label.method_params
        assert label.confidence == max(label.distribution)
    for label in new:  # with it: named, and made again from the update it came from
        update = updates[label.envelope.causation_id or ""]
        assert label.method_params["calibration"] == fit.event_id
        assert label.distribution == calibrated(update.posterior, update.method_params)
        assert label.distribution == temper(update.posterior, fit.temperature)
        assert label.confidence == max(label.distribution) < max(update.posterior)

    client = client_from(settings)
    apply_ddl(client)
    run_until_caught_up(Projector(client, settings))
    (row,) = run_named(client, "calibration", schema_version=VERSION)
    client.close()
    assert row["calibration_id"] == fit.event_id and row["n_labels"] == len(new)
    assert row["temperature"] == fit.temperature and row["n_gold"] == 80
    assert list(row["bin_count_before"]) == fit.bin_count_before

    code, out = cli(settings, "report", "--out", str(tmp_path / "report.html"))
    assert code == 0, out
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'data-chart="calibration"' in html
    assert f"data-ece-before='{fit.ece_before:.4f}' data-ece-after='{fit.ece_after:.4f}'" in html
    assert f"{len(new)} labels gated with it" in html


def _fitted(version: str, ece_before: float, ece_after: float) -> CalibrationFitted:
    return CalibrationFitted.create(
        producer="reliability",
        id_parts=("map", version),
        occurred_at=START,
        schema_version=version,
        method="temperature",
        temperature=2.5,
        classes=["a", "b"],
        n_gold=60,
        ece_before=ece_before,
        ece_after=ece_after,
        bin_count_before=[0] * 5 + [5, 5, 10, 10, 30],
        bin_confidence_before=[0.0] * 5 + [0.55, 0.65, 0.75, 0.85, 0.97],
        bin_accuracy_before=[0.0] * 5 + [0.6, 0.6, 0.6, 0.7, 0.75],
        bin_count_after=[0] * 5 + [10, 20, 30, 0, 0],
        bin_confidence_after=[0.0] * 5 + [0.56, 0.66, 0.74, 0.0, 0.0],
        bin_accuracy_after=[0.0] * 5 + [0.6, 0.65, 0.73, 0.0, 0.0],
        consensus_ids=[],
        window_end=START,
    )


def test_the_report_draws_the_latest_map_per_version_with_its_numbers(tmp_path: Path) -> None:
    settings = Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")
    client = client_from(settings)
    apply_ddl(client)
    empty = build_report(client)
    assert "No calibration map yet" in empty and 'data-chart="calibration"' not in empty
    project(client, [_fitted("v3", 0.1912, 0.0231)])
    html = build_report(client)
    client.close()
    svg = re.search(r'<svg class="chart" data-chart="calibration".*?</svg>', html, re.S)
    assert svg is not None
    marks = re.findall(r'<g class="mark" id="(mark-calibration[^"]*)"', svg.group(0))
    assert len(marks) == 2  # before and after, one line each
    assert "data-ece-before='0.1912' data-ece-after='0.0231'" in html
    assert "ECE 0.191 &rarr; 0.023 (temperature 2.500, 60 gold items, 0 labels gated" in html
    # every non-empty bin's item count is written beside its point
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg.group(0))
    assert {"5", "10", "30", "20"} <= {t.strip() for t in texts}
