"""The trainer settings come from the environment; the version covers what shapes a model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from labeltrail.config import Settings
from labeltrail.events.base import Event, LogPosition
from labeltrail.folds.base import Rejected
from labeltrail.folds.iaa import IaaConfig, IaaFold
from labeltrail.folds.lf import LfFold
from labeltrail.folds.replay import Replay
from labeltrail.folds.tasking import TaskingFold
from labeltrail.folds.trainer import RetrainFold
from labeltrail.folds.weak import WeakConfig, WeakFold
from labeltrail.learning.lf_registry import discover
from labeltrail.learning.retrain import RetrainConfig, model_version_for
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer
from labeltrail.stages import STAGES, make, tasking_config
from tests.folds.helpers import suffix_topic


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELTRAIL_TRAINER_EVERY_LABELS", "647")
    monkeypatch.setenv("LABELTRAIL_TRAINER_EPOCHS", "8")
    monkeypatch.setenv("LABELTRAIL_LEARNING_MODELS_DIR", "/tmp/lt-models")
    fold = make("trainer", Settings())
    assert isinstance(fold, RetrainFold)
    config = fold.config
    assert config.every_labels == 647 and config.epochs == 8
    assert config.n_buckets == RetrainConfig().n_buckets
    assert str(fold.models_dir) == "/tmp/lt-models"
    monkeypatch.setenv("LABELTRAIL_TRAINER_EVERY_LABELS", "-1")
    with pytest.raises(ValueError):
        Settings()


def test_the_version_changes_with_the_model_not_with_the_schedule() -> None:
    base = RetrainConfig()
    version = model_version_for("export-1", base)
    assert version == model_version_for("export-1", replace(base, every_labels=10, threads=2))
    assert version != model_version_for("export-2", base)
    assert version != model_version_for("export-1", replace(base, epochs=base.epochs + 1))
    assert version != model_version_for("export-1", replace(base, seed=1))
    # Weak labels off (the default) keeps the versions of models from before the setting.
    assert version == model_version_for("export-1", replace(base, weak_weight=0.9))
    assert version != model_version_for("export-1", replace(base, weak_labels="fill"))
    with pytest.raises(ValueError, match="weak_labels"):
        replace(base, weak_labels="all")


class _Recording:
    """A fold that records the topic of each of its outputs (what its ACLs must allow)."""

    def __init__(self, fold: Any, wrote: set[str]) -> None:
        self.fold, self.wrote = fold, wrote
        self.name, self.inputs = fold.name, fold.inputs

    def _record(self, outputs: list[Any]) -> list[Any]:
        self.wrote.update(suffix_topic(o) for o in outputs if not isinstance(o, Rejected))
        return outputs

    def apply(self, event: Event, position: LogPosition) -> list[Any]:
        return self._record(self.fold.apply(event, position))

    def drain(self) -> list[Any]:
        drain = getattr(self.fold, "drain", None)
        return self._record(drain() if drain is not None else [])


def test_each_stage_writes_only_the_topics_its_registry_entry_declares() -> None:
    """STAGES[...].writes and the fold's inputs are the stages' ACLs (ops/kafka/acls.py): a
    stage writing elsewhere would be refused on a secured cluster. The demo's world, in
    memory, through the real folds (the scorer and trainer are simulated there)."""
    settings = Settings()
    refit = settings.reliability.model_copy(update={"refit_on_drain": True})
    replay_settings = settings.model_copy(update={"reliability": refit})
    platform = Platform(PlatformConfig.sized(200, seed=3, days=14))
    wrote: dict[str, set[str]] = {name: set() for name in STAGES}
    folds = {
        "tasking": TaskingFold(
            tasking_config(
                settings,
                min_crowd_pool=len(platform.crowd_ids),
                gold_set_size=platform.config.n_gold,
            )
        ),
        "consensus": make("consensus", settings),
        "labels": make("labels", settings),
        "reliability": make("reliability", replay_settings),
        "iaa": IaaFold(IaaConfig(close_on_drain=True)),
        "lf": LfFold(lfs=discover()),
        "weak": WeakFold(WeakConfig(refit_on_drain=True)),
    }
    for name, fold in folds.items():
        assert isinstance(fold, STAGES[name].fold) and fold.inputs == STAGES[name].reads
    recorded = [_Recording(fold, wrote[name]) for name, fold in folds.items()]
    replay = Replay(
        [SimulatedScorer(platform), recorded[0], SimulatedAnnotators(platform), *recorded[1:]],
        suffix_topic,
    )
    replay.append(platform.inputs())
    replay.run()
    for name in folds:
        assert wrote[name], name
        assert wrote[name] <= set(STAGES[name].writes), name
    assert wrote["tasking"] >= {"tasks", "tasks.crowd", "tasks.expert"}


def test_the_stages_that_open_comment_text_declare_it() -> None:
    """``Stage.opens_text`` is what grants a stage READ on the key topic (ops/kafka/acls.py):
    it holds exactly for the stages whose fold is built with the key store."""
    settings = Settings()
    for name, stage in STAGES.items():
        fold = stage.make(settings)
        assert (getattr(fold, "keyring", None) is not None) == stage.opens_text, name


def test_every_service_labeltrail_up_starts_has_a_metrics_port_of_its_own() -> None:
    """``labeltrail up`` serves each stage's metrics on the base port plus its offset: two on
    one port would stop the second at start (``MetricsPortInUseError``) and supervisord would
    restart it for ever."""
    from labeltrail.kafka.metrics import metrics_port
    from labeltrail.supervise.status import METRICS_BLOCK

    settings = Settings(metrics_port=9400)
    ports = {name: metrics_port(settings, name) for name in (*STAGES, "projector")}
    assert len(set(ports.values())) == len(ports), ports
    assert all(p is not None and 9400 <= p < 9400 + METRICS_BLOCK for p in ports.values())
