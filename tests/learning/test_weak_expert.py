"""The experts' accuracy is learned outside the blind spot, not assumed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labeltrail.learning.multisource import MultiSourceLabelModel, Observations
from labeltrail.sim import PlatformConfig
from tests.learning.fixtures import require_model_stack


def _world(expert_accuracy: float, seed: int = 7) -> tuple[Observations, list[str], np.ndarray]:
    """A crowd right 90% everywhere but the ``coded`` slice, where it says class 0."""
    rng = np.random.default_rng(seed)
    n = 2000
    blind = np.arange(n) < 200
    y = np.where(blind, 2, rng.choice(3, n, p=[0.7, 0.2, 0.1]))
    items, who, said = [], [], []
    for i in range(n):
        for a in rng.choice(10, size=3, replace=False):
            items.append(i)
            who.append(f"c{a}")
            said.append(0 if blind[i] else int(y[i]) if rng.random() < 0.9 else 1)
        if blind[i] or rng.random() < 0.3:
            items.append(i)
            who.append(f"e{i % 3}")
            right = rng.random() < expert_accuracy
            said.append(int(y[i]) if right else int((y[i] + 1 + rng.integers(2)) % 3))
    pools = {f"c{a}": "crowd" for a in range(10)} | {f"e{e}": "expert" for e in range(3)}
    obs = Observations.build(n, votes=(items, who, said), annotator_pools=pools)
    return obs, np.where(blind, "coded", "rest").tolist(), y


def test_expert_accuracy_is_learned_where_the_crowd_is_not_blind() -> None:
    from labeltrail.sim.scenario_weak import expert_accuracy_outside

    for true in (0.8, 0.95):
        obs, slices, y = _world(true)
        learned = expert_accuracy_outside(obs, slices, ["coded"], 3)
        assert learned is not None and abs(learned - true) < 0.04, (true, learned)
        # Held fixed on the blind slice, the learned value recovers it as well as the one
        # expert vote per item allows (agreement alone sides with the crowd: below 0.5).
        split = obs.split_by_slice(slices, ["coded"], only_groups=["crowd"])
        model = MultiSourceLabelModel(3, known_accuracy={"expert": learned}).fit(split)
        blind = np.array(slices) == "coded"
        assert np.mean(model.predict()[blind] == y[blind]) > true - 0.05
    assert expert_accuracy_outside(obs, slices, ["coded", "rest"], 3) is None


def test_day30_with_the_learned_expert_accuracy(tmp_path: Path) -> None:
    require_model_stack()
    from labeltrail.sim.scenario import Day30Config, run_day30

    config = Day30Config(
        platform=PlatformConfig.day30(1_000, 250),
        epochs=8,
        soft_labels="multisource",
    )
    result = run_day30(config, models_dir=tmp_path)
    before, after = result.recall()
    assert after - before >= 0.3 and after >= 0.6, (before, after)
    assert result.after["all"].accuracy >= result.before["all"].accuracy
    assert set(result.routes["v2"]) == {"weak"}
