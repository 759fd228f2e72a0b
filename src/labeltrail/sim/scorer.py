"""A stand-in for the deployed model, for the demo: noisy scores around the hidden truth.

It is not a trained model (the real scorer runs an ONNX model); it exists so the demo's
routing by margin is exercised. Coded harassment gets the article's ambiguous scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import CommentPosted, CommentScored
from labeltrail.folds.base import Output
from labeltrail.folds.draws import draw
from labeltrail.ontology.schema import MODERATION_CLASSES
from labeltrail.sim.platform import CODED, Platform

__all__ = ["SimulatedScorer"]


@dataclass
class SimulatedScorer:
    platform: Platform
    threshold: float = 0.1
    model_version: str = "sim-model-v1"
    name: str = "sim.scorer"
    inputs: tuple[str, ...] = ("comments",)

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        if not isinstance(event, CommentPosted):
            return []
        cid = event.comment_id
        if cid not in self.platform.truth or self.platform.slices[cid] == "thread_context":
            return []
        if cid in self.platform.gold_set:
            return []  # gold items are labeled already; they come back only as honeypots
        k = len(MODERATION_CLASSES)
        truth = MODERATION_CLASSES.index(self.platform.truth[cid])
        if self.platform.slices[cid] == CODED:
            probs = np.array([0.32, 0.0, 0.41, 0.27, 0.0])
        else:
            logits = np.array([draw("logit", cid, j) for j in range(k)]) * 2.0
            logits[truth] += 0.4 + 2.5 * draw("signal", cid)
            probs = np.exp(logits) / np.exp(logits).sum()
        top2 = np.sort(probs)[-2:]
        margin = float(top2[1] - top2[0])
        pool = event.source == "pool"
        route = "annotate" if pool or margin < self.threshold else "none"
        return [
            CommentScored.create(
                producer="sim.scorer",
                occurred_at=event.posted_at,
                id_parts=("score", cid, self.model_version),
                causation_id=event.event_id,
                correlation_id=cid,
                comment_id=cid,
                model_version=self.model_version,
                classes=list(MODERATION_CLASSES),
                probabilities=[round(float(p), 4) for p in probs],
                margin=round(margin, 4),
                route=route,
                threshold=self.threshold,
            )
        ]
