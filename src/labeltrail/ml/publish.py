"""``labeltrail model publish MODEL.onnx``: a model a team brings, through the publish gate.

The model file comes with its manifest (``MODEL.manifest.json``: class order, the label schema
version it predicts, the training export). Everything is checked before anything is written:
the file is an ONNX model the scorer can load, its classes are the manifest's and the
schema's, the schema version is published, the export is on the log. Then the candidate and
the live model score the gold set of that schema version with onnxruntime and the one gate
(:func:`labeltrail.learning.gate.gate_candidate`, which the trainer service runs too)
compares them per slice. Refused: a ``ModelRefused`` (once per model, baseline, gold set and
tolerance) and nothing published, unless ``force``, which the ``ModelPublished`` records with
its reason. The same model twice adds nothing (``docs/learning.md``, "The publish gate").
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.models import (
    GOLD_REQUEST_PREFIX,
    AdjudicationRecorded,
    CommentPosted,
    ExportCreated,
    LabelSchemaPublished,
    ModelPublished,
    ModelRefused,
)
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import ArtifactError, LabeltrailError
from labeltrail.learning.gate import (
    GateDecision,
    calibrate_on_gold,
    gate_candidate,
    model_refused,
)
from labeltrail.learning.metrics import UNKNOWN_SLICE, GoldSet, evaluate_by_slice, flatten_metrics
from labeltrail.learning.publish import (
    ModelManifest,
    artifact_path,
    file_sha256,
    manifest_path,
    model_published,
    write_manifest,
)
from labeltrail.ml.scoring import OnnxTextScorer

__all__ = [
    "InvalidModelError",
    "ModelLog",
    "PublishResult",
    "publish_model",
    "read_manifest",
    "read_model_log",
]

PRODUCER = "model-cli"
TOPICS = ("schemas", "exports", "models", "models.refused", "gold")


class InvalidModelError(LabeltrailError):
    """The model or its manifest cannot be published; nothing was. One problem per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class ModelLog:
    """What publishing needs from the log: schemas, exports, models (in log order), refusals
    and the gold set (the ``gold`` topic's comments and verdicts)."""

    schemas: dict[str, LabelSchemaPublished] = field(default_factory=dict)
    exports: dict[str, ExportCreated] = field(default_factory=dict)
    models: dict[str, ModelPublished] = field(default_factory=dict)
    refusals: dict[str, ModelRefused] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    slices: dict[str, str] = field(default_factory=dict)
    verdicts: dict[tuple[str, str], str] = field(default_factory=dict)
    """(schema version, comment id) -> gold label (the last verdict read)."""

    @classmethod
    def of(cls, events: Iterable[Event]) -> ModelLog:
        log = cls()
        for event in events:
            log.apply(event)
        return log

    def apply(self, event: Event) -> None:
        match event:
            case LabelSchemaPublished():
                self.schemas.setdefault(event.version, event)
            case ExportCreated():
                self.exports.setdefault(event.export_id, event)
            case ModelPublished():
                self.models.pop(event.model_version, None)  # the last on the log is live
                self.models[event.model_version] = event
            case ModelRefused():
                self.refusals[event.event_id] = event
            case CommentPosted():
                self.texts[event.comment_id] = event.text
                self.slices[event.comment_id] = event.attributes.get("slice", UNKNOWN_SLICE)
            case AdjudicationRecorded() if event.request_id.startswith(GOLD_REQUEST_PREFIX):
                self.verdicts[(event.schema_version, event.comment_id)] = event.label

    def live(self) -> ModelPublished | None:
        """The model the scorer serves: the last published."""
        return next(reversed(self.models.values()), None)

    def gold(self, schema_version: str, classes: list[str]) -> GoldSet:
        """The gold items of ``schema_version`` whose comment text is on the gold topic and
        whose label is one of ``classes``."""
        verdicts = {
            cid: label
            for (version, cid), label in self.verdicts.items()
            if version == schema_version and cid in self.texts and label in classes
        }
        return GoldSet.from_verdicts(verdicts, self.texts, self.slices)


@dataclass(frozen=True)
class PublishResult:
    """``published`` (produced now), ``already`` (the same artifact was published before:
    nothing produced) or ``refused`` (``event`` is the ModelRefused; ``new`` says whether it
    was produced now or was already on the log)."""

    status: Literal["published", "already", "refused"]
    event: ModelPublished | ModelRefused
    decision: GateDecision | None = None
    gold_items: int = 0
    new: bool = True


def read_model_log(settings: Settings) -> ModelLog:
    """The schemas, exports, models, refusals and gold set on the log now (the topics are
    created first when missing: ``models.refused`` is newer than some clusters)."""
    from labeltrail.events.crypto import reveal_event
    from labeltrail.kafka.admin import ensure_topics
    from labeltrail.kafka.keys import KafkaKeyStore
    from labeltrail.kafka.log import end_positions, read_until

    ensure_topics(settings)
    topics = [topic_name(settings.topic_prefix, s) for s in TOPICS]
    keyring = KafkaKeyStore(settings)  # the gold texts, opened (docs/erasure.md)
    try:
        return ModelLog.of(
            reveal_event(e, keyring)
            for e, _ in read_until(settings, end_positions(settings, topics))
        )
    finally:
        keyring.close()


def read_manifest(path: Path) -> ModelManifest:
    """Parse a manifest file; :class:`InvalidModelError` names every bad field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidModelError(
            [f"{path}: no manifest (JSON: classes, schema_version, export_id)"]
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidModelError([f"{path}: not a JSON manifest ({exc})"]) from exc
    try:
        return ModelManifest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidModelError(
            [
                f"{path}: {'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}"
                for e in exc.errors()
            ]
        ) from exc


def _load(model: Path, threads: int) -> OnnxTextScorer:
    try:
        return OnnxTextScorer(model, threads=threads)
    except ArtifactError as exc:
        raise InvalidModelError(
            [f"{model}: not an ONNX model the scorer can serve ({exc})"]
        ) from exc


def _problems(
    manifest: ModelManifest, scorer: OnnxTextScorer, version: str, log: ModelLog
) -> list[str]:
    """Every reason the pair cannot be published, against what the log holds."""
    problems: list[str] = []
    if list(scorer.classes) != manifest.classes:
        problems.append(
            f"classes: the manifest says {manifest.classes}, the model file {scorer.classes}"
        )
    schema = log.schemas.get(manifest.schema_version)
    if schema is None:
        known = ", ".join(log.schemas) or "none"
        problems.append(
            f"schema_version: {manifest.schema_version!r} is not published (published: "
            f"{known}; labeltrail schema publish)"
        )
    elif schema.classes != manifest.classes:
        problems.append(
            f"classes: {manifest.classes} differ from schema {schema.version}'s {schema.classes}"
        )
    if manifest.export_id is not None:
        export = log.exports.get(manifest.export_id)
        if export is None:
            problems.append(f"export_id: no export {manifest.export_id!r} on the log")
        else:
            if export.schema_version != manifest.schema_version:
                problems.append(
                    f"export_id: export {export.export_id} is of schema {export.schema_version}, "
                    f"the model's is {manifest.schema_version}"
                )
            if manifest.export_hash not in (None, export.content_hash):
                problems.append(
                    f"export_hash: {manifest.export_hash} is not export {export.export_id}'s "
                    f"({export.content_hash})"
                )
    taken = log.models.get(version)
    if taken is not None and taken.artifact_sha256 != scorer.sha256:
        problems.append(
            f"model_version: {version} is already published with another artifact "
            f"({taken.artifact_sha256[:12]})"
        )
    return problems


def _install(model: Path, models_dir: Path, version: str, manifest: ModelManifest) -> None:
    """Copy the artifact to ``<models_dir>/<version>/model.onnx`` (atomically) with its
    manifest, where the scorer resolves it."""
    target = artifact_path(models_dir, version)
    sha = file_sha256(model)
    if target.exists():
        if file_sha256(target) != sha:
            raise ArtifactError(f"{target} holds another artifact: not overwritten")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".model.{os.getpid()}.onnx")
        shutil.copyfile(model, tmp)
        os.replace(tmp, target)
    write_manifest(target, manifest.model_copy(update={"model_version": version}))


def publish_model(
    settings: Settings,
    model: Path,
    manifest_file: Path | None = None,
    *,
    force: bool = False,
    reason: str = "",
) -> PublishResult:
    """Check, gate and publish ``model`` (see the module's docstring).

    Raises :class:`InvalidModelError` (nothing written, nothing produced) for a bad file,
    manifest or reference, and :class:`ArtifactError` when the live model's artifact cannot
    be loaded to compare with.
    """
    from labeltrail.kafka.producer import EventProducer
    from labeltrail.ml.train_job import onnx_scorer

    if force and not reason.strip():
        raise InvalidModelError(["--force needs --reason: the override is recorded with it"])
    threads = settings.learning.scorer_threads
    problems: list[str] = []
    manifest: ModelManifest | None = None
    scorer: OnnxTextScorer | None = None
    try:
        manifest = read_manifest(manifest_file or manifest_path(model))
    except InvalidModelError as exc:
        problems += exc.problems
    try:
        scorer = _load(model, threads)
    except InvalidModelError as exc:
        problems += exc.problems
    if manifest is None or scorer is None:
        raise InvalidModelError(problems)
    version = manifest.model_version or f"m-{scorer.sha256[:13]}"

    log = read_model_log(settings)
    problems = _problems(manifest, scorer, version, log)
    if problems:
        raise InvalidModelError(problems)
    same = [m for m in log.models.values() if m.artifact_sha256 == scorer.sha256]
    if same:
        return PublishResult("already", same[-1])

    models_dir = settings.learning.models_dir
    gold = log.gold(manifest.schema_version, manifest.classes)
    probabilities = scorer.predict_proba(list(gold.texts))
    decision = gate_candidate(
        gold,
        probabilities,
        manifest.classes,
        baseline=log.live(),
        models_dir=models_dir,
        load_scorer=lambda path, sha: onnx_scorer(path, sha, threads=threads),
        tolerance=settings.learning.gate_tolerance,
    )
    metrics = (
        flatten_metrics(
            evaluate_by_slice(list(gold.truth), probabilities, list(gold.slices), manifest.classes)
        )
        if len(gold)
        else {}
    )
    producer = EventProducer(settings)
    if not decision.passed and not force:
        refusal = model_refused(
            decision,
            gold,
            producer=PRODUCER,
            model_version=version,
            artifact_sha256=scorer.sha256,
            classes=manifest.classes,
            schema_version=manifest.schema_version,
            export_id=manifest.export_id,
            metrics=metrics,
        )
        new = refusal.event_id not in log.refusals
        if new:
            producer.send(refusal)
            producer.flush()
        return PublishResult("refused", refusal, decision, len(gold), new)

    _install(model, models_dir, version, manifest)
    export = log.exports.get(manifest.export_id or "")
    refused_before = [r for r in log.refusals.values() if r.artifact_sha256 == scorer.sha256]
    calibration = calibrate_on_gold(
        gold,
        probabilities,
        manifest.classes,
        min_gold=settings.calibration.min_gold if settings.calibration.enabled else None,
        bins=settings.calibration.bins,
    )
    event = model_published(
        models_dir,
        version,
        manifest.classes,
        export_id=manifest.export_id,
        export_hash=manifest.export_hash or (export.content_hash if export else None),
        metrics={**metrics, **decision.metrics(), **calibration.metrics},
        causation_id=refused_before[-1].event_id if refused_before else None,
        schema_version=manifest.schema_version,
        baseline_version=decision.baseline_version,
        forced=not decision.passed,
        force_reason=reason.strip() if not decision.passed else "",
        temperature=calibration.temperature,
        producer=PRODUCER,
    )
    producer.send(event)
    producer.flush()
    return PublishResult("published", event, decision, len(gold))
