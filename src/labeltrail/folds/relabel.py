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
never one. Labels are read as :class:`~labeltrail.events.columnar.LabelCommittedRow` (the
columnar reader's rows; an event is made into one).

``reliability-weighted`` (the live consensus stage's method) is not a batch estimator: its
weights are the reliability estimates the stage had read when the vote arrived. Each of its
labels records them (``method_params["estimates"]``, one per vote, with ``prior_accuracy``:
the consensus update's parameters, which the labels fold copies), so a run under it makes
each crowd label's posterior again from its votes and those estimates (read from the quality
topic by event id) with the consensus fold's own rules
(:class:`~labeltrail.folds.consensus_weights.Reliabilities`, as
:func:`~labeltrail.folds.consensus_weights.reproduce_posterior` does): on the history it
committed, nothing changes. ``docs/replay.md`` ("What-if relabeling").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.base import LogPosition, from_epoch_millis
from labeltrail.events.columnar import LabelCommittedRow, VoteRow
from labeltrail.events.ids import derive_id
from labeltrail.events.models import AnnotatorReliabilityUpdated, LabelCommitted
from labeltrail.exceptions import QualityError
from labeltrail.folds.consensus_weights import PRIOR, Reliabilities, parse_estimates
from labeltrail.quality import TIE_RULE, Votes
from labeltrail.quality.methods import make_method, method_parameters

__all__ = [
    "PRODUCER",
    "RELIABILITY_WEIGHTED",
    "ItemLabel",
    "LabelColumns",
    "Relabeling",
    "VoteColumns",
    "check_method",
    "labels_of_record",
    "relabel",
    "relabel_columns",
    "run_id_for",
    "run_labels",
]

PRODUCER = "relabel"
_CROWD = "consensus"
_PLACES = 6
"""Posteriors are rounded as the consensus fold rounds them (``quality.item.normalise``)."""

RELIABILITY_WEIGHTED = "reliability-weighted"
"""The live consensus stage's method: a run under it reproduces each label from the
estimates it records (module doc); it takes no parameter."""

Item = tuple[str, str]
"""(comment id, schema version)"""
Label = LabelCommittedRow
Position = LogPosition | tuple[str, int, int]
"""where a label was read: a ``LogPosition`` or (topic, partition, offset)"""
Record = Mapping[Item, tuple[Label, Position]]


_COMMENT = attrgetter("comment_id")
_LABEL = attrgetter("label")
_METHOD = attrgetter("method")
_VOTE_IDS = attrgetter("vote_ids")
_ROUTE = attrgetter("route")


def _order(label: Label) -> tuple[int, int, str]:
    return (label.recorded_ms, label.occurred_ms, label.event_id)


def labels_of_record(
    labels: Iterable[tuple[LabelCommitted | Label, Position]],
) -> dict[Item, tuple[Label, Position]]:
    """Each item's latest live label and where it was read (labels of runs are left out)."""
    out: dict[Item, tuple[Label, Position]] = {}
    for label, position in labels:
        if label.run_id is not None:
            continue
        row = LabelCommittedRow.of(label) if isinstance(label, LabelCommitted) else label
        item = (row.comment_id, row.schema_version)
        known = out.get(item)
        if known is None or _order(row) > _order(known[0]):
            out[item] = (row, position)
    return out


def check_method(method: str, params: Mapping[str, str]) -> None:
    """Raise :class:`~labeltrail.exceptions.QualityError` for an unknown method or a parameter
    it does not take (before anything is read)."""
    if method == RELIABILITY_WEIGHTED:
        for key in params:
            raise QualityError(
                f"{RELIABILITY_WEIGHTED} takes no parameter {key!r}: it reproduces each label "
                "from the reliability estimates the label records"
            )
        return
    make_method(method, params)


def _resolved(method: str, given: Mapping[str, str]) -> dict[str, str]:
    if method == RELIABILITY_WEIGHTED:
        return {}
    return {k: str(v) for k, v in method_parameters(method).items()} | dict(given)


def _logpos(position: Position) -> LogPosition:
    if isinstance(position, LogPosition):
        return position
    topic, partition, offset = position
    return LogPosition(topic=topic, partition=partition, offset=offset)


def run_id_for(
    method: str, params: Mapping[str, str], schema_version: str, positions: Sequence[LogPosition]
) -> str:
    """A run's id, from what it computed and the log it read: the same run made again on the
    same log has the same id (and the same label ids), so committing it twice adds nothing.
    The positions count as a set, and a partition read to offset 0 (nothing read) not at all:
    the log's reader lists every partition's end and the ClickHouse projection only those it
    has read, so both sources give one id for one log."""
    return derive_id(
        "relabel",
        method,
        [f"{k}={v}" for k, v in sorted(params.items())],
        schema_version or "*",
        sorted(f"{p.topic}:{p.partition}:{p.offset}" for p in positions if p.offset),
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
class LabelColumns:
    """One schema version's labels of record as columns, items in comment id order: what a
    run computes and reports from. A label's whole row (and where it was read) is made only
    for an item shown or committed (``row``), so a source that reads columns (the ClickHouse
    projection) builds no object per item."""

    comment_ids: NDArray[Any]
    labels: NDArray[Any]
    """(n_items,) each item's label of record"""
    routes: NDArray[Any]
    methods: NDArray[Any]
    distributions: Callable[[NDArray[np.int64]], NDArray[np.float64]]
    """the labels' distributions at the given items, (len, n_classes)"""
    row: Callable[[int], tuple[Label, Position]]
    """item ``i``'s label of record and where it was read"""
    prefetch: Callable[[Sequence[int]], None] = lambda at: None
    """make the rows of these items ready at once (a source that fetches rows on demand
    fetches them in one query instead of one each)"""

    def __len__(self) -> int:
        return int(self.comment_ids.shape[0])

    @classmethod
    def of(cls, read: Sequence[tuple[Label, Position]]) -> LabelColumns:
        """From rows (the log's reader), in the order given."""
        labels = [label for label, _ in read]

        def column(get: Callable[[Label], Any]) -> NDArray[Any]:
            return np.asarray(list(map(get, labels)), dtype=object)

        def distributions(at: NDArray[np.int64]) -> NDArray[np.float64]:
            return np.array([labels[i].distribution for i in at.tolist()], dtype=np.float64)

        return cls(
            column(_COMMENT),
            column(_LABEL),
            column(_ROUTE),
            column(_METHOD),
            distributions,
            read.__getitem__,
        )


@dataclass(frozen=True)
class VoteColumns:
    """The votes the labels of record of one schema version name, one row per vote in item
    order (and, within an item, in the order its label names them): its item (an index into
    the :class:`LabelColumns`), its annotator (a code into ``annotator_ids``, in order of
    first vote) and its label (a code into the version's classes)."""

    item: NDArray[np.int64]
    annotator: NDArray[np.int64]
    annotator_ids: NDArray[Any]
    label: NDArray[np.int64]

    @classmethod
    def empty(cls) -> VoteColumns:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, np.zeros(0, dtype=object), none)


def first_seen_codes(
    codes: NDArray[np.int64], names: NDArray[Any]
) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """``codes`` into ``names`` recoded in order of first appearance (the order the rows
    reader gives annotators), with the names in that order; names never used are dropped."""
    # each name's first row by a minimum per name (no sort of the codes: 0.01 s for 2.2
    # million votes against 0.2 for np.unique)
    size = max(int(names.shape[0]), 1)
    first = np.full(size, codes.shape[0], dtype=np.int64)
    np.minimum.at(first, codes, np.arange(codes.shape[0], dtype=np.int64))
    used = np.flatnonzero(first < codes.shape[0])
    order = used[np.argsort(first[used], kind="stable")]
    recode = np.full(size, -1, dtype=np.int64)
    recode[order] = np.arange(order.shape[0], dtype=np.int64)
    return recode[codes], names[order]


def class_codes(
    codes: NDArray[np.int64], names: Sequence[str], classes: Sequence[str]
) -> NDArray[np.int64]:
    """Label ``codes`` into ``names`` as codes into ``classes``; a used name that is not a
    class is a :class:`~labeltrail.exceptions.QualityError`."""
    where = {c: j for j, c in enumerate(classes)}
    lookup = np.asarray([where.get(n, -1) for n in names], dtype=np.int64)
    out = lookup[codes] if codes.size else codes
    if (out < 0).any():
        raise QualityError(
            f"a vote's label {names[int(codes[np.argmax(out < 0)])]!r} is not a class"
        )
    return out


@dataclass
class _Version:
    """One schema version: its labels of record and the method fitted on the votes they name,
    as arrays over its items (``crowd`` -1 where an item has no vote)."""

    record: LabelColumns
    classes: list[str]
    crowd: NDArray[np.int64]
    """(n_items,) the method's class code of each item"""
    posterior: NDArray[np.float64]
    """(n_items, n_classes) the method's posteriors, rounded"""
    votes: VoteColumns
    new: NDArray[Any] = field(init=False)
    """each item's label in the run"""
    is_crowd: NDArray[np.bool_] = field(init=False)
    """whether the run gives the item the method's label (a crowd label with votes)"""
    _order: NDArray[np.int64] | None = field(default=None, init=False, repr=False)
    _bounds: list[int] = field(default_factory=list, init=False, repr=False)
    """where each item's votes start in ``_order`` (made with it, once)"""

    def __post_init__(self) -> None:
        named = np.asarray([*self.classes, ""], dtype=object)[self.crowd]  # -1: ""
        self.is_crowd = (self.crowd >= 0) & (self.record.routes == _CROWD)
        self.new = np.where(self.is_crowd, named, self.record.labels)

    @property
    def vote_item(self) -> NDArray[np.int64]:
        return self.votes.item

    def changed(self) -> list[int]:
        changed: list[int] = np.flatnonzero(self.new != self.record.labels).tolist()
        return changed

    def posterior_shift(self) -> NDArray[np.float64]:
        """(n_items,) the largest change of any class's probability between the label of
        record's posterior and the run's (0 where the run carries the label)."""
        shift = np.zeros(len(self.record))
        at = np.flatnonzero(self.is_crowd)
        if at.size:
            old = self.record.distributions(at)
            shift[at] = np.abs(old - self.posterior[at]).max(axis=1)
        return shift

    def votes_of(self, i: int) -> list[tuple[str, str]]:
        """(annotator, label) of item ``i``'s votes, in the order read."""
        if self._order is None:
            self._order = np.argsort(self.vote_item, kind="stable")
            ends = np.arange(len(self.record) + 1)
            self._bounds = np.searchsorted(self.vote_item[self._order], ends).tolist()
        at = self._order[self._bounds[i] : self._bounds[i + 1]]
        names = self.votes.annotator_ids[self.votes.annotator[at]].tolist()
        # -1: a label that is not a class (a verdict's vote under reliability-weighted)
        said = [self.classes[j] if j >= 0 else "" for j in self.votes.label[at].tolist()]
        return list(zip(names, said, strict=True))

    def item(self, i: int, slices: Mapping[str, str]) -> ItemLabel:
        label, _ = self.record.row(i)
        crowd = int(self.crowd[i])
        posterior = list(label.distribution)
        if self.is_crowd[i]:
            posterior = self.posterior[i].tolist()
        return ItemLabel(
            comment_id=label.comment_id,
            schema_version=label.schema_version,
            route=label.route,
            classes=list(label.classes),
            old_label=label.label,
            old_posterior=list(label.distribution),
            new_label=str(self.new[i]),
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
        return [
            v.item(i, self.slices) for v in self.versions for i in _ready(v, range(len(v.record)))
        ]

    @property
    def changed(self) -> list[ItemLabel]:
        return [v.item(i, self.slices) for v in self.versions for i in _ready(v, v.changed())]

    def summary(self) -> dict[str, Any]:
        """Counts: items, votes, changed; changes by class (old -> new), by slice, schema
        version and route; adjudicated items whose crowd label under the method agrees with
        the expert."""
        changed = self.changed
        shifts = [v.posterior_shift() for v in self.versions]
        shift = np.concatenate(shifts) if shifts else np.zeros(0)
        routes: Counter[str] = Counter()
        adjudicated = agrees = 0
        for v in self.versions:
            routes.update(_tally(v.record.routes))
            expert = np.flatnonzero((v.record.routes == "adjudication") & (v.crowd >= 0))
            named = np.asarray(v.classes, dtype=object)[v.crowd[expert]]
            adjudicated += int(expert.size)
            agrees += int(np.count_nonzero(named == v.record.labels[expert]))
        return {
            "method": self.method,
            "params": self.params,
            "items": sum(routes.values()),
            "votes": self.votes,
            "changed": len(changed),
            "posterior_changed": int(np.count_nonzero(shift)),
            "max_posterior_change": round(float(shift.max(initial=0.0)), _PLACES),
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


def _ready(version: _Version, at: Sequence[int]) -> Sequence[int]:
    """``at``, the rows of those items made ready at once."""
    version.record.prefetch(at)
    return at


def _counts(keys: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(keys).items()))


def _tally(values: NDArray[Any]) -> dict[str, int]:
    """How often each value occurs (one sort, no Python statement per value)."""
    if not values.size:
        return {}
    names, counts = np.unique(values.astype(str), return_counts=True)
    return dict(zip(names.tolist(), counts.tolist(), strict=True))


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
    record: Record,
    votes: Iterable[VoteRow],
    classes: Mapping[str, list[str]],
    method: str,
    params: Mapping[str, str] | None = None,
    *,
    schema_version: str = "",
    slices: Mapping[str, str] | None = None,
    estimates: Mapping[str, AnnotatorReliabilityUpdated] | None = None,
) -> Relabeling:
    """The labels of record recomputed under ``method`` (see the module doc), from rows (the
    log's reader): the labels of record and the votes read.

    ``classes``: each schema version's classes in schema order (the tie rule's order).
    ``estimates``: the reliability estimates by event id (``reliability-weighted`` only).
    Raises :class:`~labeltrail.exceptions.QualityError` for an unknown method, a parameter it
    does not take, or a schema version (given, or of any label when none is) with no votes;
    under ``reliability-weighted``, for a crowd label that records no estimates or names an
    estimate or vote not on the log.
    """
    given = dict(params or {})
    check_method(method, given)  # an unknown method or parameter fails before any work
    table = _VoteTable.of(votes)
    versions = [schema_version] if schema_version else sorted({v for _, v in record})
    in_order = sorted(record.items(), key=itemgetter(0))
    of_version = {
        version: [at for item, at in in_order if item[1] == version] for version in versions
    }
    if method == RELIABILITY_WEIGHTED:
        run = Relabeling(method, _resolved(method, given), slices=slices or {})
        for version, read in of_version.items():
            fitted = _reproduce(read, table, classes.get(version), estimates or {})
            _add(run, fitted, version, schema_version)
        return _checked(run)
    columns: dict[str, tuple[LabelColumns, VoteColumns, list[str]]] = {}
    for version, read in of_version.items():
        coded, known = _coded([label for label, _ in read], table, classes.get(version))
        columns[version] = (LabelColumns.of(read), coded, known)
    return _fit_all(columns, method, given, schema_version, slices)


def relabel_columns(
    versions: Mapping[str, tuple[LabelColumns, VoteColumns]],
    classes: Mapping[str, list[str]],
    method: str,
    params: Mapping[str, str] | None = None,
    *,
    schema_version: str = "",
    slices: Mapping[str, str] | None = None,
) -> Relabeling:
    """As :func:`relabel`, from columns (the ClickHouse projection's reader: the labels of
    record and the votes they name, already joined and coded), for any method but
    ``reliability-weighted`` (which reads each label's estimates: rows only)."""
    given = dict(params or {})
    check_method(method, given)
    if method == RELIABILITY_WEIGHTED:
        raise QualityError(
            f"{RELIABILITY_WEIGHTED} reproduces each label from the estimates it records: "
            "read them from the log"
        )
    names = [schema_version] if schema_version else sorted(versions)
    columns = {}
    for version in names:
        record, coded = versions.get(version, (_no_labels(), VoteColumns.empty()))
        columns[version] = (record, coded, list(classes.get(version, [])))
    return _fit_all(columns, method, given, schema_version, slices)


def _no_labels() -> LabelColumns:
    def nothing(at: NDArray[np.int64]) -> NDArray[np.float64]:
        return np.zeros((0, 0))

    def no_row(i: int) -> tuple[Label, Position]:
        raise IndexError(i)

    none = np.zeros(0, dtype=object)
    return LabelColumns(none, none, none, none, nothing, no_row)


def _fit_all(
    columns: Mapping[str, tuple[LabelColumns, VoteColumns, list[str]]],
    method: str,
    given: Mapping[str, str],
    schema_version: str,
    slices: Mapping[str, str] | None,
) -> Relabeling:
    run = Relabeling(method, _resolved(method, given), slices=slices or {})
    for version, (record, coded, classes) in columns.items():
        _add(run, _fit(record, coded, classes, method, given), version, schema_version)
    return _checked(run)


def _add(run: Relabeling, fitted: _Version, version: str, schema_version: str) -> None:
    if not fitted.vote_item.shape[0] and schema_version:
        raise QualityError(f"schema version {version!r} has no votes to relabel")
    run.versions.append(fitted)
    run.committed_methods.update(_tally(fitted.record.methods))


def _checked(run: Relabeling) -> Relabeling:
    if not run.votes:
        raise QualityError("no committed label names a vote on the log: nothing to relabel")
    return run


@dataclass
class _Joined:
    """The votes the labels name, found among the votes read: per vote named, its label and
    where it is in the table (-1: not on the log)."""

    per_label: NDArray[np.int64]
    found: NDArray[np.int64]

    @classmethod
    def of(cls, labels: list[Label], table: _VoteTable) -> _Joined:
        # The join of each label's vote ids to the votes read, as C-level maps: no Python
        # statement per vote.
        ids = list(map(_VOTE_IDS, labels))
        named = list(chain.from_iterable(ids))
        per_label = np.fromiter(map(len, ids), np.int64, len(ids))
        found = np.fromiter(map(table.index.get, named, repeat(-1)), np.int64, len(named))
        return cls(per_label, found)


def _coded(
    labels: list[Label], table: _VoteTable, classes: list[str] | None
) -> tuple[VoteColumns, list[str]]:
    """The votes the labels name, coded (annotators in order of first vote: no sort of the
    ids), and the classes (the schema's, else the labels voted, sorted)."""
    joined = _Joined.of(labels, table)
    known = joined.found >= 0
    at = joined.found[known]
    vote_item = np.repeat(np.arange(len(labels), dtype=np.int64), joined.per_label)[known]
    answers = table.labels[at].tolist()
    if classes is None:
        classes = sorted(set(answers))
    if not at.size:
        return VoteColumns.empty(), classes
    try:
        label_codes = _codes(answers, {c: j for j, c in enumerate(classes)})
    except KeyError as exc:
        raise QualityError(f"a vote's label {exc.args[0]!r} is not a class") from exc
    names = table.annotators[at].tolist()
    who = {a: j for j, a in enumerate(dict.fromkeys(names))}
    annotator_ids = np.asarray(list(who), dtype=object)
    return VoteColumns(vote_item, _codes(names, who), annotator_ids, label_codes), classes


def _fit(
    record: LabelColumns,
    coded: VoteColumns,
    classes: list[str],
    method: str,
    params: Mapping[str, str],
) -> _Version:
    """The method fitted once on every vote the labels name (items in record order, classes
    in schema order)."""
    n, k = len(record), len(classes)
    if not coded.item.size:
        return _Version(record, classes, np.full(n, -1, dtype=np.int64), np.zeros((n, k)), coded)
    votes = Votes(
        coded.item,
        coded.annotator,
        coded.label,
        np.arange(n),
        coded.annotator_ids,
        np.asarray(classes, dtype=object),
    )
    model = make_method(method, params).fit(votes)
    crowd = np.where(np.bincount(coded.item, minlength=n) > 0, model.labels_, -1)
    # float64 before rounding: a float32 posterior rounded in float32 is not 6 places.
    posterior = np.round(np.asarray(model.posteriors_, dtype=np.float64), _PLACES).astype(
        np.float64
    )
    return _Version(record, classes, crowd, posterior, coded)


def _reproduce(
    read: list[tuple[Label, Position]],
    table: _VoteTable,
    classes: list[str] | None,
    estimates: Mapping[str, AnnotatorReliabilityUpdated],
) -> _Version:
    """Each reliability-weighted crowd label's posterior made again from its votes and the
    estimates it records, by the consensus fold's rules: each vote's log-likelihood column is
    the one :class:`Reliabilities` gives its annotator under the named estimate (computed
    once per annotator, estimate and prior), the columns are summed per item in vote order
    (the fold's float additions, in its order) and :meth:`Reliabilities.posterior` normalises
    and rounds the sum; the label is the first class with the top value. Verdicts and
    machine-made labels are carried (no crowd label: their estimates are not recorded)."""
    record = LabelColumns.of(read)
    labels = [label for label, _ in read]
    joined = _Joined.of(labels, table)
    vote_item = np.repeat(np.arange(len(labels), dtype=np.int64), joined.per_label)
    known = joined.found >= 0
    at = joined.found[known]
    annotators, answers = table.annotators[at], table.labels[at]
    names, given = annotators.tolist(), answers.tolist()
    if classes is None:
        classes = sorted(set(given))
    n, k = len(labels), len(classes)
    crowd = np.full(n, -1, dtype=np.int64)
    posterior = np.zeros((n, k))
    is_crowd = record.routes == _CROWD
    where = {c: j for j, c in enumerate(classes)}
    who = {a: j for j, a in enumerate(dict.fromkeys(names))}
    coded = VoteColumns(
        vote_item[known],
        _codes(names, who),
        np.asarray(list(who), dtype=object),
        np.fromiter((where.get(g, -1) for g in given), np.int64, len(given)),
    )
    if not is_crowd.any():
        return _Version(record, classes, crowd, posterior, coded)
    if not known[is_crowd[vote_item]].all():
        missing = int(np.count_nonzero(~known[is_crowd[vote_item]]))
        raise QualityError(f"{missing} vote(s) a crowd label names are not on the log")
    # Per crowd vote: the estimate its label names for it (in vote order, one per vote).
    named: list[str] = []
    priors: list[str] = []
    for label in (label for label, crowd_ in zip(labels, is_crowd, strict=True) if crowd_):
        params = label.method_params
        if "estimates" not in params or "prior_accuracy" not in params:
            raise QualityError(
                f"label {label.label_id} (method {label.method}) records no reliability "
                f"estimates: {RELIABILITY_WEIGHTED} reproduces only the labels it committed"
            )
        used = parse_estimates(params["estimates"])
        if len(used) != len(label.vote_ids) or list(label.classes) != classes:
            raise QualityError(f"label {label.label_id}: its estimates or classes do not fit")
        named.extend(e for _, e in used)
        priors.extend(repeat(params["prior_accuracy"], len(used)))
    crowd_votes = np.flatnonzero(is_crowd[vote_item])
    columns: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    logp = np.empty((crowd_votes.size, k))
    for j, v in enumerate(crowd_votes.tolist()):
        key = (names[v], named[j], priors[j])
        cols = columns.get(key)
        if cols is None:
            cols = columns[key] = _columns(key, classes, estimates)
        logp[j] = cols[given[v]]
    # Sums per item in vote order (a reduction along axis 0 adds row after row).
    crowd_items = vote_item[crowd_votes]
    starts = np.flatnonzero(np.r_[True, crowd_items[1:] != crowd_items[:-1]])
    sums = np.add.reduceat(logp, starts, axis=0)
    shared = Reliabilities(0.0)
    for i, row in zip(crowd_items[starts].tolist(), sums.tolist(), strict=True):
        posterior[i] = shared.posterior(row)
    crowd[crowd_items[starts]] = posterior[crowd_items[starts]].argmax(axis=1)
    return _Version(record, classes, crowd, posterior, coded)


def _columns(
    key: tuple[str, str, str],
    classes: list[str],
    estimates: Mapping[str, AnnotatorReliabilityUpdated],
) -> dict[str, list[float]]:
    """An annotator's log-likelihood columns under one named estimate (or the prior)."""
    annotator, used, prior = key
    if used == PRIOR:
        known: list[AnnotatorReliabilityUpdated] = []
    elif used in estimates:
        known = [estimates[used]]
    else:
        raise QualityError(f"reliability estimate {used} is not on the quality topic")
    return Reliabilities.from_estimates(float(prior), known).columns(annotator, classes)


def run_labels(run: Relabeling, run_id: str) -> list[LabelCommitted]:
    """The run's ``LabelCommitted`` events: one per item, naming the run, the method and its
    parameters, caused by the label of record it stands beside (read at ``source_positions``).
    A crowd label gets the method's label and posterior; a verdict or a machine-made label is
    carried as it is."""
    return [
        _run_label(run, version, i, run_id)
        for version in run.versions
        for i in _ready(version, range(len(version.record)))
    ]


def _run_label(run: Relabeling, version: _Version, i: int, run_id: str) -> LabelCommitted:
    """The run's label of item ``i`` of ``version``."""
    item = version.item(i, run.slices)
    label, position = version.record.row(i)
    crowd = label.route == _CROWD
    label_id = derive_id("label", item.comment_id, item.schema_version, label.route, run_id)
    changes: dict[str, Any] = {
        "label_id": label_id,
        "source_positions": [_logpos(position)],
        "run_id": run_id,
        "method_params": {**label.method_params, "run": run_id},
    }
    if crowd:
        # reliability-weighted keeps the estimates (and weights) its label recorded
        kept = label.method_params if run.method == RELIABILITY_WEIGHTED else {}
        changes |= {
            "label": item.new_label,
            "distribution": item.new_posterior,
            "confidence": max(item.new_posterior),
            "method": run.method,
            "method_params": {
                **kept,
                **run.params,
                "tie_rule": TIE_RULE,
                "relabels": label.label_id,
            },
        }
    fields = dict(zip(label._fields[:16], label[:16], strict=True))
    return LabelCommitted.create(
        producer=PRODUCER,
        id_parts=(label_id,),
        occurred_at=from_epoch_millis(label.occurred_ms),
        causation_id=label.event_id,
        correlation_id=item.comment_id,
        **(fields | changes),
    )
