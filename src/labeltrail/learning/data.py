"""Training sets from committed labels, pure: soft targets, confidence weights, a manifest.

A training set is what an export holds: for each comment its latest committed label under one
schema version (an adjudication overrides the crowd), as a distribution and a confidence, read
as of a point in event time. Its content hash and export id name it in ModelPublished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.ids import derive_id
from labeltrail.events.models import ExportCreated, LabelCommitted
from labeltrail.events.topics import WEAK_ROUTE

__all__ = [
    "ROUTE_PRIORITY",
    "WEAK_LABELS_MODES",
    "TrainingSet",
    "source_of",
    "training_set_from_labels",
]

ROUTE_PRIORITY: dict[str, int] = {"weak": 0, "auto_accept": 1, "consensus": 2, "adjudication": 3}
"""When a comment has several labels, the highest route wins; then the latest."""

WEAK_LABELS_MODES = ("off", "fill")
"""What the trainer does with weak labels (``trainer.weak_labels``): leave them out, or fill
the comments no label of the labels topic covers (:func:`training_set_from_labels`)."""


def source_of(label: LabelCommitted) -> str:
    """Who made a training row's label: ``weak`` (the joint label model, route weak),
    ``machine`` (an auto-accepted draft) or ``human`` (crowd consensus, an expert)."""
    if label.route == WEAK_ROUTE:
        return "weak"
    return "machine" if label.machine_made else "human"


@dataclass(frozen=True)
class TrainingSet:
    """``targets: (n, n_classes)`` distributions, ``weights: (n,)`` confidences."""

    classes: tuple[str, ...]
    comment_ids: tuple[str, ...]
    texts: tuple[str, ...]
    targets: NDArray[np.float64]
    weights: NDArray[np.float64]
    routes: tuple[str, ...]
    label_ids: tuple[str, ...]
    schema_version: str
    as_of: dt.datetime | None = None
    sources: tuple[str, ...] = ()
    """Each row's :func:`source_of` (empty when the set was built otherwise)."""

    def __len__(self) -> int:
        return len(self.comment_ids)

    def rows_by_source(self) -> dict[str, int]:
        """Rows per source (``human``, ``weak``, ``machine``), each named even when 0."""
        counts = dict.fromkeys(("human", "weak", "machine"), 0)
        for source in self.sources:
            counts[source] = counts.get(source, 0) + 1
        return counts

    @property
    def content_hash(self) -> str:
        """sha256 over label ids, distributions and weights, in comment order."""
        digest = hashlib.sha256()
        for i, cid in enumerate(self.comment_ids):
            row = [cid, self.label_ids[i], np.round(self.targets[i], 6).tolist()]
            digest.update(json.dumps([*row, round(float(self.weights[i]), 6)]).encode())
        return "sha256:" + digest.hexdigest()

    @property
    def export_id(self) -> str:
        return derive_id("export", self.schema_version, self.content_hash)

    def export_event(self, uri: str, *, producer: str = "learning") -> ExportCreated:
        """The ExportCreated record of this set (deterministic id)."""
        as_of = self.as_of or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return ExportCreated.create(
            producer=producer,
            id_parts=(self.export_id,),
            export_id=self.export_id,
            schema_version=self.schema_version,
            as_of=as_of,
            log_positions=[],
            aggregator="latest-committed-label",
            aggregator_params={"route_priority": json.dumps(ROUTE_PRIORITY)},
            content_hash=self.content_hash,
            row_count=len(self),
            uri=uri,
        )

    def subset(self, index: Sequence[int] | NDArray[np.int64]) -> TrainingSet:
        idx = list(int(i) for i in index)
        return TrainingSet(
            classes=self.classes,
            comment_ids=tuple(self.comment_ids[i] for i in idx),
            texts=tuple(self.texts[i] for i in idx),
            targets=self.targets[idx],
            weights=self.weights[idx],
            routes=tuple(self.routes[i] for i in idx),
            label_ids=tuple(self.label_ids[i] for i in idx),
            schema_version=self.schema_version,
            as_of=self.as_of,
            sources=tuple(self.sources[i] for i in idx) if self.sources else (),
        )


def _kept(
    label: LabelCommitted,
    texts: Mapping[str, str],
    schema_version: str,
    as_of: dt.datetime | None,
    exclude: Collection[str],
) -> bool:
    return (
        label.schema_version == schema_version
        and label.comment_id not in exclude
        and (as_of is None or label.envelope.occurred_at <= as_of)
        and label.comment_id in texts
    )


def training_set_from_labels(
    labels: Iterable[LabelCommitted],
    texts: Mapping[str, str],
    classes: Sequence[str],
    *,
    schema_version: str = "v3",
    as_of: dt.datetime | None = None,
    exclude: Collection[str] = (),
    include_machine_made: bool = False,
    weak: Iterable[LabelCommitted] = (),
    weak_weight: float = 0.5,
) -> TrainingSet:
    """The latest label per comment (see :data:`ROUTE_PRIORITY`), as of ``as_of``.

    ``exclude`` keeps comments out (the gold set, which evaluates and must not train).
    Machine-made labels (auto-accepted drafts) are left out unless asked for: a model should
    not be trained on its own confident guesses by default.

    ``weak``: the weak stage's labels (route weak, ``weak.labels``; ``trainer.weak_labels =
    fill``). The latest of each comment fills a comment that no label kept from ``labels``
    covers, so a human label always wins over a weak one, whichever came first; its weight
    is ``weak_weight`` times its confidence. Each row's :func:`source_of` is in ``sources``.
    This is the one place the rule lives (``docs/learning.md``, "Weak labels in training").
    """
    chosen: dict[str, tuple[tuple[int, int], LabelCommitted]] = {}
    for order, label in enumerate(labels):
        if not _kept(label, texts, schema_version, as_of, exclude):
            continue
        if label.machine_made and not include_machine_made:
            continue
        rank = (ROUTE_PRIORITY.get(label.route, 0), order)
        current = chosen.get(label.comment_id)
        if current is None or rank > current[0]:
            chosen[label.comment_id] = (rank, label)
    filled: dict[str, LabelCommitted] = {}
    for label in weak:
        fills = label.route == WEAK_ROUTE and label.comment_id not in chosen
        if fills and _kept(label, texts, schema_version, as_of, exclude):
            filled[label.comment_id] = label
    ids = sorted([*chosen, *filled])
    k = len(classes)
    targets = np.zeros((len(ids), k))
    weights = np.zeros(len(ids))
    picked = [chosen[c][1] if c in chosen else filled[c] for c in ids]
    for i, label in enumerate(picked):
        dist = dict(zip(label.classes, label.distribution, strict=True))
        row = np.array([dist.get(c, 0.0) for c in classes])
        targets[i] = row / row.sum() if row.sum() > 0 else np.full(k, 1.0 / k)
        weights[i] = label.confidence * (weak_weight if label.comment_id in filled else 1.0)
    return TrainingSet(
        classes=tuple(classes),
        comment_ids=tuple(ids),
        texts=tuple(texts[c] for c in ids),
        targets=targets,
        weights=weights,
        routes=tuple(label.route for label in picked),
        label_ids=tuple(label.label_id for label in picked),
        schema_version=schema_version,
        as_of=as_of,
        sources=tuple(source_of(label) for label in picked),
    )
