"""Calibrated auto-accept on the real broker, onnxruntime and ClickHouse: ``labeltrail model
publish`` fits a temperature on the model's gold scores and records it on the ModelPublished;
the scorer stage gates auto-accept on the calibrated top probability and names the map and the
calibrated value on each score (docs/quality.md, "Calibrated confidence")."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.clickhouse.client import apply_ddl, client_from, run_named
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings
from labeltrail.events import CommentPosted, CommentScored
from labeltrail.kafka.producer import EventProducer
from labeltrail.quality.calibration import temper
from labeltrail.report.html import build_report
from tests.cli.test_model import _env, _manifest, _models, _train, day_one  # noqa: F401
from tests.probes import read_topic

pytestmark = pytest.mark.integration

TEXTS = ("log off you clown lol 9", "great video thanks lol 9", "i know where you live lol 9")


def _publish(settings: Settings, models_dir: Path, model: Path, min_gold: int) -> str:
    env = {**_env(settings, models_dir), "LABELTRAIL_CALIBRATION_MIN_GOLD": str(min_gold)}
    result = CliRunner().invoke(app, ["model", "publish", str(model)], env=env)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _comment(i: int) -> CommentPosted:
    when = dt.datetime(2024, 9, 2, 10, i, tzinfo=dt.UTC)
    return CommentPosted.create(
        producer="test",
        occurred_at=when,
        id_parts=("calibrated-auto-accept", i),
        comment_id=f"c-{i}",
        video_id="v-1",
        author_hash="a",
        text=TEXTS[i],
        posted_at=when,
        source="product_log",
    )


def test_model_publish_fits_the_auto_accept_map_and_the_scorer_stage_gates_on_it(
    day_one: tuple[Settings, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    from labeltrail.ml.train_job import onnx_scorer
    from labeltrail.stages import make_scorer

    s, store = day_one
    model = _train(tmp_path / "tox.onnx", blind=False)
    _manifest(model, model_version="tox-1")
    out = _publish(s, store, model, min_gold=10)  # the toy gold set has 14 items
    assert "auto-accept calibrated: temperature" in out, out
    (published,) = _models(s)
    temperature = published.temperature
    assert temperature is not None and abs(temperature - 1.0) > 0.05, temperature
    m = published.metrics
    assert m["calibration.n_gold"] == 14.0
    assert m["calibration.ece_after"] < m["calibration.ece_before"]

    # A threshold between the raw and the calibrated top probability of the first comment:
    # the raw value would auto-accept it on one side, the calibrated one decides.
    loaded = onnx_scorer(store / published.artifact_uri, published.artifact_sha256)
    raw = [float(x) for x in loaded.predict_proba(list(TEXTS))[0]]
    calibrated = max(temper(raw, temperature))
    threshold = (max(raw) + calibrated) / 2
    learning = s.learning.model_copy(
        update={"auto_accept_threshold": threshold, "models_dir": store}
    )
    settings = s.model_copy(update={"learning": learning})

    from labeltrail.kafka.runner import StageRunner

    fold = make_scorer(settings)
    fold.threshold = 0.0  # no margin routing: the auto-accept gate alone
    runner = StageRunner(fold, settings)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        producer = EventProducer(settings)
        for i in range(len(TEXTS)):
            producer.send(_comment(i))
        producer.flush()
        deadline = time.monotonic() + 60
        scores: list[CommentScored] = []
        while len(scores) < len(TEXTS) and time.monotonic() < deadline:
            scores = [e for e in read_topic(settings, "scores") if isinstance(e, CommentScored)]
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
    assert runner.stats.rejected == 0
    by_id = {sc.comment_id: sc for sc in scores}
    assert len(by_id) == len(TEXTS)
    for sc in by_id.values():
        assert sc.model_version == "tox-1" and sc.temperature == temperature
        expected = max(temper(list(sc.probabilities), temperature))
        assert sc.confidence == pytest.approx(expected, abs=2e-6)
        assert sc.route == ("auto_accept" if sc.confidence >= threshold else "none")
    first = by_id["c-0"]
    assert first.route == ("auto_accept" if calibrated > max(raw) else "none")

    client = client_from(settings)
    try:
        apply_ddl(client)
        run_until_caught_up(Projector(client, settings, batch_size=100), timeout=120)
        (row,) = client.query("SELECT temperature FROM models FINAL").result_rows
        assert row == (temperature,)
        rows = client.query(
            "SELECT comment_id, temperature, confidence, route FROM scores FINAL "
            "ORDER BY comment_id"
        ).result_rows
        assert rows == [
            (c, temperature, by_id[c].confidence, by_id[c].route) for c in sorted(by_id)
        ]
        (named,) = run_named(client, "model_calibration", model_version="")
        accepted = sum(sc.route == "auto_accept" for sc in by_id.values())
        assert (named["model_version"], named["n_gold"], named["n_scores"]) == ("tox-1", 14, 3)
        assert named["n_auto_accept"] == accepted
        assert named["figures"]["calibration.ece_after"] == m["calibration.ece_after"]
        html = build_report(client)
    finally:
        client.close()
    svg = re.search(r'<svg class="chart" data-chart="model-calibration".*?</svg>', html, re.S)
    assert svg is not None
    marks = re.findall(r'<g class="mark" id="(mark-model_calibration[^"]*)"', svg.group(0))
    assert len(marks) == 2  # before and after
    ece = f"data-ece-before='{m['calibration.ece_before']:.4f}'"
    assert f"data-model-calibration='tox-1' {ece}" in html
    assert f"3 scores made with it, {accepted} auto-accepted" in html
