"""Closing the loop on a blind spot, pure: find the slice, send its crowd labels to experts.

The crowd agrees on the coded slice and is wrong; the experts see it. :func:`flag_blind_spots`
measures each slice's crowd consensus against expert verdicts, and :func:`relabel_requests`
turns the flagged slices' crowd-only labels into ``AdjudicationRequested`` events for the
ordinary folds to serve, so the retrained model can learn the slice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

from labeltrail.events.ids import derive_id
from labeltrail.events.models import AdjudicationRequested, LabelCommitted, VoteCast
from labeltrail.quality import NO_GOLD, Votes
from labeltrail.quality.blindspots import SliceReport, detect_blind_spots

__all__ = ["flag_blind_spots", "relabel_requests"]

PRODUCER = "learning.loop"


def flag_blind_spots(
    votes: Iterable[VoteCast],
    labels: Iterable[LabelCommitted],
    slice_of: Mapping[str, str],
    classes: Sequence[str],
    *,
    min_agreement: float = 0.7,
    alpha: float = 0.05,
    min_gold: int = 5,
) -> list[SliceReport]:
    """Per-slice crowd agreement beside crowd accuracy against expert verdicts.

    ``slice_of``: comment id -> slice. The reference labels are the adjudicated ones
    (``route == "adjudication"``: expert verdicts and the gold set).
    """
    crowd = [v for v in votes if v.comment_id in slice_of]
    if not crowd:
        return []
    encoded = Votes.from_long(
        [v.comment_id for v in crowd],
        [v.annotator_id for v in crowd],
        [v.label for v in crowd],
        classes=list(classes),
    )
    index = {c: i for i, c in enumerate(classes)}
    expert = {lab.comment_id: lab.label for lab in labels if lab.route == "adjudication"}
    items = [str(i) for i in encoded.item_ids.tolist()]
    gold = np.array([index.get(expert.get(i, ""), NO_GOLD) for i in items], dtype=np.int64)
    slices = np.array([slice_of[i] for i in items])
    return detect_blind_spots(
        encoded, gold, slices, min_agreement=min_agreement, alpha=alpha, min_gold=min_gold
    )


def relabel_requests(
    labels: Iterable[LabelCommitted],
    slice_of: Mapping[str, str],
    flagged: Collection[str],
    *,
    reason: str = "blind spot",
) -> list[AdjudicationRequested]:
    """One expert request per crowd-only label in a flagged slice (deterministic ids).

    Comments that already have an adjudicated label are skipped; so is a label without votes.
    """
    latest: dict[str, LabelCommitted] = {}
    adjudicated: set[str] = set()
    for label in labels:
        if label.route == "adjudication":
            adjudicated.add(label.comment_id)
        elif label.route == "consensus":
            latest[label.comment_id] = label
    out: list[AdjudicationRequested] = []
    for cid in sorted(latest):
        label = latest[cid]
        if cid in adjudicated or slice_of.get(cid) not in flagged or not label.vote_ids:
            continue
        request_id = derive_id("adjudication-request", cid, label.schema_version, "relabel")
        out.append(
            AdjudicationRequested.create(
                producer=PRODUCER,
                id_parts=(request_id,),
                occurred_at=label.envelope.occurred_at,
                causation_id=label.event_id,
                correlation_id=cid,
                request_id=request_id,
                comment_id=cid,
                schema_version=label.schema_version,
                reason=f"{reason}: slice {slice_of[cid]} relabelled by experts",
                agreement=float(label.method_params.get("agreement", "1") or 1.0),
                threshold=1.0,
                vote_ids=list(label.vote_ids),
            )
        )
    return out
