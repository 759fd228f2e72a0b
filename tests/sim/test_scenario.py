"""The article's day-30 outcome through the real pipeline folds, figures from the gold set."""

from __future__ import annotations

from pathlib import Path

from labeltrail.sim.platform import CODED
from tests.learning.fixtures import require_model_stack


def test_recall_on_the_blind_spot_rises_after_adjudicated_labels_train(tmp_path: Path) -> None:
    require_model_stack()
    from labeltrail.sim import PlatformConfig
    from labeltrail.sim.scenario import Day30Config, run_day30

    config = Day30Config(
        platform=PlatformConfig.day30(1_000, 250),
        epochs=8,
    )
    result = run_day30(config, models_dir=tmp_path)
    assert result.flagged == [CODED]
    assert result.relabel_requests > 0
    before, after = result.recall()
    assert result.before[CODED].n >= 8
    assert after - before >= 0.3, (before, after)
    assert after >= 0.6
    # The slice's labels changed route: crowd consensus before, expert adjudication after.
    assert set(result.routes["v1"]) == {"consensus"}
    assert result.routes["v2"].get("adjudication", 0) > result.routes["v2"].get("consensus", 0)
    # No other slice got worse, and the published events carry manifest and metrics.
    for name in ("benign", "explicit"):
        assert result.after[name].accuracy >= result.before[name].accuracy - 0.05
    assert (
        result.v2.export_id
        and result.v2.export_hash
        and result.v2.export_hash.startswith("sha256:")
    )
    assert result.v2.metrics[f"gold.{CODED}.recall.harassment"] == after
    assert (tmp_path / "day14-v2" / "model.onnx").is_file()
