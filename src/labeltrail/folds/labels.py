"""Label commit: only labels that passed QC (agreement gate or adjudication) are written,
plus, when enabled, the model's confident scores as machine-made labels.

An adjudicated verdict overrides the crowd (route ``adjudication``) and waits until the
consensus that raised it has been read, so its provenance is the same in live runs and
replays. :meth:`LabelsFold.apply_batch` runs the same private methods on the batch path's rows
(``docs/replay.md``, "The batch path").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from labeltrail.events.base import Event, LogPosition, from_epoch_millis
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    GOLD_REQUEST_PREFIX,
    AdjudicationRecorded,
    AdjudicationRequested,
    CommentScored,
    ConsensusUpdated,
    LabelCommitted,
    LabelSchemaPublished,
)
from labeltrail.folds.base import Output, Pos, build_event
from labeltrail.folds.calibration import calibrated
from labeltrail.folds.consensus import ConsensusRow, RequestRow
from labeltrail.folds.feedback import FEEDBACK_REQUEST_PREFIX
from labeltrail.learning.prelabel import auto_accept_label

__all__ = ["LabelRow", "LabelsFold", "soft_from_confidence"]

PRODUCER = "labels"


def soft_from_confidence(label: str, confidence: float, classes: list[str]) -> list[float]:
    """A distribution with ``confidence`` on ``label`` and the rest spread evenly."""
    rest = (1.0 - confidence) / max(len(classes) - 1, 1)
    return [confidence if c == label else rest for c in classes]


class LabelRow(NamedTuple):
    """A ``LabelCommitted`` through the agreement gate, as a plain tuple (the event id is
    derived from the label id when read)."""

    label_id: str
    consensus: ConsensusRow
    position: Pos

    @property
    def event_id(self) -> str:
        return derive_id("LabelCommitted", self.label_id)

    @property
    def comment_id(self) -> str:
        return self.consensus.comment_id

    @property
    def label(self) -> str:
        return self.consensus.label

    def to_event(self) -> LabelCommitted:
        c = self.consensus
        # The consensus names the calibration map it gated with: the label records the
        # calibrated distribution (the posterior itself before any map).
        distribution = calibrated(c.posterior, c.method_params)
        return build_event(
            LabelCommitted,
            event_id=self.event_id,
            producer=PRODUCER,
            occurred_at=from_epoch_millis(c.occurred_ms),
            causation_id=c.event_id,
            correlation_id=c.comment_id,
            label_id=self.label_id,
            comment_id=c.comment_id,
            schema_version=c.schema_version,
            label=c.label,
            classes=c.classes,
            distribution=distribution,
            confidence=max(distribution),
            route="consensus",
            method=c.method,
            method_params={**c.method_params, "agreement": f"{c.agreement:.4f}"},
            vote_ids=c.vote_ids,
            annotator_ids=c.annotator_ids,
            source_positions=[self.position.to_model()],
        )


BatchInput = Event | ConsensusRow | RequestRow


@dataclass
class LabelsFold:
    """Commits labels that passed QC.

    ``auto_accept_threshold``: a comment the deployed model routed ``auto_accept`` with a top
    probability at or above it gets a machine-made label (route ``auto_accept``,
    ``machine_made=True``, no votes, no annotators: never a human vote). ``None`` (the
    default) commits no machine-made labels.
    """

    auto_accept_threshold: float | None = None
    name: str = "labels"
    inputs: tuple[str, ...] = ("schemas", "consensus", "adjudications", "scores")
    current: str | None = None
    unversioned: list[tuple[CommentScored, LogPosition]] = field(default_factory=list)
    classes: dict[str, list[str]] = field(default_factory=dict)
    requests: dict[str, RequestRow] = field(default_factory=dict)
    """request id -> request, for the requests indexed so far (see :meth:`_request`)"""
    unindexed: list[RequestRow] = field(default_factory=list)
    """requests read since, in order: their ids are hashed only when an adjudication looks
    one up (a replay with no adjudications never derives them)"""
    latest: dict[tuple[str, str], tuple[ConsensusRow, Pos]] = field(default_factory=dict)
    adjudicated: set[tuple[str, str]] = field(default_factory=set)
    waiting: dict[str, tuple[AdjudicationRecorded, LogPosition]] = field(default_factory=dict)

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case LabelSchemaPublished():
                self.classes[event.version] = list(event.classes)
                self.current = event.version
                pending, self.unversioned = self.unversioned, []
                return [out for sc, at in pending for out in self._auto_accept(sc, at)]
            case CommentScored():
                return self._auto_accept(event, position)
            case ConsensusUpdated():
                label = self._on_consensus(ConsensusRow.of(event), Pos.of(position))
                return [] if label is None else [label.to_event()]
            case AdjudicationRequested():
                return self._on_request(RequestRow.of(event))
            case AdjudicationRecorded():
                if (
                    event.request_id.startswith(GOLD_REQUEST_PREFIX)
                    or self._request(event.request_id) is not None
                ):
                    return [self._from_adjudication(event, position)]
                self.waiting[event.request_id] = (event, position)
        return []

    def apply_batch(
        self, inputs: Sequence[BatchInput], topic: str, partition: int, first_offset: int
    ) -> list[Output | LabelRow]:
        """Inputs read from ``topic``/``partition`` at consecutive offsets from
        ``first_offset``, in order, as :meth:`apply` would see them; a :class:`LabelRow`
        stands for each ``LabelCommitted`` of the agreement gate."""
        out: list[Output | LabelRow] = []
        on_consensus = self._on_consensus
        for i, item in enumerate(inputs):
            if type(item) is ConsensusRow:
                label = on_consensus(item, Pos(topic, partition, first_offset + i))
                if label is not None:
                    out.append(label)
            elif type(item) is RequestRow:
                out.extend(self._on_request(item))
            elif isinstance(item, Event):
                position = LogPosition(topic=topic, partition=partition, offset=first_offset + i)
                out.extend(self.apply(item, position))
        return out

    def _on_consensus(self, c: ConsensusRow, position: Pos) -> LabelRow | None:
        item = (c.comment_id, c.schema_version)
        self.latest[item] = (c, position)
        if c.status == "passed" and item not in self.adjudicated:
            label_id = derive_id("label", c.comment_id, c.schema_version, "consensus", c.vote_ids)
            return LabelRow(label_id, c, position)
        return None

    def _on_request(self, request: RequestRow) -> list[Output]:
        self.unindexed.append(request)
        if not self.waiting:
            return []
        held = self.waiting.pop(request.request_id, None)
        return [] if held is None else [self._from_adjudication(*held)]

    def _request(self, request_id: str) -> RequestRow | None:
        """The latest request with this id (as a dict of every request by id would hold)."""
        if self.unindexed:
            for request in self.unindexed:
                self.requests[request.request_id] = request
            self.unindexed.clear()
        return self.requests.get(request_id)

    def _auto_accept(self, scored: CommentScored, position: LogPosition) -> list[Output]:
        if self.auto_accept_threshold is None or scored.route != "auto_accept":
            return []
        if self.current is None:
            self.unversioned.append((scored, position))
            return []
        label = auto_accept_label(scored, self.current, self.auto_accept_threshold)
        if label is None:
            return []
        envelope = label.envelope.model_copy(update={"producer": PRODUCER})
        return [label.model_copy(update={"envelope": envelope, "source_positions": [position]})]

    def _from_adjudication(self, a: AdjudicationRecorded, position: LogPosition) -> LabelCommitted:
        item = (a.comment_id, a.schema_version)
        self.adjudicated.add(item)
        request = self._request(a.request_id)
        vote_ids = list(request.vote_ids) if request else []
        crowd = self.latest.get(item)
        crowd_annotators = list(crowd[0].annotator_ids) if crowd and request else []
        classes = self.classes.get(a.schema_version) or [a.label]
        positions = [position]
        if crowd is not None and request is not None:
            positions.insert(0, crowd[1].to_model())
        label_id = derive_id("label", a.comment_id, a.schema_version, "adjudication", a.event_id)
        params = {"reviewer": a.reviewer_id, "overrides": "crowd"}
        if a.request_id.startswith(FEEDBACK_REQUEST_PREFIX):
            # A review production feedback asked for: the verdict supersedes the live label.
            feedback = a.request_id.removeprefix(FEEDBACK_REQUEST_PREFIX)
            params = {"reviewer": a.reviewer_id, "overrides": "label", "feedback": feedback}
        return LabelCommitted.create(
            producer=PRODUCER,
            id_parts=(label_id,),
            occurred_at=a.envelope.occurred_at,
            causation_id=a.event_id,
            correlation_id=a.comment_id,
            label_id=label_id,
            comment_id=a.comment_id,
            schema_version=a.schema_version,
            label=a.label,
            classes=classes,
            distribution=soft_from_confidence(a.label, a.confidence, classes),
            confidence=a.confidence,
            route="adjudication",
            method="expert-adjudication",
            method_params=params,
            vote_ids=vote_ids,
            annotator_ids=[*crowd_annotators, a.reviewer_id],
            adjudication_id=a.adjudication_id,
            source_positions=positions,
        )
