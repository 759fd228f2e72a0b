"""What-if relabeling: the committed labels recomputed under another consensus method.

Pure: the caller reads the log (``labeltrail relabel`` reads the schemas, the labels and the
votes, and the comments for their slices) and hands over what it read. The committed labels
decide *which* items a run labels and *which votes* each is made of (a label names its votes,
``vote_ids``: the consensus fold's rules already chose them), so a run changes labels, never
routing:

- an item whose label of record came through the agreement gate (route ``consensus``) gets the
  label of the chosen method, fitted on every crowd vote the labels of record name under that
  schema version at once (Dawid-Skene and the other models learn each annotator from all of
  them), computed columnar: one :class:`~labeltrail.quality.Votes` per schema version, the
  posteriors of all items at once, the label by the pipeline's tie rule (classes in schema
  order, the first with the top value);
- an expert's verdict (``adjudication``) overrides the crowd under any method, and a
  machine-made label has no votes: both are carried into the run unchanged; the method's crowd
  label on an adjudicated item is reported (``agrees_with_expert``), not committed.

The label of record of an item is its latest live ``LabelCommitted`` (recorded time, then
event time, then event id: ``v_current_labels``'s order); labels of runs (``run_id`` set) are
never one. ``docs/replay.md`` ("What-if relabeling").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labeltrail.events.base import LogPosition
from labeltrail.events.columnar import VoteRow
from labeltrail.events.ids import derive_id
from labeltrail.events.models import LabelCommitted
from labeltrail.exceptions import QualityError
from labeltrail.quality import TIE_RULE, Votes
from labeltrail.quality.methods import make_method, method_parameters

__all__ = [
    "PRODUCER",
    "ItemLabel",
    "Relabeling",
    "labels_of_record",
    "relabel",
    "run_id_for",
    "run_labels",
]

PRODUCER = "relabel"
_CROWD = "consensus"
_PLACES = 6
"""Posteriors are rounded as the consensus fold rounds them (``quality.item.normalise``)."""

Item = tuple[str, str]
"""(comment id, schema version)"""


def _order(label: LabelCommitted) -> tuple[Any, ...]:
    env = label.envelope
    return (env.recorded_at, env.occurred_at, env.event_id)


def labels_of_record(
    labels: Iterable[tuple[LabelCommitted, LogPosition]],
) -> dict[Item, tuple[LabelCommitted, LogPosition]]:
    """Each item's latest live label and where it was read (labels of runs are left out)."""
    out: dict[Item, tuple[LabelCommitted, LogPosition]] = {}
    for label, position in labels:
        if label.run_id is not None:
            continue
        item = (label.comment_id, label.schema_version)
        known = out.get(item)
        if known is None or _order(label) > _order(known[0]):
            out[item] = (label, position)
    return out


def run_id_for(
    method: str, params: Mapping[str, str], schema_version: str, positions: Sequence[LogPosition]
) -> str:
    """A run's id, from what it computed and the log it read: the same run made again on the
    same log has the same id (and the same label ids), so committing it twice adds nothing."""
    return derive_id(
        "relabel",
        method,
        [f"{k}={v}" for k, v in sorted(params.items())],
        schema_version or "*",
        [f"{p.topic}:{p.partition}:{p.offset}" for p in positions],
    )


@dataclass(frozen=True)
class ItemLabel:
    """One item's label of record beside the run's."""

    comment_id: str
    schema_version: str
    route: str
    classes: list[str]
    old_label: str
    old_posterior: list[float]
    new_label: str
    new_posterior: list[float]
    crowd_label: str | None
    """the method's label from the item's crowd votes (None: no votes)"""
    votes: list[tuple[str, str]]
    """(annotator, label) of each vote the label names"""
    slice: str = ""

    @property
    def changed(self) -> bool:
        return self.new_label != self.old_label


@dataclass
class Relabeling:
    """A run's labels and how they differ from the labels of record."""

    method: str
    params: dict[str, str]
    """every parameter of the method, as text (the given ones and the defaults)"""
    items: list[ItemLabel] = field(default_factory=list)
    votes: int = 0
    committed_methods: Counter[str] = field(default_factory=Counter)
    """the methods of the labels of record (e.g. ``mv`` for a history committed by majority
    vote, ``expert-adjudication`` for verdicts)"""

    @property
    def changed(self) -> list[ItemLabel]:
        return [i for i in self.items if i.changed]

    def summary(self) -> dict[str, Any]:
        """Counts: items, votes, changed; changes by class (old -> new), by slice, schema
        version and route; adjudicated items whose crowd label under the method agrees with
        the expert."""
        changed = self.changed
        adjudicated = [i for i in self.items if i.route == "adjudication" and i.crowd_label]
        return {
            "method": self.method,
            "params": self.params,
            "items": len(self.items),
            "votes": self.votes,
            "changed": len(changed),
            "by_class": _counts(f"{i.old_label}->{i.new_label}" for i in changed),
            "by_slice": _counts(i.slice for i in changed),
            "by_schema_version": _counts(i.schema_version for i in changed),
            "by_route": {
                route: {"items": n, "changed": sum(1 for i in changed if i.route == route)}
                for route, n in sorted(Counter(i.route for i in self.items).items())
            },
            "adjudicated": len(adjudicated),
            "agrees_with_expert": sum(1 for i in adjudicated if i.crowd_label == i.old_label),
            "committed_methods": dict(sorted(self.committed_methods.items())),
        }


def _counts(keys: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(keys).items()))


@dataclass
class _VoteTable:
    """Every vote read, first copy of each vote id, as aligned lists."""

    index: dict[str, int]
    annotators: list[str]
    labels: list[str]

    @classmethod
    def of(cls, votes: Iterable[VoteRow]) -> _VoteTable:
        index: dict[str, int] = {}
        annotators: list[str] = []
        labels: list[str] = []
        for v in votes:
            if v.vote_id not in index:
                index[v.vote_id] = len(annotators)
                annotators.append(v.annotator_id)
                labels.append(v.label)
        return cls(index, annotators, labels)


def relabel(
    record: Mapping[Item, tuple[LabelCommitted, LogPosition]],
    votes: Iterable[VoteRow],
    classes: Mapping[str, list[str]],
    method: str,
    params: Mapping[str, str] | None = None,
    *,
    schema_version: str = "",
    slices: Mapping[str, str] | None = None,
) -> Relabeling:
    """The labels of record recomputed under ``method`` (see the module doc).

    ``classes``: each schema version's classes in schema order (the tie rule's order).
    Raises :class:`~labeltrail.exceptions.QualityError` for an unknown method, a parameter it
    does not take, or a schema version (given, or of any label when none is) with no votes.
    """
    given = dict(params or {})
    model_check = make_method(method, given)  # unknown method or parameter: fails first
    del model_check
    resolved = {k: str(v) for k, v in method_parameters(method).items()} | given
    table = _VoteTable.of(votes)
    versions = sorted({v for _, v in record})
    if schema_version:
        versions = [schema_version]
    run = Relabeling(method, resolved)
    for version in versions:
        items = sorted(item for item in record if item[1] == version)
        crowd = _crowd_labels(record, items, table, classes.get(version), method, given)
        if crowd is None and schema_version:
            raise QualityError(f"schema version {version!r} has no votes to relabel")
        posteriors, crowd_votes = crowd or ({}, {})
        for item in items:
            label = record[item][0]
            run.committed_methods[label.method] += 1
            run.items.append(_item_label(label, posteriors.get(item), crowd_votes, slices))
        run.votes += sum(len(crowd_votes.get(i, ())) for i in items)
    if not run.votes:
        raise QualityError("no committed label names a vote on the log: nothing to relabel")
    return run


def _crowd_labels(
    record: Mapping[Item, tuple[LabelCommitted, LogPosition]],
    items: list[Item],
    table: _VoteTable,
    classes: list[str] | None,
    method: str,
    params: Mapping[str, str],
) -> tuple[dict[Item, tuple[str, list[float]]], dict[Item, list[tuple[str, str]]]] | None:
    """The method fitted on the crowd votes the items' labels name: each item's (label,
    posterior), and its votes. None when they name no vote that was read."""
    codes: list[int] = []
    rows: list[int] = []
    for code, item in enumerate(items):
        index = table.index
        for vote_id in record[item][0].vote_ids:
            row = index.get(vote_id)
            if row is not None:
                codes.append(code)
                rows.append(row)
    if not rows:
        return None
    at = np.asarray(rows, dtype=np.int64)
    annotators = np.asarray(table.annotators, dtype=object)[at]
    answers = np.asarray(table.labels, dtype=object)[at]
    if classes is None:
        classes = sorted(set(answers.tolist()))
    votes = Votes.from_long(np.asarray(codes, dtype=np.int64), annotators, answers, classes=classes)
    model = make_method(method, params).fit(votes)
    posterior = np.round(np.asarray(model.posteriors_, dtype=np.float64), _PLACES)
    names = [classes[k] for k in model.labels_.tolist()]
    fitted = {
        items[int(code)]: (names[n], posterior[n].tolist())
        for n, code in enumerate(votes.item_ids.tolist())
    }
    per_item: dict[Item, list[tuple[str, str]]] = {}
    for code, a, lab in zip(codes, annotators.tolist(), answers.tolist(), strict=True):
        per_item.setdefault(items[code], []).append((a, lab))
    return fitted, per_item


def _item_label(
    label: LabelCommitted,
    crowd: tuple[str, list[float]] | None,
    votes: Mapping[Item, list[tuple[str, str]]],
    slices: Mapping[str, str] | None,
) -> ItemLabel:
    item = (label.comment_id, label.schema_version)
    new_label, new_posterior = label.label, list(label.distribution)
    if label.route == _CROWD and crowd is not None:
        new_label, new_posterior = crowd
    return ItemLabel(
        comment_id=label.comment_id,
        schema_version=label.schema_version,
        route=label.route,
        classes=list(label.classes),
        old_label=label.label,
        old_posterior=list(label.distribution),
        new_label=new_label,
        new_posterior=new_posterior,
        crowd_label=None if crowd is None else crowd[0],
        votes=list(votes.get(item, ())),
        slice=(slices or {}).get(label.comment_id, ""),
    )


def run_labels(
    run: Relabeling,
    record: Mapping[Item, tuple[LabelCommitted, LogPosition]],
    run_id: str,
) -> list[LabelCommitted]:
    """The run's ``LabelCommitted`` events: one per item, naming the run, the method and its
    parameters, caused by the label of record it stands beside (read at ``source_positions``).
    A crowd label gets the method's label and posterior; a verdict or a machine-made label is
    carried as it is."""
    out: list[LabelCommitted] = []
    for item in run.items:
        label, position = record[(item.comment_id, item.schema_version)]
        crowd = label.route == _CROWD
        label_id = derive_id("label", item.comment_id, item.schema_version, label.route, run_id)
        params = {**run.params, "tie_rule": TIE_RULE, "relabels": label.label_id}
        out.append(
            LabelCommitted.create(
                producer=PRODUCER,
                id_parts=(label_id,),
                occurred_at=label.envelope.occurred_at,
                causation_id=label.event_id,
                correlation_id=item.comment_id,
                label_id=label_id,
                comment_id=item.comment_id,
                schema_version=item.schema_version,
                label=item.new_label,
                classes=item.classes,
                distribution=item.new_posterior,
                confidence=max(item.new_posterior) if item.new_posterior else label.confidence,
                route=label.route,
                method=run.method if crowd else label.method,
                method_params=params if crowd else {**label.method_params, "run": run_id},
                vote_ids=list(label.vote_ids),
                annotator_ids=list(label.annotator_ids),
                adjudication_id=label.adjudication_id,
                machine_made=label.machine_made,
                gold_label=label.gold_label,
                source_positions=[position],
                run_id=run_id,
            )
        )
    return out
