"""The stage registry: how each pipeline stage's fold is built from the settings.

One place that services, the demo, the simulations, the benchmarks and the tests all use, so
a stage is configured the same way wherever it runs. It sits above the adapters because two
stages are handed their model runtimes here: the scorer its onnxruntime loader, the trainer
its torch trainer (imported only when the trainer is built: the ``train`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from labeltrail.config import Settings
from labeltrail.folds.active import ActiveConfig, ActiveFold
from labeltrail.folds.base import Fold
from labeltrail.folds.calibration import CalibrationConfig
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.folds.feedback import FeedbackFold
from labeltrail.folds.iaa import IaaConfig, IaaFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.lf import LfFold
from labeltrail.folds.questions import QuestionsFold
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from labeltrail.folds.scorer import ScorerFold
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from labeltrail.folds.trainer import RetrainFold
from labeltrail.folds.weak import WeakConfig, WeakFold
from labeltrail.kafka.fused import FusedFold, Member
from labeltrail.kafka.keys import KafkaKeyStore
from labeltrail.learning.lf_registry import ENTRY_POINT_GROUP, discover
from labeltrail.learning.retrain import RetrainConfig

__all__ = [
    "FUSED",
    "STAGES",
    "Stage",
    "fused",
    "make",
    "make_active",
    "make_consensus",
    "make_feedback",
    "make_iaa",
    "make_labels",
    "make_lf",
    "make_questions",
    "make_reliability",
    "make_scorer",
    "make_tasking",
    "make_trainer",
    "make_weak",
    "tasking_config",
]


def tasking_config(settings: Settings, **overrides: Any) -> TaskingConfig:
    """The tasking stage's configuration from the settings (``overrides`` win): its section,
    model drafts included, and the shared low-margin threshold."""
    fields: dict[str, Any] = {
        **settings.tasking.model_dump(),
        "low_margin_threshold": settings.low_margin_threshold,
    }
    fields.update(overrides)
    return TaskingConfig(**fields)


def make_tasking(settings: Settings) -> TaskingFold:
    return TaskingFold(tasking_config(settings))


def make_consensus(settings: Settings) -> ConsensusFold:
    cal = settings.calibration
    return ConsensusFold(
        ConsensusConfig(
            agreement_threshold=settings.agreement_threshold,
            method=settings.consensus_method,
            min_confidence=cal.min_confidence,
            calibrate=cal.enabled,
        )
    )


def make_labels(settings: Settings) -> LabelsFold:
    return LabelsFold(auto_accept_threshold=settings.labels.auto_accept_threshold)


def make_questions(settings: Settings) -> QuestionsFold:
    return QuestionsFold()


def make_feedback(settings: Settings) -> FeedbackFold:
    """The feedback stage: production feedback that contradicts a label opens an expert review."""
    return FeedbackFold()


def make_reliability(settings: Settings) -> ReliabilityFold:
    """The reliability stage: its section's refit and quality-control (suspension) knobs, and
    the calibration map it fits at each refit (section ``calibration``)."""
    cal = settings.calibration
    calibration = (
        CalibrationConfig(
            min_gold=cal.min_gold,
            method=cal.method,
            bins=cal.bins,
            include_verdicts=cal.include_verdicts,
        )
        if cal.enabled
        else None
    )
    return ReliabilityFold(
        ReliabilityConfig(**settings.reliability.model_dump()), calibration=calibration
    )


def make_iaa(settings: Settings) -> IaaFold:
    return IaaFold(
        IaaConfig(
            allowed_lateness=settings.iaa.allowed_lateness,
            close_on_drain=settings.iaa.close_on_drain,
        )
    )


def make_scorer(settings: Settings) -> ScorerFold:
    from labeltrail.ml.train_job import onnx_scorer

    learning = settings.learning
    return ScorerFold(
        load=partial(onnx_scorer, threads=learning.scorer_threads),
        models_dir=learning.models_dir,
        threshold=settings.low_margin_threshold,
        auto_accept_threshold=learning.auto_accept_threshold,
        keyring=KafkaKeyStore(settings),
    )


def make_lf(settings: Settings) -> LfFold:
    """The lf stage: the LFs of the entry points (group ``labeltrail.lfs``) and the settings'
    paths, run on each comment's opened text."""
    weak = settings.weak
    group = ENTRY_POINT_GROUP if weak.entry_points else None
    return LfFold(
        lfs=discover(weak.lf_paths, group=group),
        schema_version=weak.schema_version,
        keyring=KafkaKeyStore(settings),
    )


def make_weak(settings: Settings) -> WeakFold:
    """The weak stage: the joint label model, committing labels on route weak."""
    weak = settings.weak
    return WeakFold(
        WeakConfig(
            schema_version=weak.schema_version,
            refit_every=weak.refit_every,
            refit_on_drain=weak.refit_on_drain,
            model_min_confidence=weak.model_min_confidence,
        )
    )


def make_active(settings: Settings) -> ActiveFold:
    """The active learning service: its section, a task costing the crowd's cost per vote times
    the redundancy, text opened with the key store for the diversity sketches."""
    active, tasking = settings.active, settings.tasking
    return ActiveFold(
        ActiveConfig(
            **active.model_dump(),
            cost_per_task_usd=round(tasking.crowd_cost_usd * tasking.redundancy, 6),
        ),
        keyring=KafkaKeyStore(settings),
    )


def make_trainer(settings: Settings) -> RetrainFold:
    from labeltrail.ml.train_job import onnx_scorer, torch_trainer

    calibration = settings.calibration
    return RetrainFold(
        models_dir=settings.learning.models_dir,
        make_trainer=torch_trainer,
        load_scorer=onnx_scorer,
        config=RetrainConfig(**settings.trainer.model_dump()),
        gate_tolerance=settings.learning.gate_tolerance,
        calibration_min_gold=calibration.min_gold if calibration.enabled else None,
        calibration_bins=calibration.bins,
        keyring=KafkaKeyStore(settings),
    )


@dataclass(frozen=True)
class Stage:
    """One stage: its fold's factory and class, the topics it writes, and whether copies of it
    share a consumer group (its keyed inputs are co-partitioned; see
    :mod:`labeltrail.kafka.scaleout`). What it reads is its fold's ``inputs``; together they
    are the stage's ACLs on a secured cluster (``ops/kafka/acls.py``, docs/security.md)."""

    make: Callable[[Settings], Fold]
    fold: type[Fold]
    writes: tuple[str, ...]
    """Topic suffixes of its outputs (besides ``deadletter``, which every stage writes)."""
    scalable: bool = False
    opens_text: bool = False
    """It opens sealed comment text with the key store (its fold gets a ``keyring``,
    docs/erasure.md), so it also reads the key topic (``kafka.keys.KEY_TOPIC``)."""

    @property
    def reads(self) -> tuple[str, ...]:
        """Its input topic suffixes: the fold class's ``inputs``, without building the fold."""
        return tuple(self.fold.inputs)


STAGES: dict[str, Stage] = {
    "tasking": Stage(
        make_tasking, TaskingFold, ("tasks", "tasks.crowd", "tasks.expert"), scalable=True
    ),
    "consensus": Stage(make_consensus, ConsensusFold, ("consensus", "quality"), scalable=True),
    "labels": Stage(make_labels, LabelsFold, ("labels",), scalable=True),
    "questions": Stage(make_questions, QuestionsFold, ("questions", "consensus")),
    "reliability": Stage(make_reliability, ReliabilityFold, ("quality", "annotators.status")),
    "iaa": Stage(make_iaa, IaaFold, ("iaa",)),
    "feedback": Stage(make_feedback, FeedbackFold, ("consensus",), scalable=True),
    "scorer": Stage(make_scorer, ScorerFold, ("scores",), opens_text=True),
    "trainer": Stage(
        make_trainer, RetrainFold, ("exports", "models", "models.refused"), opens_text=True
    ),
    "active": Stage(make_active, ActiveFold, ("requests",), opens_text=True),
    "lf": Stage(make_lf, LfFold, ("weak.votes",), opens_text=True),
    "weak": Stage(make_weak, WeakFold, ("weak.labels",)),
}
"""Every pipeline stage a service runs, by name."""


def make(stage: str, settings: Settings) -> Fold:
    """The named stage's fold, built from ``settings``."""
    return STAGES[stage].make(settings)


FUSED: tuple[str, ...] = tuple(
    name for name in STAGES if name not in ("scorer", "trainer", "lf", "weak", "active")
)
"""The stages the fused process runs (``LABELTRAIL_FUSED``, docs/streaming.md), in the order a
record read by several of them is handed to each: every stage but the two that load models,
the lf stage (it loads LF code), the weak stage (its fits of the joint label model would
stall the fused loop) and the active learning service (a batch over the whole pool at a time;
tasking reads its requests from the log)."""


def fused(settings: Settings, names: Sequence[str] = FUSED) -> FusedFold:
    """The named stages as one fused fold (:mod:`labeltrail.kafka.fused`); the topics the other
    registered stages write are consumed from Kafka, never handed over in memory."""
    members = tuple(Member(STAGES[n].make(settings), STAGES[n].writes) for n in names)
    outside = frozenset(s for n, st in STAGES.items() if n not in names for s in st.writes)
    return FusedFold(members, outside)
