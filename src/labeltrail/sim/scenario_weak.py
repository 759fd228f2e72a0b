"""Day-14 soft labels for the scenario: one label model over every source the log holds.

Crowd votes, expert verdicts, labeling functions on the text and the v1 model's predictions are
combined by :class:`~labeltrail.learning.multisource.MultiSourceLabelModel`, with the experts'
accuracy learned outside the flagged slices and held fixed on them, so the model does not side
with the blind crowd; the result replaces the committed labels as v2's targets. Why both steps
were needed: ``docs/learning.md`` ("Day 30").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.base import Event
from labeltrail.events.ids import derive_id
from labeltrail.events.models import AdjudicationRecorded, AnnotatorRegistered, VoteCast
from labeltrail.learning.data import TrainingSet
from labeltrail.learning.example_lfs import SCENARIO_LFS
from labeltrail.learning.lf import Example, apply_lfs
from labeltrail.learning.multisource import MultiSourceLabelModel, Observations
from labeltrail.ml.training import SoftLabelTrainer

__all__ = ["SCENARIO_LFS", "expert_accuracy_outside", "weak_training_set"]


def _observations(
    log: Mapping[str, Sequence[Event]],
    texts: Mapping[str, str],
    ids: Sequence[str],
    classes: Sequence[str],
    model: SoftLabelTrainer,
) -> Observations:
    index = {cid: i for i, cid in enumerate(ids)}
    code = {c: i for i, c in enumerate(classes)}
    items: list[int] = []
    who: list[str] = []
    said: list[int] = []
    for event in [*log.get("votes", []), *log.get("adjudications", [])]:
        if isinstance(event, VoteCast | AdjudicationRecorded) and event.comment_id in index:
            annotator = event.annotator_id if isinstance(event, VoteCast) else event.reviewer_id
            items.append(index[event.comment_id])
            who.append(annotator)
            said.append(code[event.label])
    L = apply_lfs(SCENARIO_LFS, [Example(cid, texts[cid]) for cid in ids])
    pools = {
        e.annotator_id: e.pool
        for e in log.get("annotators", [])
        if isinstance(e, AnnotatorRegistered)
    }
    return Observations.build(
        len(ids),
        votes=(items, who, said),
        lf_matrix=L,
        lf_names=[lf.name for lf in SCENARIO_LFS],
        model_probabilities=model.predict_proba([texts[c] for c in ids]),
        model_min_confidence=0.6,
        model_name="model:v1",
        annotator_pools=pools,
    )


def expert_accuracy_outside(
    obs: Observations,
    item_slices: Sequence[str],
    flagged: Collection[str],
    n_classes: int,
    *,
    init: NDArray[np.floating[Any]] | None = None,
    group: str = "expert",
) -> float | None:
    """The ``group``'s accuracy learned on the items outside the ``flagged`` slices.

    Fits :class:`MultiSourceLabelModel` (nothing fixed) to the observations of the other
    items, where crowd, labeling functions and model are not blind, and returns the
    observation-weighted mean reliability of the group's sources; None if it has none there.
    ``item_slices: (n_items,)``; ``init: (n_items, k)``.
    """
    keep = np.array([s not in flagged for s in item_slices], dtype=bool)
    mask = keep[obs.item]
    if not mask.any():
        return None
    renumber = np.cumsum(keep) - 1
    outside = Observations(
        renumber[obs.item[mask]],
        obs.source[mask],
        obs.label[mask],
        int(keep.sum()),
        obs.source_names,
        obs.source_kinds,
        obs.source_groups,
    )
    fitted = MultiSourceLabelModel(n_classes).fit(
        outside, init=None if init is None else np.asarray(init)[keep]
    )
    reliability = fitted.reliability()
    counts = np.bincount(outside.source, minlength=len(obs.source_names))
    weighted = [
        (reliability[name][1], int(counts[s]))
        for s, (name, g) in enumerate(zip(obs.source_names, obs.groups(), strict=True))
        if g == group and counts[s] > 0
    ]
    total = sum(n for _, n in weighted)
    return sum(r * n for r, n in weighted) / total if total else None


def weak_training_set(
    log: Mapping[str, Sequence[Event]],
    texts: Mapping[str, str],
    committed: TrainingSet,
    model: SoftLabelTrainer,
    *,
    slice_of: Mapping[str, str] | None = None,
    flagged: Collection[str] = (),
    expert_accuracy: float | None = None,
    default_expert_accuracy: float = 0.95,
) -> TrainingSet:
    """Soft labels for the items of ``committed`` from every source in ``log``.

    ``log`` is the pipeline's topic -> events; ``model`` the deployed (v1) classifier.
    Crowd annotators and the model get a separate reliability on each ``flagged`` slice
    (``slice_of``: comment -> slice): their agreement there is what cannot be trusted.
    ``expert_accuracy``: the experts' accuracy, held fixed; None learns it with
    :func:`expert_accuracy_outside` (``default_expert_accuracy`` if it cannot).
    """
    ids = list(committed.comment_ids)
    classes = list(committed.classes)
    obs = _observations(log, texts, ids, classes, model)
    item_slices = [(slice_of or {}).get(c, "") for c in ids]
    if expert_accuracy is None:
        learned = expert_accuracy_outside(
            obs, item_slices, flagged, len(classes), init=committed.targets
        )
        expert_accuracy = default_expert_accuracy if learned is None else learned
    if slice_of is not None and flagged:
        # The crowd and the model trained on its labels share the blind spot; the experts
        # who found it stay whole and anchor the slice.
        obs = obs.split_by_slice(item_slices, flagged, only_groups=("crowd", "model"))
    fitted = MultiSourceLabelModel(len(classes), known_accuracy={"expert": expert_accuracy}).fit(
        obs, init=committed.targets
    )
    posterior = fitted.predict_proba()
    return TrainingSet(
        classes=committed.classes,
        comment_ids=committed.comment_ids,
        texts=committed.texts,
        targets=posterior,
        weights=posterior.max(axis=1),
        routes=("weak",) * len(ids),
        label_ids=tuple(
            derive_id("weak-label", cid, np.round(p, 4).tolist())
            for cid, p in zip(ids, posterior, strict=True)
        ),
        schema_version=committed.schema_version,
        as_of=committed.as_of,
    )
