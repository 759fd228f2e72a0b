"""The learning CLI: train -> score, lf analyze / fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from labeltrail.cli import app
from tests.learning.fixtures import require_model_stack, toy_corpus

runner = CliRunner()
CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]


def test_train_then_score(tmp_path: Path) -> None:
    require_model_stack()
    texts, targets = toy_corpus(repeat=3)
    export = tmp_path / "export.jsonl"
    rows = [
        {"text": t, "classes": CLASSES, "distribution": d.tolist(), "confidence": 0.9}
        for t, d in zip(texts, targets, strict=True)
    ]
    export.write_text("\n".join(json.dumps(r) for r in rows))
    args = f"train {export} --models-dir {tmp_path} --version v1 --epochs 2 --buckets 1024"
    result = runner.invoke(app, [*args.split(), "--dim", "8"])
    assert result.exit_code == 0, result.output
    model = tmp_path / "v1" / "model.onnx"
    assert model.is_file() and '"model_version": "v1"' in result.stdout
    manifest = json.loads((tmp_path / "v1" / "model.manifest.json").read_text())
    assert manifest == {
        "model_version": "v1",
        "classes": CLASSES,
        "schema_version": "v3",
        "export_id": None,
        "export_hash": None,
    }
    lines = tmp_path / "texts.txt"
    lines.write_text("great video thanks\nlog off you clown\n")
    scored = runner.invoke(app, ["score", str(model), str(lines)])
    assert scored.exit_code == 0, scored.output
    out = [json.loads(x) for x in scored.stdout.splitlines()]
    assert len(out) == 2 and set(out[0]["probabilities"]) == set(CLASSES)
    assert out[0]["route"] in ("annotate", "none")


def test_lf_analyze_and_fit(tmp_path: Path) -> None:
    L = np.array([[0, 0, -1], [1, 1, 1], [0, -1, 0], [1, 1, -1]] * 10)
    np.save(tmp_path / "L.npy", L)
    np.save(tmp_path / "gold.npy", np.array([0, 1, 0, 1] * 10))
    args = f"lf analyze {tmp_path / 'L.npy'} --gold {tmp_path / 'gold.npy'} --names a,b,c"
    result = runner.invoke(app, args.split())
    assert result.exit_code == 0, result.output
    assert "coverage=1.000" in result.stdout and "accuracy=1.000" in result.stdout
    fitted = runner.invoke(
        app,
        ["lf", "fit", str(tmp_path / "L.npy"), "--classes", "2", "--out", str(tmp_path / "s.npy")],
    )
    assert fitted.exit_code == 0, fitted.output
    soft = np.load(tmp_path / "s.npy")
    assert soft.shape == (40, 2) and np.array_equal(soft.argmax(1), [0, 1, 0, 1] * 10)
