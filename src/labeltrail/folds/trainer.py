"""The trainer stage as a fold: committed labels and exports in; exports and models out.

It trains on every ``ExportCreated`` (the CLI's, or its own every ``every_labels`` labels, made
with :class:`~labeltrail.folds.export_rows.ExportFold`'s rows and hash), once it has read every
position the export names: on the labels before them, evaluated on the gold set before them,
which is never trained on. With ``weak_labels = fill`` it also reads the weak stage's labels
(``weak.labels``) and fills the comments no human label covers with those before the export's
``weak.labels`` positions (its own exports name them; ``export create --run weak`` does too),
weighted ``weak_weight`` (``learning.data.training_set_from_labels``). What is trained
depends only on the export and the model version is derived from it, so a restart re-derives
the same ``ModelPublished`` without training again. Every model goes through the publish gate
against the live one (the last on the models topic, or the last this fold published and has
not read back): worse on any gold slice by more than ``gate_tolerance``, it is a
``ModelRefused`` instead (``labeltrail.learning.gate``). When, on what, and why that is
restart-safe: ``docs/learning.md`` ("Retrain and publish").
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.crypto import Keyring, reveal
from labeltrail.events.models import (
    GOLD_REQUEST_PREFIX,
    AdjudicationRecorded,
    CommentPosted,
    ExportCreated,
    LabelCommitted,
    ModelPublished,
    ModelRefused,
    QuestionLabelCommitted,
    VoteCast,
)
from labeltrail.events.topics import WEAK_ROUTE
from labeltrail.exceptions import LearningError
from labeltrail.folds.base import Output, Rejected
from labeltrail.folds.export_rows import (
    ExportFold,
    content_hash,
    export_created,
    export_id_for,
    iso,
)
from labeltrail.learning.data import training_set_from_labels
from labeltrail.learning.gate import DEFAULT_TOLERANCE
from labeltrail.learning.metrics import GoldSet
from labeltrail.learning.publish import ScorerFactory
from labeltrail.learning.retrain import (
    RetrainConfig,
    TrainerFactory,
    model_version_for,
    train_and_publish,
)

__all__ = ["RetrainFold"]

log = logging.getLogger(__name__)

PRODUCER = "trainer"
EXPORT_TOPICS = ("labels", "votes", "adjudications", "questions")
WEAK_TOPIC = "weak.labels"
_FOREVER = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)

Partition = tuple[str, int]
_E = TypeVar("_E", LabelCommitted, AdjudicationRecorded)


def _before(position: LogPosition, cut: dict[Partition, int]) -> bool:
    return position.offset < cut.get((position.topic, position.partition), 0)


@dataclass
class RetrainFold:
    """Decides when to retrain, on what, and publishes the result (``docs/learning.md``,
    "Retrain and publish")."""

    models_dir: Path
    make_trainer: TrainerFactory
    load_scorer: ScorerFactory
    config: RetrainConfig = field(default_factory=RetrainConfig)
    gate_tolerance: float = DEFAULT_TOLERANCE
    calibration_min_gold: int | None = None
    """A published model with at least this many gold items gets the auto-accept map fitted on
    its gold scores (None: never; the settings' ``calibration.min_gold`` when enabled)."""
    calibration_bins: int = 10
    name: str = "trainer"
    inputs: tuple[str, ...] = (
        "comments",
        "adjudications",
        "votes",
        "labels",
        "questions",
        "exports",
        "models",
        "weak.labels",
    )
    texts: dict[str, str] = field(default_factory=dict)
    """As read: sealed with erasure on, opened with ``keyring`` only to train (so a comment
    erased since it was read is trained on as erased)."""
    keyring: Keyring | None = None
    slices: dict[str, str] = field(default_factory=dict)
    labels: list[tuple[LogPosition, LabelCommitted]] = field(default_factory=list)
    weak: list[tuple[LogPosition, LabelCommitted]] = field(default_factory=list)
    """The weak stage's labels, kept only with ``weak_labels = fill``."""
    gold: list[tuple[LogPosition, AdjudicationRecorded]] = field(default_factory=list)
    read_to: dict[Partition, int] = field(default_factory=dict)
    topic_of: dict[str, str] = field(default_factory=dict)
    since_export: int = 0
    pending: dict[str, ExportCreated] = field(default_factory=dict)
    trained: dict[str, str] = field(default_factory=dict)
    """export id -> the model version published for it."""
    adjudications: dict[str, AdjudicationRecorded] = field(default_factory=dict)
    missing: dict[str, set[str]] = field(default_factory=dict)
    """export id -> what it needs and has not been read yet (``text:<comment>``,
    ``adjudication:<id>``)."""
    published: dict[str, ModelPublished] = field(default_factory=dict)
    """Every model read on the models topic, in log order (the last is the live one)."""
    in_flight: list[ModelPublished] = field(default_factory=list)
    """Models this fold published and has not read back yet: they follow every model read
    so far on the single-partition topic, so the last of them is the live one."""

    def __post_init__(self) -> None:
        self._rows = ExportFold(self.config.schema_version, _FOREVER)
        self._latest_recorded: dt.datetime | None = None

    def plain_texts(self) -> dict[str, str]:
        """The texts read, opened (erased ones read as erased)."""
        if self.keyring is None:
            return self.texts
        keyring = self.keyring
        return {c: reveal(t, keyring) for c, t in self.texts.items()}

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        self.read_to[(position.topic, position.partition)] = position.offset + 1
        out: list[Output] = []
        match event:
            case CommentPosted():
                self.texts[event.comment_id] = event.text
                self.slices[event.comment_id] = event.attributes.get("slice", "unknown")
                for missing in self.missing.values():
                    missing.discard(f"text:{event.comment_id}")
            case VoteCast():
                self._exportable(event, position, "votes")
            case QuestionLabelCommitted():
                # Exports carry each question's consensus (their positions include the topic).
                self._exportable(event, position, "questions")
            case AdjudicationRecorded():
                self._exportable(event, position, "adjudications")
                self.adjudications[event.adjudication_id] = event
                for missing in self.missing.values():
                    missing.discard(f"adjudication:{event.adjudication_id}")
                if event.request_id.startswith(GOLD_REQUEST_PREFIX):
                    self.gold.append((position, event))
            case LabelCommitted() if event.route == WEAK_ROUTE:
                if self.config.weak_labels == "fill":
                    self.topic_of.setdefault(WEAK_TOPIC, position.topic)
                    self.weak.append((position, event))
            case LabelCommitted():
                self._exportable(event, position, "labels")
                self.labels.append((position, event))
                self.since_export += 1
                if self._due():
                    out.append(self._own_export())
                    self.since_export = 0
            case ModelPublished():
                self.published.pop(event.model_version, None)
                self.published[event.model_version] = event
                self.in_flight = [
                    m for m in self.in_flight if m.model_version != event.model_version
                ]
            case ExportCreated():
                if event.export_id not in self.trained:
                    self.pending.setdefault(event.export_id, event)
                cut = self._cut(event)
                self.since_export = sum(1 for p, _ in self.labels if not _before(p, cut))
        out.extend(self._train_ready())
        return out

    def drain(self) -> list[Output]:
        """Exports still waiting when a finite input ends: their labels or texts never came."""
        waiting, self.pending = self.pending, {}
        self.missing.clear()
        return [
            Rejected(f"export {export_id}: its labels or comment texts never arrived")
            for export_id in waiting
        ]

    # exports -------------------------------------------------------------------------------

    def _exportable(self, event: Event, position: LogPosition, kind: str) -> None:
        self.topic_of.setdefault(kind, position.topic)
        self._rows.apply(event, position)
        recorded = event.envelope.recorded_at
        if self._latest_recorded is None or recorded > self._latest_recorded:
            self._latest_recorded = recorded

    def _due(self) -> bool:
        every = self.config.every_labels
        return every > 0 and self.since_export >= every and len(self.labels) >= self.config.min_rows

    def _own_export(self) -> ExportCreated:
        """An export of everything read so far, as ``labeltrail export verify`` rebuilds it."""
        kinds = (*EXPORT_TOPICS, WEAK_TOPIC) if self.config.weak_labels == "fill" else EXPORT_TOPICS
        topics = {self.topic_of[k] for k in kinds if k in self.topic_of}
        positions = [
            LogPosition(topic=t, partition=p, offset=o)
            for (t, p), o in sorted(self.read_to.items())
            if t in topics
        ]
        rows = self._rows.rows()
        digest = content_hash(rows)
        as_of = self._latest_recorded or _FOREVER
        schema = self.config.schema_version
        return export_created(
            producer=PRODUCER,
            export_id=export_id_for(schema, iso(as_of) or "", positions),
            schema_version=schema,
            as_of=as_of,
            positions=positions,
            digest=digest,
            row_count=len(rows),
            uri="",
            occurred_at=as_of,
        )

    # training ------------------------------------------------------------------------------

    @staticmethod
    def _cut(export: ExportCreated) -> dict[Partition, int]:
        return {(p.topic, p.partition): p.offset for p in export.log_positions}

    def _selected(
        self, export: ExportCreated
    ) -> tuple[list[LabelCommitted], list[AdjudicationRecorded], list[LabelCommitted]]:
        """The labels, gold verdicts and weak labels before the export's positions, recorded
        by its as_of (no weak labels when the export names no ``weak.labels`` position)."""
        cut, as_of = self._cut(export), export.as_of

        def kept(read: list[tuple[LogPosition, _E]]) -> list[_E]:
            return [e for p, e in read if _before(p, cut) and e.envelope.recorded_at <= as_of]

        return kept(self.labels), kept(self.gold), kept(self.weak)

    def _ready(self, export: ExportCreated) -> bool:
        return all(
            self.read_to.get((p.topic, p.partition), 0) >= p.offset for p in export.log_positions
        )

    def _train_ready(self) -> list[Output]:
        out: list[Output] = []
        for export_id, export in list(self.pending.items()):
            missing = self.missing.get(export_id)
            if missing is None:
                if not self._ready(export):
                    continue
                missing = self.missing[export_id] = self._missing(*self._selected(export))
            if missing:
                continue
            del self.pending[export_id], self.missing[export_id]
            out.extend(self._train(export, *self._selected(export)))
        return out

    def _missing(
        self,
        labels: list[LabelCommitted],
        gold: list[AdjudicationRecorded],
        weak: list[LabelCommitted],
    ) -> set[str]:
        """The texts and the adjudications (to tell gold labels apart) not read yet."""
        texts = {e.comment_id for e in [*labels, *weak]} | {g.comment_id for g in gold}
        verdicts = {e.adjudication_id for e in labels if e.adjudication_id is not None}
        return {f"text:{c}" for c in texts - self.texts.keys()} | {
            f"adjudication:{a}" for a in verdicts - self.adjudications.keys()
        }

    def _train(
        self,
        export: ExportCreated,
        labels: list[LabelCommitted],
        gold_events: list[AdjudicationRecorded],
        weak: list[LabelCommitted],
    ) -> list[Output]:
        cfg = self.config
        if export.schema_version != cfg.schema_version:
            return [
                Rejected(
                    f"export {export.export_id}: schema {export.schema_version}, "
                    f"the trainer's is {cfg.schema_version}"
                )
            ]
        # Gold items: the gold verdicts before the cut, and every comment whose selected label
        # was committed from a gold verdict (its verdict may sit past the adjudications cut).
        committed_gold = [
            self.adjudications[e.adjudication_id] for e in labels if e.adjudication_id
        ]
        verdict = {
            g.comment_id: g.label
            for g in [*gold_events, *committed_gold]
            if g.request_id.startswith(GOLD_REQUEST_PREFIX)
        }
        texts = self.plain_texts()
        training = training_set_from_labels(
            labels,
            texts,
            cfg.classes,
            schema_version=cfg.schema_version,
            exclude=verdict.keys(),
            include_machine_made=cfg.include_machine_made,
            weak=weak,  # read only with weak_labels = fill
            weak_weight=cfg.weak_weight,
        )
        if len(training) < cfg.min_rows:
            return [
                Rejected(
                    f"export {export.export_id}: {len(training)} training rows, "
                    f"fewer than {cfg.min_rows}"
                )
            ]
        gold = GoldSet.from_verdicts(verdict, texts, self.slices)
        version = model_version_for(export.export_id, cfg)
        manifest: dict[str, object] = {
            "log_positions": [f"{p.topic}:{p.partition}:{p.offset}" for p in export.log_positions],
            "as_of": iso(export.as_of),
            "gold_items": len(gold),
        }
        if cfg.weak_labels == "fill":
            manifest["weak_labels_before"] = len(weak)
        try:
            model = train_and_publish(
                training,
                gold,
                models_dir=self.models_dir,
                version=version,
                config=cfg,
                make_trainer=self.make_trainer,
                load_scorer=self.load_scorer,
                export_id=export.export_id,
                export_hash=export.content_hash,
                manifest=manifest,
                causation_id=export.event_id,
                baseline=self.live(),
                tolerance=self.gate_tolerance,
                calibration_min_gold=self.calibration_min_gold,
                calibration_bins=self.calibration_bins,
            )
        except LearningError as exc:
            return [Rejected(f"export {export.export_id}: model not published: {exc}")]
        self.trained[export.export_id] = model.model_version
        if isinstance(model, ModelRefused):
            log.warning("%s: model %s refused: %s", self.name, model.model_version, model.reason)
            return [model]
        if model.model_version not in self.published:
            self.in_flight.append(model)
        log.info(
            "%s: model %s from export %s (%d rows %s, gold accuracy %s)",
            self.name,
            model.model_version,
            export.export_id,
            len(training),
            training.rows_by_source(),
            model.metrics.get("gold.all.accuracy"),
        )
        return [model]

    def live(self) -> ModelPublished | None:
        """The live model: the last published, as the scorer sees it (the gate's baseline)."""
        if self.in_flight:
            return self.in_flight[-1]
        return next(reversed(self.published.values()), None)
