"""The trainer fold over the day-30 world's log: when it trains, what it publishes, restarts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    AdjudicationRecorded,
    CommentPosted,
    ExportCreated,
    LabelCommitted,
    ModelPublished,
    ModelRefused,
)
from labeltrail.folds.base import Rejected
from labeltrail.folds.export_rows import AGGREGATOR, AGGREGATOR_PARAMS, ExportFold, content_hash
from labeltrail.folds.replay import Replay
from labeltrail.folds.trainer import RetrainFold
from labeltrail.learning.retrain import (
    ClassifierTrainer,
    ProbabilityScorer,
    RetrainConfig,
    model_version_for,
)
from labeltrail.sim import PlatformConfig
from labeltrail.sim.platform import CODED
from tests.learning.fixtures import TinyModel, require_model_stack

WORLD = PlatformConfig.day30(1_000, 250)


@dataclass
class Factories:
    """The real torch trainer and onnxruntime loader, counting how often training runs."""

    trained: int = 0
    scorer_path: Path | None = None

    def make_trainer(self, cfg: RetrainConfig) -> ClassifierTrainer:
        from labeltrail.ml.train_job import torch_trainer

        self.trained += 1
        return torch_trainer(cfg)

    def load_scorer(self, path: Path, sha256: str) -> ProbabilityScorer:
        from labeltrail.ml.scoring import OnnxTextScorer

        if self.scorer_path is not None:  # a different artifact: parity must catch it
            return OnnxTextScorer(self.scorer_path)
        return OnnxTextScorer(path, expected_sha256=sha256)


@dataclass(frozen=True)
class World:
    day0: list[Event]
    later: list[Event]
    day0_labels: int


@pytest.fixture(scope="module")
def world() -> World:
    require_model_stack()
    from labeltrail.sim.scenario import Day30Config, day30_log

    log = day30_log(Day30Config(platform=WORLD))
    assert log.flagged == [CODED]
    n = sum(isinstance(e, LabelCommitted) for e in log.day0)
    return World(log.day0, log.later, n)


def _topic(event: Event) -> str:
    from labeltrail.sim.scenario import topic_of

    return topic_of(event)


CONFIG = RetrainConfig(min_rows=50, epochs=8)


def _fold(tmp_path: Path, factories: Factories, **overrides: Any) -> RetrainFold:
    config = replace(CONFIG, **overrides)
    return RetrainFold(
        models_dir=tmp_path,
        make_trainer=factories.make_trainer,
        load_scorer=factories.load_scorer,
        config=config,
    )


def export_of(log: dict[str, list[Event]], as_of: dt.datetime) -> ExportCreated:
    """An export of the whole in-memory log, as ``labeltrail export create`` would make it."""
    rows = ExportFold("v3", as_of)
    positions: list[LogPosition] = []
    for topic in ("labels", "votes", "adjudications"):
        events = log.get(topic, [])
        for offset, event in enumerate(events):
            rows.apply(event, LogPosition(topic=topic, partition=0, offset=offset))
        positions.append(LogPosition(topic=topic, partition=0, offset=len(events)))
    digest = content_hash(rows.rows())
    export_id = derive_id("export", "test", [f"{p.topic}:{p.offset}" for p in positions])
    return ExportCreated.create(
        producer="export",
        id_parts=(export_id,),
        export_id=export_id,
        schema_version="v3",
        as_of=as_of,
        log_positions=positions,
        aggregator=AGGREGATOR,
        aggregator_params=AGGREGATOR_PARAMS,
        content_hash=digest,
        row_count=len(rows.rows()),
        uri="",
    )


def _rebuilt_hash(log: dict[str, list[Event]], export: ExportCreated) -> str:
    """What ``labeltrail export verify`` computes: ExportFold over the log up to positions."""
    rows = ExportFold(export.schema_version, export.as_of)
    for p in export.log_positions:
        for offset, event in enumerate(log.get(p.topic, [])[: p.offset]):
            rows.apply(event, LogPosition(topic=p.topic, partition=0, offset=offset))
    return content_hash(rows.rows())


def _of(log: dict[str, list[Event]], topic: str, kind: type[Any]) -> list[Any]:
    return [e for e in log.get(topic, []) if isinstance(e, kind)]


def test_every_n_labels_the_trainer_exports_what_it_read_and_publishes_a_model(
    world: World, tmp_path: Path
) -> None:
    every = world.day0_labels // 2 - 1
    factories = Factories()
    fold = _fold(tmp_path, factories, every_labels=every)
    replay = Replay([fold], _topic)
    replay.append(world.day0)
    replay.run()
    exports = _of(replay.log, "exports", ExportCreated)
    models = _of(replay.log, "models", ModelPublished)
    assert len(exports) == 2 and len(models) == 2 and factories.trained == 2, replay.rejected
    labels = replay.log["labels"]
    for export, model in zip(exports, models, strict=True):
        # The fold's own export is what `labeltrail export verify` rebuilds from the log.
        assert export.content_hash == _rebuilt_hash(replay.log, export)
        assert model.export_id == export.export_id and model.export_hash == export.content_hash
        assert model.model_version == model_version_for(export.export_id, fold.config)
        assert model.envelope.causation_id == export.event_id
        assert model.metrics["parity.max_abs_diff"] <= 1e-5
        assert model.metrics[f"gold.{CODED}.n"] >= 8
        assert (tmp_path / model.artifact_uri).is_file()
        assert model.temperature is None  # calibration off by default: no auto-accept map
    cuts = [p.offset for e in exports for p in e.log_positions if p.topic == "labels"]
    assert cuts == [every, 2 * every] and len(labels) > 2 * every
    assert models[0].metrics["train.rows"] < models[1].metrics["train.rows"]


def test_day30_through_the_trainer_and_a_restart_that_does_not_retrain(
    world: World, tmp_path: Path
) -> None:
    factories = Factories()
    fold = _fold(tmp_path, factories, every_labels=0)
    replay = Replay([fold], _topic)
    replay.append(world.day0)
    replay.run()
    assert _of(replay.log, "models", ModelPublished) == [], "no export, no training"
    replay.append([export_of(replay.log, dt.datetime(2100, 1, 1, tzinfo=dt.UTC))])
    replay.run()
    replay.append(world.later)
    replay.append([export_of(replay.log, dt.datetime(2100, 1, 1, tzinfo=dt.UTC))])
    replay.run()
    models = _of(replay.log, "models", ModelPublished)
    exports = _of(replay.log, "exports", ExportCreated)
    assert [m.export_id for m in models] == [e.export_id for e in exports], replay.rejected
    v1, v2 = models
    assert v2.metrics["train.rows"] > v1.metrics["train.rows"]
    key = f"gold.{CODED}.recall.harassment"
    assert v2.metrics[key] - v1.metrics[key] >= 0.3, (v1.metrics[key], v2.metrics[key])

    # Restart: a new fold replays the same log and re-derives both records without training.
    again = Factories()
    fresh = _fold(tmp_path, again, every_labels=0)
    restart = Replay([fresh], _topic)
    restart.append([e for topic in replay.log.values() for e in topic if _topic(e) != "models"])
    restart.run()
    replayed = _of(restart.log, "models", ModelPublished)
    assert [m.event_id for m in replayed] == [m.event_id for m in models]
    assert [m.artifact_sha256 for m in replayed] == [m.artifact_sha256 for m in models]
    assert again.trained == 0 and factories.trained == 2


def test_the_trainer_fits_the_auto_accept_map_on_the_models_gold_scores(
    world: World, tmp_path: Path
) -> None:
    fold = _fold(tmp_path, Factories(), every_labels=world.day0_labels - 1)
    fold.calibration_min_gold, fold.calibration_bins = 10, 5
    replay = Replay([fold], _topic)
    replay.append(world.day0)
    replay.run()
    (model,) = _of(replay.log, "models", ModelPublished)
    n_gold = model.metrics["gold.all.n"]
    assert n_gold >= 10 and model.metrics["calibration.n_gold"] == n_gold
    assert model.temperature is not None and model.temperature > 0
    m = model.metrics
    assert m["calibration.ece_after"] <= m["calibration.ece_before"] + 1e-9
    assert sum(m[f"calibration.after.bin{k:02d}.n"] for k in range(5)) == n_gold


def test_a_model_that_fails_parity_is_rejected_not_published(
    world: World, tmp_path: Path, tiny_model: TinyModel
) -> None:
    factories = Factories(scorer_path=tiny_model.path)
    fold = _fold(tmp_path, factories, every_labels=world.day0_labels)
    replay = Replay([fold], _topic)
    replay.append(world.day0)
    replay.run()
    assert _of(replay.log, "models", ModelPublished) == []
    reasons = [r.reason for _, r, _ in replay.rejected]
    assert len(reasons) == 1 and "differ by" in reasons[0]
    assert not list(tmp_path.glob("*/model.onnx"))


def test_too_few_rows_or_labels_that_never_arrive_are_rejected(
    world: World, tmp_path: Path
) -> None:
    factories = Factories()
    fold = _fold(tmp_path, factories, every_labels=0, min_rows=100_000)
    replay = Replay([fold], _topic)
    replay.append(world.day0)
    replay.append([export_of(replay.log, dt.datetime(2100, 1, 1, tzinfo=dt.UTC))])
    replay.run()
    assert _of(replay.log, "models", ModelPublished) == []
    assert any("fewer than 100000" in r.reason for _, r, _ in replay.rejected)

    waiting = _fold(tmp_path, factories, every_labels=0)
    beyond = export_of(replay.log, dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
    moved = beyond.model_copy(
        update={
            "log_positions": [
                p.model_copy(update={"offset": p.offset + 5}) for p in beyond.log_positions
            ]
        }
    )
    assert waiting.apply(moved, LogPosition(topic="exports", partition=0, offset=0)) == []
    assert [r.reason for r in waiting.drain() if isinstance(r, Rejected)] == [
        f"export {moved.export_id}: its labels or comment texts never arrived"
    ]
    assert factories.trained == 0


class Feed:
    """Applies events to one fold by hand, in the order given, with per-topic offsets."""

    def __init__(self, fold: RetrainFold) -> None:
        self.fold = fold
        self.log: dict[str, list[Event]] = {}
        self.outputs: list[object] = []

    def __call__(self, event: Event) -> None:
        topic = _topic(event)
        offsets = self.log.setdefault(topic, [])
        position = LogPosition(topic=topic, partition=0, offset=len(offsets))
        self.outputs.extend(self.fold.apply(event, position))
        offsets.append(event)


FAR = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def test_an_export_waits_for_the_texts_of_its_comments(world: World, tmp_path: Path) -> None:
    factories = Factories()
    feed = Feed(_fold(tmp_path, factories, every_labels=0))
    labeled = next(e.comment_id for e in world.day0 if isinstance(e, LabelCommitted))
    comments = sorted(
        (e for e in world.day0 if isinstance(e, CommentPosted)),
        key=lambda c: c.comment_id == labeled,
    )
    for event in world.day0:
        if not isinstance(event, CommentPosted):
            feed(event)
    feed(export_of(feed.log, FAR))
    for event in comments[:-1]:
        feed(event)
    assert feed.outputs == [] and factories.trained == 0, "trained before every text was read"
    feed(comments[-1])
    assert [type(o) for o in feed.outputs] == [ModelPublished] and factories.trained == 1


def test_gold_labels_never_train_even_when_the_export_cuts_before_their_verdicts(
    world: World, tmp_path: Path
) -> None:
    feed = Feed(_fold(tmp_path, Factories(), every_labels=0))
    verdicts = [e for e in world.day0 if isinstance(e, AdjudicationRecorded)]
    for event in world.day0:
        if not isinstance(event, AdjudicationRecorded):
            feed(event)
    export = export_of(feed.log, FAR)
    assert {p.topic: p.offset for p in export.log_positions}["adjudications"] == 0
    feed(export)
    assert feed.outputs == [], "it cannot tell gold labels apart before their verdicts"
    for event in verdicts:
        feed(event)
    [model] = feed.outputs
    assert isinstance(model, ModelPublished)
    gold = {a.comment_id for a in verdicts if a.request_id.startswith("gold:")}
    labels = [e for e in world.day0 if isinstance(e, LabelCommitted) and not e.machine_made]
    labeled = {e.comment_id for e in labels}
    assert model.metrics["gold.all.n"] == len(gold & labeled) > 0
    assert model.metrics["train.rows"] == len(labeled - gold)


def test_the_trainer_refuses_a_model_worse_on_gold_than_the_live_one_through_the_gate(
    world: World, tmp_path: Path
) -> None:
    """An export cut at day 0 (before the experts' relabel) trains a model blind on the coded
    slice; with the full log's model live, the gate refuses it, and a restart re-derives the
    refusal without training."""
    factories = Factories()
    fold = _fold(tmp_path, factories, every_labels=0)
    replay = Replay([fold], _topic)
    replay.append(world.day0)
    replay.run()
    day0 = export_of(replay.log, FAR)
    replay.append(world.later)
    replay.append([export_of(replay.log, FAR)])
    replay.run()
    [live] = _of(replay.log, "models", ModelPublished)
    assert live.baseline_version is None and live.schema_version == "v3"
    assert fold.live() == live

    replay.append([day0])
    replay.run()
    assert _of(replay.log, "models", ModelPublished) == [live], "nothing published"
    [refused] = _of(replay.log, "models.refused", ModelRefused)
    assert refused.baseline_version == live.model_version and CODED in refused.worse_slices
    assert (
        refused.metrics[f"baseline.{CODED}.accuracy"] - refused.metrics[f"gold.{CODED}.accuracy"]
        > refused.tolerance
    )
    assert refused.envelope.causation_id == day0.event_id and factories.trained == 2
    # The refused artifact stays, with the manifest `labeltrail model publish --force` reads.
    folder = tmp_path / refused.model_version
    assert (folder / "model.onnx").is_file() and (folder / "refused.json").is_file()
    assert (
        f'"model_version": "{refused.model_version}"'
        in (folder / "model.manifest.json").read_text()
    )
    assert fold.live() == live

    again = Factories()
    restart = Replay([_fold(tmp_path, again, every_labels=0)], _topic)
    restart.append(
        [
            e
            for t, events in replay.log.items()
            for e in events
            if t not in ("models", "models.refused")
        ]
    )
    restart.run()
    assert [e.event_id for e in _of(restart.log, "models.refused", ModelRefused)] == [
        refused.event_id
    ]
    assert again.trained == 0


def _weak_label(comment_id: str, label: str, at: dt.datetime) -> LabelCommitted:
    from labeltrail.ontology.schema import MODERATION_CLASSES

    dist = [0.8 if c == label else 0.05 for c in MODERATION_CLASSES]
    return LabelCommitted.create(
        producer="weak",
        occurred_at=at,
        id_parts=(comment_id, "weak"),
        label_id=derive_id("weak-label", comment_id),
        comment_id=comment_id,
        schema_version="v3",
        label=label,
        classes=list(MODERATION_CLASSES),
        distribution=dist,
        confidence=0.8,
        route="weak",
        method="multisource-em",
        vote_ids=[],
        annotator_ids=[],
        machine_made=True,
        run_id="weak",
    )


def test_weak_labels_fill_the_uncovered_comments_of_an_export_that_names_them(
    world: World, tmp_path: Path
) -> None:
    """``weak_labels = fill``: the weak labels before the export's ``weak.labels`` positions
    train the comments no human label covers, at ``weak_weight``; the model's metrics and its
    artifact's metadata count the weak rows; ``off`` (the default) trains as before."""
    from labeltrail.ml.scoring import OnnxTextScorer

    comments = [e for e in world.day0 if isinstance(e, CommentPosted)]
    labels = [e for e in world.day0 if isinstance(e, LabelCommitted) and not e.machine_made]
    gold = {
        e.comment_id
        for e in world.day0
        if isinstance(e, AdjudicationRecorded) and e.request_id.startswith("gold:")
    }
    human = {e.comment_id for e in labels} - gold
    at = max(e.envelope.occurred_at for e in world.day0)
    # A weak label for every comment: the human-labeled and gold ones must not take it.
    weak = [_weak_label(c.comment_id, "mild", at) for c in comments]
    uncovered = {c.comment_id for c in comments} - human - gold
    assert uncovered and all(_topic(w) == "weak.labels" for w in weak)

    models: dict[str, ModelPublished] = {}
    for mode in ("off", "fill"):
        feed = Feed(_fold(tmp_path / mode, Factories(), every_labels=0, weak_labels=mode))
        for event in [*world.day0, *weak]:
            feed(event)
        export = export_of(feed.log, FAR)
        named = LogPosition(topic="weak.labels", partition=0, offset=len(weak))
        feed(export.model_copy(update={"log_positions": [*export.log_positions, named]}))
        [model] = feed.outputs
        assert isinstance(model, ModelPublished)
        models[mode] = model
    off, fill = models["off"], models["fill"]
    assert off.metrics["train.rows"] == len(human) and "train.rows.weak" not in off.metrics
    assert fill.metrics["train.rows.human"] == len(human)
    assert fill.metrics["train.rows.weak"] == len(uncovered)
    assert fill.metrics["train.rows"] == len(human) + len(uncovered)
    assert fill.metrics["train.weight"] == pytest.approx(
        off.metrics["train.weight"] + 0.5 * 0.8 * len(uncovered)
    )
    meta = OnnxTextScorer(tmp_path / "fill" / fill.model_version / "model.onnx").metadata
    assert meta["rows_weak"] == len(uncovered) and meta["rows_human"] == len(human)
    assert meta["weak_labels"] == "fill" and meta["weak_weight"] == 0.5
