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
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
class _Version:
    """One schema version: its labels of record and the method fitted on the votes they name,
    as arrays over its items (``crowd`` -1 where an item has no vote)."""

    items: list[Item]
    labels: list[LabelCommitted]
    classes: list[str]
    crowd: NDArray[np.int64]
    """(n_items,) the method's class code of each item"""
    posterior: NDArray[np.float64]
    """(n_items, n_classes) the method's posteriors, rounded"""
    vote_item: NDArray[np.int64]
    """(n_votes,) the item of each vote"""
    vote_annotator: NDArray[Any]
    vote_label: NDArray[Any]
    new: list[str] = field(init=False)
    """each item's label in the run"""
    _order: NDArray[np.int64] | None = field(default=None, init=False, repr=False)
    _bounds: list[int] = field(default_factory=list, init=False, repr=False)
    """where each item's votes start in ``_order`` (made with it, once)"""

    def __post_init__(self) -> None:
        classes, crowd = self.classes, self.crowd.tolist()
        self.new = [
            classes[c] if c >= 0 and label.route == _CROWD else label.label
            for c, label in zip(crowd, self.labels, strict=True)
        ]

    def changed(self) -> list[int]:
        pairs = zip(self.new, self.labels, strict=True)
        return [i for i, (new, label) in enumerate(pairs) if new != label.label]

    def votes_of(self, i: int) -> list[tuple[str, str]]:
        """(annotator, label) of item ``i``'s votes, in the order read."""
        if self._order is None:
            self._order = np.argsort(self.vote_item, kind="stable")
            ends = np.arange(len(self.items) + 1)
            self._bounds = np.searchsorted(self.vote_item[self._order], ends).tolist()
        at = self._order[self._bounds[i] : self._bounds[i + 1]]
        return list(
            zip(self.vote_annotator[at].tolist(), self.vote_label[at].tolist(), strict=True)
        )

    def item(self, i: int, slices: Mapping[str, str]) -> ItemLabel:
        label = self.labels[i]
        crowd = int(self.crowd[i])
        posterior = list(label.distribution)
        if crowd >= 0 and label.route == _CROWD:
            posterior = self.posterior[i].tolist()
        return ItemLabel(
            comment_id=label.comment_id,
            schema_version=label.schema_version,
            route=label.route,
            classes=list(label.classes),
            old_label=label.label,
            old_posterior=list(label.distribution),
            new_label=self.new[i],
            new_posterior=posterior,
            crowd_label=None if crowd < 0 else self.classes[crowd],
            votes=self.votes_of(i),
            slice=slices.get(label.comment_id, ""),
        )


@dataclass
class Relabeling:
    """A run's labels and how they differ from the labels of record, held as arrays per schema
    version; :class:`ItemLabel` rows are made only for what is asked (the changed items for a
    report, every item for a commit)."""

    method: str
    params: dict[str, str]
    """every parameter of the method, as text (the given ones and the defaults)"""
    versions: list[_Version] = field(default_factory=list)
    slices: Mapping[str, str] = field(default_factory=dict)
    committed_methods: Counter[str] = field(default_factory=Counter)
    """the methods of the labels of record (e.g. ``mv`` for a history committed by majority
    vote, ``expert-adjudication`` for verdicts)"""

    @property
    def votes(self) -> int:
        return sum(int(v.vote_item.shape[0]) for v in self.versions)

    @property
    def items(self) -> list[ItemLabel]:
        return [v.item(i, self.slices) for v in self.versions for i in range(len(v.items))]

    @property
    def changed(self) -> list[ItemLabel]:
        return [v.item(i, self.slices) for v in self.versions for i in v.changed()]

    def summary(self) -> dict[str, Any]:
        """Counts: items, votes, changed; changes by class (old -> new), by slice, schema
        version and route; adjudicated items whose crowd label under the method agrees with
        the expert."""
        changed = self.changed
        routes: Counter[str] = Counter()
        adjudicated = agrees = 0
        for v in self.versions:
            crowd = v.crowd.tolist()
            for c, label in zip(crowd, v.labels, strict=True):
                routes[label.route] += 1
                if label.route == "adjudication" and c >= 0:
                    adjudicated += 1
                    agrees += v.classes[c] == label.label
        return {
            "method": self.method,
            "params": self.params,
            "items": sum(routes.values()),
            "votes": self.votes,
            "changed": len(changed),
            "by_class": _counts(f"{i.old_label}->{i.new_label}" for i in changed),
            "by_slice": _counts(i.slice for i in changed),
            "by_schema_version": _counts(i.schema_version for i in changed),
            "by_route": {
                route: {"items": n, "changed": sum(1 for i in changed if i.route == route)}
                for route, n in sorted(routes.items())
            },
            "adjudicated": adjudicated,
            "agrees_with_expert": agrees,
            "committed_methods": dict(sorted(self.committed_methods.items())),
        }


def _counts(keys: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(keys).items()))


@dataclass
class _VoteTable:
    """Every vote read (the first copy of each vote id): its row by vote id, and the
    annotators and labels as arrays."""

    index: dict[str, int]
    annotators: NDArray[Any]
    labels: NDArray[Any]

    @classmethod
    def of(cls, votes: Iterable[VoteRow]) -> _VoteTable:
        rows = list(votes)
        ids = list(map(itemgetter(0), rows))
        # dict() keeps the last value of a repeated key: built backwards, the first copy wins.
        index = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))
        return cls(
            index,
            np.asarray(list(map(itemgetter(3), rows)), dtype=object),
            np.asarray(list(map(itemgetter(5), rows)), dtype=object),
        )


def _codes(values: list[Any], order: Mapping[Any, int]) -> NDArray[np.int64]:
    return np.fromiter(map(order.__getitem__, values), np.int64, len(values))


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
    make_method(method, given)  # an unknown method or parameter fails before any work
    resolved = {k: str(v) for k, v in method_parameters(method).items()} | given
    table = _VoteTable.of(votes)
    versions = [schema_version] if schema_version else sorted({v for _, v in record})
    run = Relabeling(method, resolved, slices=slices or {})
    for version in versions:
        items = sorted(item for item in record if item[1] == version)
        fitted = _fit(
            [record[i][0] for i in items], items, table, classes.get(version), method, given
        )
        if not fitted.vote_item.shape[0] and schema_version:
            raise QualityError(f"schema version {version!r} has no votes to relabel")
        run.versions.append(fitted)
        run.committed_methods.update(label.method for label in fitted.labels)
    if not run.votes:
        raise QualityError("no committed label names a vote on the log: nothing to relabel")
    return run


def _fit(
    labels: list[LabelCommitted],
    items: list[Item],
    table: _VoteTable,
    classes: list[str] | None,
    method: str,
    params: Mapping[str, str],
) -> _Version:
    """The method fitted once on every vote the labels name (items in code order, classes in
    schema order, annotators in order of first vote: no sort of the ids)."""
    # The join of each label's vote ids to the votes read, as C-level maps: no Python
    # statement per vote.
    named = list(chain.from_iterable(label.vote_ids for label in labels))
    per_label = np.fromiter(map(len, (label.vote_ids for label in labels)), np.int64, len(labels))
    found = np.fromiter(map(table.index.get, named, repeat(-1)), np.int64, len(named))
    known = found >= 0
    at = found[known]
    vote_item = np.repeat(np.arange(len(labels), dtype=np.int64), per_label)[known]
    annotators = table.annotators[at]
    answers = table.labels[at]
    if classes is None:
        classes = sorted(set(answers.tolist()))
    n, k = len(items), len(classes)
    if not at.size:
        empty = np.zeros((n, k))
        return _Version(
            items,
            labels,
            classes,
            np.full(n, -1, dtype=np.int64),
            empty,
            vote_item,
            annotators,
            answers,
        )
    try:
        label_codes = _codes(answers.tolist(), {c: j for j, c in enumerate(classes)})
    except KeyError as exc:
        raise QualityError(f"a vote's label {exc.args[0]!r} is not a class") from exc
    names = annotators.tolist()
    who = {a: j for j, a in enumerate(dict.fromkeys(names))}
    annotator_codes = _codes(names, who)
    coded = Votes(
        vote_item,
        annotator_codes,
        label_codes,
        np.arange(n),
        np.asarray(list(who), dtype=object),
        np.asarray(classes, dtype=object),
    )
    model = make_method(method, params).fit(coded)
    crowd = np.where(np.bincount(vote_item, minlength=n) > 0, model.labels_, -1)
    # float64 before rounding: a float32 posterior rounded in float32 is not 6 places.
    posterior = np.round(np.asarray(model.posteriors_, dtype=np.float64), _PLACES).astype(
        np.float64
    )
    return _Version(items, labels, classes, crowd, posterior, vote_item, annotators, answers)


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
        changes: dict[str, Any] = {
            "label_id": label_id,
            "source_positions": [position],
            "run_id": run_id,
            "method_params": {**label.method_params, "run": run_id},
        }
        if crowd:
            changes |= {
                "label": item.new_label,
                "distribution": item.new_posterior,
                "confidence": max(item.new_posterior),
                "method": run.method,
                "method_params": {**run.params, "tie_rule": TIE_RULE, "relabels": label.label_id},
            }
        out.append(
            LabelCommitted.create(
                producer=PRODUCER,
                id_parts=(label_id,),
                occurred_at=label.envelope.occurred_at,
                causation_id=label.event_id,
                correlation_id=item.comment_id,
                **(label.model_dump(exclude={"envelope"}) | changes),
            )
        )
    return out
