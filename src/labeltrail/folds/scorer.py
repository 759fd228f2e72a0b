"""The scorer stage as a fold: CommentPosted -> CommentScored, hot-swapping on ModelPublished.

A published model is verified (its artifact's sha256) and swapped in at once, and every score
names the model version that made it; comments read before any model is live are held, and
rejected if still held at drain, never dropped; a model that fails to load is rejected and the
previous one keeps serving (``docs/learning.md``, "ONNX and the scorer").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.crypto import Keyring, reveal
from labeltrail.events.models import CommentPosted, CommentScored, ModelPublished
from labeltrail.exceptions import ArtifactError
from labeltrail.folds.base import Output, Rejected
from labeltrail.learning.prelabel import margins, route_for
from labeltrail.learning.publish import ProbabilityScorer, resolve_artifact
from labeltrail.quality.calibration import temper_rows

__all__ = ["ScorerFold", "ScoringModel", "resolve_artifact"]


class ScoringModel(ProbabilityScorer, Protocol):
    """A loaded model: its class names and texts -> probabilities ``(n, n_classes)``."""

    @property
    def classes(self) -> Sequence[str]: ...


PRODUCER = "scorer"


@dataclass
class ScorerFold:
    """Scores comments with the latest published ONNX model.

    ``load``: ``(artifact path, expected sha256) -> scorer`` (the onnxruntime loader of
    :mod:`labeltrail.ml.scoring`, injected so the fold stays pure; it must verify the hash and
    raise :class:`ArtifactError` otherwise). ``threshold``: a margin below it routes the
    comment to annotation (the article's 0.09 < 0.1). ``auto_accept_threshold``: a top
    probability at or above it routes ``auto_accept`` (None disables). When the model's
    ``ModelPublished`` carries a ``temperature`` (fitted on its gold scores at publish), that
    top probability is the calibrated one, ``softmax(log p / T)``, and each score records the
    temperature and the calibrated confidence; the margin gate stays on the raw
    probabilities (``docs/quality.md``, "Calibrated confidence").
    """

    load: Callable[[Path, str], ScoringModel]
    models_dir: Path = Path("var/models")
    threshold: float = 0.1
    auto_accept_threshold: float | None = None
    name: str = "scorer"
    inputs: tuple[str, ...] = ("models", "comments")
    scorer: ScoringModel | None = None
    model_version: str | None = None
    temperature: float | None = None
    """The live model's auto-accept map (None: its top probability gates as it is)."""
    held: dict[str, CommentPosted] = field(default_factory=dict)
    swaps: int = 0
    keyring: Keyring | None = None
    """Opens sealed comment text (``docs/erasure.md``); an erased text is scored as erased."""

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case ModelPublished():
                return self._swap(event)
            case CommentPosted():
                if self.scorer is None:
                    self.held[event.comment_id] = event
                    return []
                return list(self.score([event]))
        return []

    def drain(self) -> list[Output]:
        out: list[Output] = []
        for comment_id in sorted(self.held):
            del self.held[comment_id]
            out.append(Rejected(f"comment {comment_id}: no model published to score it"))
        return out

    def _swap(self, event: ModelPublished) -> list[Output]:
        if event.model_version == self.model_version:
            return []
        path = resolve_artifact(event.artifact_uri, self.models_dir)
        try:
            scorer = self.load(path, event.artifact_sha256)
        except ArtifactError as exc:
            return [Rejected(f"model {event.model_version} not loaded: {exc}")]
        if list(scorer.classes) != list(event.classes):
            return [Rejected(f"model {event.model_version}: classes differ from its event")]
        self.scorer, self.model_version = scorer, event.model_version
        self.temperature = event.temperature
        self.swaps += 1
        held = [self.held.pop(c) for c in sorted(self.held)]
        return list(self.score(held)) if held else []

    def score(self, comments: list[CommentPosted]) -> list[CommentScored]:
        """Score a batch (the bulk path calls this directly with many comments)."""
        if self.scorer is None or self.model_version is None:
            raise ArtifactError("no model loaded")
        keyring = self.keyring
        texts = [c.text if keyring is None else reveal(c.text, keyring) for c in comments]
        probs = self.scorer.predict_proba(texts)
        margin = margins(probs)
        temperature = self.temperature
        calibrated: list[float | None] = (
            [None] * len(comments)
            if temperature is None
            else [round(float(x), 6) for x in temper_rows(probs, temperature).max(axis=1)]
        )
        classes = list(self.scorer.classes)
        out: list[CommentScored] = []
        for comment, p, m, conf in zip(comments, probs, margin, calibrated, strict=True):
            top = float(np.max(p)) if conf is None else conf
            route = route_for(float(m), top, self.threshold, self.auto_accept_threshold)
            out.append(
                CommentScored.create(
                    producer=PRODUCER,
                    occurred_at=comment.posted_at,
                    id_parts=("score", comment.comment_id, self.model_version),
                    causation_id=comment.event_id,
                    correlation_id=comment.comment_id,
                    comment_id=comment.comment_id,
                    model_version=self.model_version,
                    classes=classes,
                    probabilities=[float(x) for x in p],
                    margin=float(m),
                    route=route,
                    threshold=self.threshold,
                    temperature=temperature,
                    confidence=conf,
                )
            )
        return out
