"""Day-14 soft labels for the scenario: one label model over every source the log holds.

Crowd votes and expert verdicts (human sources, one per annotator), labeling functions on the
text (the coded-language heuristic the expert's note suggested, keyword LFs for the explicit
classes) and the deployed v1 model's predictions are combined by
:class:`~labeltrail.learning.multisource.MultiSourceLabelModel`; each source's reliability is
learned, none is assumed. The result replaces the committed labels as v2's targets.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from labeltrail.events.base import Event
from labeltrail.events.ids import derive_id
from labeltrail.events.models import AdjudicationRecorded, AnnotatorRegistered, VoteCast
from labeltrail.learning.data import TrainingSet
from labeltrail.learning.lf import Example, LabelingFunction, apply_lfs, keyword_lf, regex_lf
from labeltrail.learning.multisource import MultiSourceLabelModel, Observations
from labeltrail.learning.training import SoftLabelTrainer

__all__ = ["SCENARIO_LFS", "weak_training_set"]

SCENARIO_LFS: tuple[LabelingFunction, ...] = (
    regex_lf("context_dependent", r"your (kind|people)|you people|\b(14)?88\b|\(\(\(|we said", 2),
    keyword_lf("insults", ["loser", "clown", "idiot", "moron", "nobody likes you"], 2),
    keyword_lf("mild_words", ["dumb", "boring", "cringe", "waste of my time"], 1),
    regex_lf("slurs", r"\[slur\]|subhuman", 3),
    regex_lf("threat_phrases", r"where you live|watch your back|hurt you|coming for you", 4),
    keyword_lf("benign_words", ["thanks", "subscribed", "useful", "helped"], 0),
)


def weak_training_set(
    log: Mapping[str, Sequence[Event]],
    texts: Mapping[str, str],
    committed: TrainingSet,
    model: SoftLabelTrainer,
    *,
    slice_of: Mapping[str, str] | None = None,
    flagged: Collection[str] = (),
    expert_accuracy: float = 0.95,
) -> TrainingSet:
    """Soft labels for the items of ``committed`` from every source in ``log``.

    ``log`` is the pipeline's topic -> events; ``model`` the deployed (v1) classifier.
    Crowd annotators and the model get a separate reliability on each ``flagged`` slice
    (``slice_of``: comment -> slice): their agreement there is what cannot be trusted.
    ``expert_accuracy``: the experts' gold accuracy (a measured reference, kept fixed).
    """
    ids = list(committed.comment_ids)
    index = {cid: i for i, cid in enumerate(ids)}
    classes = list(committed.classes)
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
    obs = Observations.build(
        len(ids),
        votes=(items, who, said),
        lf_matrix=L,
        lf_names=[lf.name for lf in SCENARIO_LFS],
        model_probabilities=model.predict_proba([texts[c] for c in ids]),
        model_min_confidence=0.6,
        model_name="model:v1",
        annotator_pools=pools,
    )
    if slice_of is not None and flagged:
        # The crowd and the model trained on its labels share the blind spot; the experts
        # who found it stay whole and anchor the slice.
        item_slices = [slice_of.get(c, "") for c in ids]
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
