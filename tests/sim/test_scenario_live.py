"""The article's day-30 loop on the stage services, on the real broker and ClickHouse (chdb).

Every registered stage runs as a service (``StageRunner``, as ``labeltrail up`` and the demo run
them); the simulation only posts, votes, answers as an expert and makes the team's exports and
relabel decision. The outcome is the in-memory run's (``test_scenario.py``): v2, trained by the
trainer service on the export after the experts' relabel, recalls the blind-spot slice that v1,
trained on day 0's crowd labels, misses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labeltrail.config import Settings
from labeltrail.events.models import ModelPublished
from labeltrail.sim import PlatformConfig
from labeltrail.sim.platform import CODED
from labeltrail.stages import STAGES
from tests.learning.fixtures import require_model_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORLD = PlatformConfig.day30(1_000, 250)
"""The in-memory test's world (``test_scenario.py``)."""
CROWD_SHARE = 0.5
"""The multi-source run's labeling budget: half the non-gold pool gets no human label."""
TOLERANCE = 0.15
"""Coded-slice recall, live against in memory: two of the slice's 14 gold items."""


def test_the_day30_loop_runs_on_the_services(pipeline_settings: Settings, tmp_path: Path) -> None:
    require_model_stack()
    from labeltrail.sim.scenario import Day30Config, run_day30
    from labeltrail.sim.scenario_live import run_day30_live

    config = Day30Config(platform=WORLD, epochs=8)
    result = run_day30_live(
        pipeline_settings,
        config,
        models_dir=tmp_path / "models",
        exports_dir=tmp_path / "exports",
        timeout=300.0,
        progress=print,
    )
    print(
        f"day 30 live in {result.seconds:.0f}s {result.phases}: coded recall "
        f"{result.recall()[0]:.2f} -> {result.recall()[1]:.2f}; exports "
        f"{[e.row_count for e in result.exports]}; routes {result.routes}; v1 scored "
        f"{result.v1_scored}, its tasks {result.v1_tasks}; requests {result.expert_requests}; "
        f"feedback {result.feedback}; "
        f"gold accuracy {result.v1.metrics['gold.all.accuracy']:.3f} -> "
        f"{result.v2.metrics['gold.all.accuracy']:.3f}"
    )
    # Every registered stage ran as a service; the models are the trainer's, from the exports.
    assert set(STAGES) <= set(result.stage_stats)
    assert result.v1.export_id == result.exports[0].export_id
    assert isinstance(result.v2, ModelPublished), result.v2
    assert result.v2.export_id == result.exports[1].export_id
    assert result.exports[1].row_count > result.exports[0].row_count
    # v1 learned from the crowd alone; the slice reached the experts before v2's export: by the
    # questions stage's needs-context majority, and what it left by the team's relabel of the
    # slice the crowd is blind on...
    assert result.flagged == [CODED]
    # ... found by the iaa stage: high agreement, gold accuracy far below the other slices.
    assert {a.slice for a in result.blind_spot_alerts} == {CODED}
    assert all(
        (a.agreement or 0) > 0.8 and (a.gold_accuracy or 0) < 0.2 for a in result.blind_spot_alerts
    )
    assert set(result.routes[0]) == {"consensus"}
    assert result.routes[1].get("adjudication", 0) > result.routes[1].get("consensus", 0)
    assert result.expert_requests.get("questions", 0) > 0
    # Production feedback came in through the feedback ingest parser; the moderators'
    # overrides of wrong coded labels opened expert reviews at the feedback stage.
    assert result.feedback.get("moderator_override", 0) > 0
    assert result.expert_requests.get("feedback", 0) == result.feedback["moderator_override"]
    # The article's outcome, as the in-memory run asserts it.
    before, after = result.recall()
    assert result.v1.metrics[f"gold.{CODED}.n"] >= 8
    assert after - before >= 0.3, (before, after)
    assert after >= 0.6
    for name in ("benign", "explicit"):
        assert (
            result.v2.metrics[f"gold.{name}.accuracy"]
            >= result.v1.metrics[f"gold.{name}.accuracy"] - 0.05
        )
    # The scorer service scored every comment it held with v1, the gold set exactly as the
    # trainer evaluated v1 (the same artifact on the same texts).
    assert result.v1_scored == WORLD.n_comments + 10  # and the 10 thread-context posts
    for name, metrics in result.v1_gold.items():
        assert metrics.n == result.v1.metrics[f"gold.{name}.n"]
        assert metrics.accuracy == pytest.approx(result.v1.metrics[f"gold.{name}.accuracy"])
        for cls, recall in metrics.recall.items():
            assert recall == pytest.approx(result.v1.metrics[f"gold.{name}.recall.{cls}"])
    # Within the stated tolerance of the in-memory run of the same world (docs/learning.md).
    memory = run_day30(config, models_dir=tmp_path / "memory")
    assert memory.flagged == result.flagged
    print(
        f"in memory: train rows {memory.train_sizes} (live {result.train_rows}); v1 metrics "
        f"differ on {[k for k, v in memory.v1.metrics.items() if result.v1.metrics.get(k) != v]}"
    )
    for live, reference in zip(result.recall(), memory.recall(), strict=True):
        assert abs(live - reference) <= TOLERANCE, (result.recall(), memory.recall())


def test_the_multisource_v2_trains_on_the_weak_stages_labels(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    """``weak=True`` (``day30 --live --weak``): v2 is trained on the weak labels' export with
    ``trainer.weak_labels = fill``; the weak stage's labels reach the trainer and fill the
    comments no human label covers, and its metrics count them. Whether that helps is
    measured, not asserted (docs/learning.md, "Weak labels in training")."""
    require_model_stack()
    from labeltrail.sim.scenario import Day30Config
    from labeltrail.sim.scenario_live import run_day30_live

    result = run_day30_live(
        pipeline_settings,
        Day30Config(platform=WORLD, epochs=8),
        models_dir=tmp_path / "models",
        exports_dir=tmp_path / "exports",
        timeout=300.0,
        weak=True,
        crowd_share=CROWD_SHARE,
        progress=print,
    )
    v1, v2 = result.v1.metrics, result.v2.metrics
    print(
        f"day 30 live, multi-source v2, in {result.seconds:.0f}s: coded recall "
        f"{result.recall()[0]:.2f} -> {result.recall()[1]:.2f}; rows by source "
        f"{result.train_sources}; weak labels {result.weak_labels}; gold accuracy "
        + ", ".join(
            f"{s} {v1[f'gold.{s}.accuracy']:.3f} -> {v2.get(f'gold.{s}.accuracy', 0.0):.3f}"
            for s in ("all", "benign", "explicit", CODED)
        )
        + f" ({type(result.v2).__name__})"
    )
    assert result.weak and result.weak_labels > 0
    assert result.exports[1].aggregator_params.get("run") == "weak"
    # v1's export names no weak labels: it trains on human labels only, and says so.
    assert result.train_sources[0]["weak"] == 0
    assert result.train_sources[0]["human"] == result.train_rows[0]
    # v2: every human row of its export, and weak rows for comments no human label covers.
    assert result.train_sources[1]["human"] == result.train_rows[1]
    assert 0 < result.train_sources[1]["weak"] <= result.unanswered
