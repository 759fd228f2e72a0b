"""The scorer fold: onnxruntime scores, margin routing, hold-until-model, hot swap."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from labeltrail.events.base import LogPosition
from labeltrail.events.models import CommentPosted, CommentScored, ModelPublished
from labeltrail.folds.base import Rejected
from labeltrail.ml.train_job import onnx_scorer
from tests.learning.fixtures import TinyModel, require

POS = LogPosition(topic="t", partition=0, offset=0)


def _comment(cid: str, text: str) -> CommentPosted:
    when = dt.datetime(2024, 9, 2, tzinfo=dt.UTC)
    return CommentPosted.create(
        producer="test",
        occurred_at=when,
        id_parts=(cid,),
        comment_id=cid,
        video_id="v-1",
        author_hash="a",
        text=text,
        posted_at=when,
        source="product_log",
    )


def _publish(tiny: TinyModel, models_dir: Path, version: str, metrics: dict[str, float]):  # type: ignore[no-untyped-def]
    from labeltrail.learning.publish import artifact_path, model_published

    target = artifact_path(models_dir, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny.path, target)
    return model_published(
        models_dir,
        version,
        list(tiny.trainer.classes_),
        export_id="e-1",
        export_hash="sha256:x",
        metrics=metrics,
    )


def test_scores_routes_and_hot_swaps(tiny_model: TinyModel, tmp_path: Path) -> None:
    require("onnxruntime")
    from labeltrail.folds.scorer import ScorerFold

    fold = ScorerFold(
        load=onnx_scorer, models_dir=tmp_path, threshold=0.1, auto_accept_threshold=0.9
    )
    early = _comment("c-1", "nobody wants you here loser")
    assert fold.apply(early, POS) == []  # no model yet: held, not dropped
    v1 = _publish(tiny_model, tmp_path, "m-1", {"gold.all.accuracy": 0.9})
    out = fold.apply(v1, POS)
    assert [type(o) for o in out] == [CommentScored]
    scored = out[0]
    assert isinstance(scored, CommentScored)
    assert scored.model_version == "m-1" and scored.comment_id == "c-1"
    assert abs(sum(scored.probabilities) - 1.0) < 1e-5
    top2 = sorted(scored.probabilities)[-2:]
    assert scored.margin == pytest.approx(top2[1] - top2[0], abs=1e-6)
    top = max(scored.probabilities)
    expected = "annotate" if scored.margin < 0.1 else ("auto_accept" if top >= 0.9 else "none")
    assert scored.route == expected
    v2 = _publish(tiny_model, tmp_path, "m-2", {})
    assert fold.apply(v2, POS) == []
    again = fold.apply(_comment("c-2", "great video thanks"), POS)
    assert isinstance(again[0], CommentScored) and again[0].model_version == "m-2"
    assert fold.swaps == 2
    # Re-reading the same model (a replay of the compacted topic) is a no-op.
    assert fold.apply(v2, POS) == [] and fold.swaps == 2


def test_bad_artifact_is_rejected_and_old_model_keeps_serving(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    require("onnxruntime")
    from labeltrail.folds.scorer import ScorerFold

    fold = ScorerFold(load=onnx_scorer, models_dir=tmp_path)
    fold.apply(_publish(tiny_model, tmp_path, "m-1", {}), POS)
    tampered = _publish(tiny_model, tmp_path, "m-2", {}).model_copy(
        update={"artifact_sha256": "0" * 64}
    )
    out = fold.apply(tampered, POS)
    assert len(out) == 1 and isinstance(out[0], Rejected) and "sha256" in out[0].reason
    scored = fold.apply(_comment("c-3", "watch your back tonight"), POS)
    assert isinstance(scored[0], CommentScored) and scored[0].model_version == "m-1"


def test_held_comments_without_a_model_are_rejected_on_drain(tmp_path: Path) -> None:
    require("onnxruntime")
    from labeltrail.folds.scorer import ScorerFold

    fold = ScorerFold(load=onnx_scorer, models_dir=tmp_path)
    fold.apply(_comment("c-9", "hello"), POS)
    drained = fold.drain()
    assert len(drained) == 1 and isinstance(drained[0], Rejected)


class _Fixed:
    """A loaded model that gives every text the same probabilities (no runtime needed)."""

    classes = ("non-toxic", "harassment", "hate")

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float32]:
        row = np.asarray([[0.93, 0.05, 0.02]], dtype=np.float32)
        return np.tile(row, (len(texts), 1))


def _fixed_model(version: str, temperature: float | None) -> ModelPublished:
    return ModelPublished.create(
        producer="test",
        id_parts=(version,),
        model_version=version,
        artifact_uri=f"{version}/model.onnx",
        artifact_sha256="0" * 64,
        classes=list(_Fixed.classes),
        temperature=temperature,
    )


def test_the_models_calibration_map_gates_auto_accept() -> None:
    from labeltrail.folds.scorer import ScorerFold
    from labeltrail.quality.calibration import temper

    fold = ScorerFold(load=lambda path, sha: _Fixed(), threshold=0.1, auto_accept_threshold=0.9)
    fold.apply(_fixed_model("m-raw", None), POS)
    (raw,) = fold.apply(_comment("c-1", "x"), POS)
    assert isinstance(raw, CommentScored)
    # No map: the raw top probability (0.93) gates, as before, and nothing is recorded.
    assert raw.route == "auto_accept" and raw.temperature is None and raw.confidence is None

    fold.apply(_fixed_model("m-cal", 2.0), POS)
    (cal,) = fold.apply(_comment("c-2", "x"), POS)
    assert isinstance(cal, CommentScored)
    calibrated = max(temper([float(x) for x in _Fixed().predict_proba(["x"])[0]], 2.0))
    assert cal.temperature == 2.0 and cal.confidence == pytest.approx(calibrated, abs=1e-6)
    assert cal.confidence is not None and cal.confidence < 0.9
    assert cal.route == "none"  # the calibrated value is below the threshold the raw one passes
    assert cal.probabilities == raw.probabilities  # the scores themselves stay the model's
    assert cal.margin == raw.margin
