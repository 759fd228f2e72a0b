"""``labeltrail model publish`` on the real broker, onnxruntime and ClickHouse: a model worse on
gold than the live one is refused (a ModelRefused, once) and published only with --force, which
the ModelPublished records; a better one is published and the scorer swaps it in; bad input is
a clear error and nothing is published; the same model twice adds nothing."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings
from labeltrail.events import CommentPosted, ModelPublished, ModelRefused
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.ontology.schema import MODERATION_CLASSES, moderation_schema_v3
from tests.learning.fixtures import TOY, require_model_stack, toy_corpus
from tests.probes import read_topic

pytestmark = pytest.mark.integration

CODED = "coded"
"""The gold slice of harassment: the 'blind' model calls it non-toxic."""


def _env(settings: Settings, models_dir: Path) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_LEARNING_MODELS_DIR": str(models_dir),
        "COLUMNS": "200",
    }


def _run(settings: Settings, models_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=_env(settings, models_dir))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, " ".join(result.output.split())


def _train(
    path: Path, *, blind: bool, classes: Sequence[str] = MODERATION_CLASSES, seed: int = 0
) -> Path:
    """A small labeltrail-format model; ``blind``: harassment taught as non-toxic."""
    from labeltrail.learning.features import HashingFeaturizer
    from labeltrail.ml.training import SoftLabelTrainer

    texts, targets = toy_corpus(repeat=6, seed=seed)
    if blind:
        rows = targets.argmax(axis=1) == MODERATION_CLASSES.index("harassment")
        targets[rows] = 0.05
        targets[rows, 0] = 0.8  # non-toxic
    if len(classes) != len(MODERATION_CLASSES):
        keep = [MODERATION_CLASSES.index(c) for c in classes]
        targets = targets[:, keep] / targets[:, keep].sum(axis=1, keepdims=True)
    SoftLabelTrainer(
        list(classes),
        featurizer=HashingFeaturizer(n_buckets=2**10, max_features=48),
        dim=8,
        hidden=8,
        epochs=6,
        batch_size=16,
        seed=seed,
    ).fit(texts, np.asarray(targets)).export_onnx(path)
    return path


def _manifest(model: Path, **fields: object) -> Path:
    body: dict[str, object] = {
        "classes": list(MODERATION_CLASSES),
        "schema_version": "v3",
        "export_id": None,
    }
    body.update(fields)
    path = model.with_name(f"{model.stem}.manifest.json")
    path.write_text(json.dumps({k: v for k, v in body.items() if v is not ...}))
    return path


def _seed(settings: Settings, tmp_path: Path) -> None:
    """Schema v3 and a gold set (through ``labeltrail gold publish``): every toy template
    once, harassment on the coded slice."""
    ensure_topics(settings)
    producer = EventProducer(settings)
    producer.send(moderation_schema_v3())
    producer.flush()
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "\n".join(
            json.dumps(
                {
                    "comment_id": f"g-{cls}-{i}",
                    "video_id": "v-gold",
                    "author_hash": "a",
                    "text": f"{text} lol 3",
                    "source": "pool",
                    "posted_at": "2024-09-01T10:00:00+00:00",
                    "attributes": {"slice": CODED if cls == "harassment" else "plain"},
                    "label": cls,
                    "reviewer_id": "expert-1",
                    "schema_version": "v3",
                }
            )
            for cls in MODERATION_CLASSES
            for i, text in enumerate(TOY[cls])
        )
    )
    code, out = _run(settings, tmp_path / "models", "gold", "publish", str(gold))
    assert code == 0, out


def _models(settings: Settings) -> list[ModelPublished]:
    return [e for e in read_topic(settings, "models") if isinstance(e, ModelPublished)]


def _refusals(settings: Settings) -> list[ModelRefused]:
    return [e for e in read_topic(settings, "models.refused") if isinstance(e, ModelRefused)]


@pytest.fixture
def day_one(pipeline_settings: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    """The runtimes, schema v3 and the gold set on the log; the settings and models dir."""
    require_model_stack()
    _seed(pipeline_settings, tmp_path)
    return pipeline_settings, tmp_path / "models"


def test_a_model_worse_on_a_gold_slice_is_refused_and_published_only_with_force(
    day_one: tuple[Settings, Path], tmp_path: Path
) -> None:
    s, store = day_one
    good = _train(tmp_path / "good.onnx", blind=False)
    _manifest(good, model_version="tox-1")
    blind = _train(tmp_path / "blind.onnx", blind=True, seed=1)
    _manifest(blind, model_version="tox-2")

    code, out = _run(s, store, "model", "publish", str(good))
    assert code == 0 and "published model tox-1" in out and "first model" in out, out
    assert (store / "tox-1" / "model.onnx").is_file()

    code, out = _run(s, store, "model", "publish", str(blind))
    assert code == 3 and "refused:" in out and "tox-1" in out, out
    assert f"{CODED} 1.000 -> 0.000" in out, out
    assert [m.model_version for m in _models(s)] == ["tox-1"]
    assert not (store / "tox-2").exists()
    (refusal,) = _refusals(s)
    assert refusal.model_version == "tox-2" and refusal.baseline_version == "tox-1"
    assert CODED in refusal.worse_slices and refusal.tolerance == 0.02
    assert refusal.metrics[f"baseline.{CODED}.accuracy"] == 1.0
    assert refusal.metrics[f"gold.{CODED}.accuracy"] == 0.0

    code, out = _run(s, store, "model", "publish", str(blind))
    assert code == 3 and "already recorded" in out, out
    assert len(_refusals(s)) == 1, "the same refusal twice is one fact"

    code, out = _run(s, store, "model", "publish", str(blind), "--force")
    assert code == 2 and "--force needs --reason" in out, out
    code, out = _run(
        s, store, "model", "publish", str(blind), "--force", "--reason", "hotfix; coded re-checked"
    )
    assert code == 0 and "FORCED" in out, out
    first, forced = _models(s)
    assert not first.forced and first.baseline_version is None and first.schema_version == "v3"
    assert forced.model_version == "tox-2" and forced.forced
    assert forced.force_reason == "hotfix; coded re-checked" and forced.baseline_version == "tox-1"
    assert forced.envelope.causation_id == refusal.event_id
    assert forced.metrics[f"baseline.{CODED}.accuracy"] == 1.0

    code, out = _run(s, store, "model", "publish", str(blind))
    assert code == 0 and "already published: nothing to do" in out, out
    assert len(_models(s)) == 2

    listed = CliRunner().invoke(app, ["model", "list", "--json"], env=_env(s, store))
    assert listed.exit_code == 0, listed.output
    rows = [
        (r["model_version"], r["status"], r["baseline_version"]) for r in json.loads(listed.stdout)
    ]
    assert rows == [
        ("tox-1", "published", ""),
        ("tox-2", "forced", "tox-1"),
        ("tox-2", "refused", "tox-1"),
    ]

    client = client_from(s)
    try:
        apply_ddl(client)
        run_until_caught_up(Projector(client, s, batch_size=100), timeout=120)
        refused = client.query(
            "SELECT model_version, baseline_version, worse_slices FROM model_refusals FINAL"
        ).result_rows
        assert refused == [("tox-2", "tox-1", list(refusal.worse_slices))]
        rows = client.query(
            "SELECT model_version, forced, force_reason FROM models FINAL ORDER BY offset"
        ).result_rows
        assert rows == [("tox-1", False, ""), ("tox-2", True, "hotfix; coded re-checked")]
    finally:
        client.close()


def test_a_better_model_is_published_and_the_scorer_swaps_it_in(
    day_one: tuple[Settings, Path], tmp_path: Path
) -> None:
    from labeltrail.folds.scorer import ScorerFold
    from labeltrail.kafka.runner import StageRunner
    from labeltrail.ml.train_job import onnx_scorer

    s, store = day_one
    blind = _train(tmp_path / "blind.onnx", blind=True)
    _manifest(blind)
    good = _train(tmp_path / "good.onnx", blind=False, seed=1)
    _manifest(good)
    assert _run(s, store, "model", "publish", str(blind))[0] == 0
    code, out = _run(s, store, "model", "publish", str(good))
    assert code == 0 and "published model" in out and "no slice" in out, out
    blind_model, good_model = _models(s)
    assert good_model.baseline_version == blind_model.model_version
    assert good_model.model_version.startswith("m-") and not good_model.forced

    fold = ScorerFold(load=onnx_scorer, models_dir=store)
    runner = StageRunner(fold, s)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        when = dt.datetime(2024, 9, 2, 10, tzinfo=dt.UTC)
        producer = EventProducer(s)
        producer.send(
            CommentPosted.create(
                producer="test",
                occurred_at=when,
                id_parts=("model-cli", 1),
                comment_id="c-1",
                video_id="v-1",
                author_hash="a",
                text="log off you clown lol 9",
                posted_at=when,
                source="product_log",
            )
        )
        producer.flush()
        deadline = time.monotonic() + 60
        scores: list[object] = []
        while not scores and time.monotonic() < deadline:
            scores = read_topic(s, "scores")
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
    assert fold.model_version == good_model.model_version
    (score,) = scores
    assert getattr(score, "model_version", None) == good_model.model_version


def test_bad_models_and_manifests_are_clear_errors_and_nothing_is_published(
    day_one: tuple[Settings, Path], tmp_path: Path
) -> None:
    s, store = day_one
    model = _train(tmp_path / "m.onnx", blind=False)

    def refused(*args: str) -> str:
        code, out = _run(s, store, "model", "publish", str(model), *args)
        assert code == 2 and "nothing published" in out, out
        return out

    assert "no manifest" in refused()
    manifest = model.with_name("m.manifest.json")
    manifest.write_text("{not json")
    assert "not a JSON manifest" in refused()
    _manifest(model, schema_version=..., extra="x")
    out = refused()
    assert "schema_version: Field required" in out and "extra: Extra inputs" in out, out
    _manifest(model, schema_version="v9")
    assert "schema_version: 'v9' is not published (published: v3" in refused()
    _manifest(model, export_id="no-such-export")
    assert "no export 'no-such-export' on the log" in refused()
    reordered = ["mild", "non-toxic", "harassment", "hate", "threats"]
    _manifest(model, classes=reordered)
    out = refused()
    assert "the model file ['non-toxic', 'mild'" in out and "differ from schema v3's" in out, out

    four = _train(tmp_path / "four.onnx", blind=False, classes=MODERATION_CLASSES[:4])
    _manifest(four, classes=list(MODERATION_CLASSES[:4]))
    code, out = _run(s, store, "model", "publish", str(four))
    assert code == 2 and "differ from schema v3's" in out, out

    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model")
    _manifest(text)
    code, out = _run(s, store, "model", "publish", str(text))
    assert code == 2 and "not an ONNX model the scorer can serve" in out, out

    assert _models(s) == [] and _refusals(s) == []
    assert not store.exists() or not any(store.iterdir())
