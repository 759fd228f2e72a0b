"""``labeltrail relabel --source clickhouse``: the labels of record and the votes they name,
read columnar from the ClickHouse projection, up to the log positions it covers.

The projector records, with each batch, the next offset it will read of every partition
(``consumer_positions``, written after the batch's rows). Those are the positions a run
read up to: every query here keeps only rows before them (a batch written but not yet
recorded is left out), and the run reports them as the log path reports the topics' ends,
so a caught-up projection gives the same run, run id included.

Where it gives the same run, a run reads ``label_votes`` (each live label with the votes it
names resolved when projected, :func:`fill_label_votes`; ``relabel_label_votes.sql``): one
narrow table, no vote scan, no join (about 2.1 CPU-s for the whole article-scale read against
4.8). Otherwise (a label row not in it, a vote past the covered positions, a vote id not
found) the labels of record are chosen in ClickHouse (``projections/queries/relabel_labels.sql``:
only the items with several rows are grouped) with what a run computes from (label, route,
method, distribution) and two 64-bit hashes of each vote id they name; the votes are scanned in
log order (``relabel_votes.sql``: the two hashes, the annotator and the label as Arrow
dictionaries). The join is a hash table's (pandas ``Index.get_indexer`` on the first hash, each
id's first copy), checked by the second (a collision is an error, not a wrong vote): no vote
id string is read, no Python object made per vote, and per item only when a label is shown
or committed (``folds.relabel.LabelColumns``; its other fields are then fetched by position,
``relabel_label_rows.sql``). At article scale the read went from about 11 CPU-s (every column
of the chosen rows, the ids compared) to about 3; a string join in ClickHouse had cost about 9.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from labeltrail.clickhouse.client import (
    Client,
    client_from,
    command_named,
    run_named,
    run_named_arrow,
    run_named_arrow_stream,
)
from labeltrail.config import Settings
from labeltrail.events.base import LogPosition
from labeltrail.events.columnar import LabelCommittedRow
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import LabeltrailError
from labeltrail.folds.relabel import LabelColumns, VoteColumns, class_codes, first_seen_codes

__all__ = [
    "ProjectedHistory",
    "covered_positions",
    "fill_label_votes",
    "projector_consumer",
    "read_projected",
]


def projector_consumer(prefix: str) -> str:
    """The consumer name under which the projector of ``prefix`` records its positions."""
    return f"{prefix}.projector"


@dataclass
class ProjectedHistory:
    """What a run reads from the projection, and the log positions the projection covers."""

    positions: list[LogPosition]
    classes: dict[str, list[str]]
    versions: dict[str, tuple[LabelColumns, VoteColumns]]
    slices: dict[str, str]
    resolved: bool = False
    """whether it was read from ``label_votes`` (the votes resolved when projected), not by
    choosing among the labels and joining the votes"""


def covered_positions(client: Client, consumer: str, topics: list[str]) -> list[LogPosition]:
    """The next offset the projector will read of every partition of ``topics`` it has read
    (partitions it never read a record of cover nothing and are left out)."""
    rows = client.query(
        "SELECT topic, partition, max(next_offset) FROM consumer_positions FINAL "
        "WHERE consumer = {c:String} AND has({t:Array(String)}, topic) "
        "GROUP BY topic, partition ORDER BY topic, partition",
        parameters={"c": consumer, "t": topics},
    ).result_rows
    return [LogPosition(topic=str(t), partition=int(p), offset=int(o)) for t, p, o in rows]


def _bounds(positions: list[LogPosition], topic: str) -> tuple[list[int], list[int]]:
    at = [p for p in positions if p.topic == topic]
    return [p.partition for p in at], [p.offset for p in at]


def read_projected(client: Client, settings: Settings, *, slices: bool = True) -> ProjectedHistory:
    """The schemas' classes, the labels of record and the votes they name (and the comments'
    slices) from the projection of ``settings.topic_prefix``, up to the positions it covers."""
    prefix = settings.topic_prefix
    names = {s: topic_name(prefix, s) for s in ("schemas", "labels", "votes")}
    exists = client.query("EXISTS TABLE consumer_positions").result_rows[0][0]
    positions = (
        covered_positions(client, projector_consumer(prefix), list(names.values()))
        if exists
        else []
    )
    if not any(p.topic == names["labels"] for p in positions):
        raise LabeltrailError(
            f"the ClickHouse projection holds no labels of {prefix!r}: run 'labeltrail "
            "projections run' (or 'projections rebuild'), or read the log (--source log)"
        )
    parts, ends = _bounds(positions, names["labels"])
    vote_parts, vote_ends = _bounds(positions, names["votes"])
    schema_parts, schema_ends = _bounds(positions, names["schemas"])
    classes = {
        str(v): list(c)
        for v, c in client.query(
            "SELECT version, argMax(classes, (partition, offset)) FROM label_schemas "
            "WHERE topic = {t:String} AND offset < transform(partition, {p:Array(UInt32)}, "
            "{e:Array(UInt64)}, toUInt64(0)) GROUP BY version",
            parameters={"t": names["schemas"], "p": schema_parts, "e": schema_ends},
        ).result_rows
    }
    rows = _RowFetcher(settings, names["labels"], parts, ends)
    resolved = _resolved(client, names, (parts, ends), (vote_parts, vote_ends))
    if resolved is not None:
        versions = _resolved_versions(resolved, classes, rows)
    else:
        labels = run_named_arrow(
            client, "relabel_labels", topic=names["labels"], partitions=parts, ends=ends
        ).combine_chunks()
        votes = (
            run_named_arrow(
                client,
                "relabel_votes",
                topic=names["votes"],
                partitions=vote_parts,
                ends=vote_ends,
            )
            .unify_dictionaries()
            .combine_chunks()
        )
        versions = _versions(labels, votes, classes, rows)
    return ProjectedHistory(
        positions, classes, versions, _slices(client) if slices else {}, resolved is not None
    )


def fill_label_votes(client: Client, comments: Sequence[str] | None = None) -> None:
    """(Re)resolve into ``label_votes`` the live label rows of ``comments`` (None: every one)
    with the votes they name (``projections/queries/label_votes_fill.sql``)."""
    if comments is not None and not comments:
        return
    command_named(client, "label_votes_fill", all=comments is None, comments=list(comments or []))


def _resolved(
    client: Client,
    names: dict[str, str],
    labels: tuple[list[int], list[int]],
    votes: tuple[list[int], list[int]],
) -> pa.Table | None:
    """The labels of record with their votes from ``label_votes``, or None where it does not
    give the run exactly (a database without it, a label row not in it, a vote past the
    covered positions, a chosen label with a vote id not found): then labels and votes are
    read."""
    if not client.query("EXISTS TABLE label_votes").result_rows[0][0]:
        return None
    bounds: dict[str, Any] = {
        "topic": names["labels"],
        "partitions": labels[0],
        "ends": labels[1],
        "vote_partitions": votes[0],
        "vote_ends": votes[1],
    }
    (coverage,) = run_named(client, "label_votes_coverage", **bounds, vote_topic=names["votes"])
    if not coverage["covered"] or coverage["votes_ahead"]:
        return None
    del bounds["vote_partitions"], bounds["vote_ends"]
    table = run_named_arrow_stream(client, "relabel_label_votes", **bounds)
    if not table.column("complete").to_numpy().astype(bool).all():
        return None
    return table.combine_chunks()


def _list_codes(column: pa.ChunkedArray) -> tuple[NDArray[np.int64], NDArray[Any], NDArray[Any]]:
    """A column of lists of dictionary values: each value's code into the distinct names (one
    dictionary for every chunk), the names, and each list's length."""
    codes: list[NDArray[np.int64]] = []
    dictionaries: list[pa.Array] = []
    base = 0
    for chunk in column.chunks:
        values = chunk.flatten()
        if not pa.types.is_dictionary(values.type):
            values = pc.dictionary_encode(values)
        codes.append(values.indices.to_numpy(zero_copy_only=False).astype(np.int64) + base)
        dictionaries.append(values.dictionary)
        base += len(values.dictionary)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    if not dictionaries:
        return np.zeros(0, np.int64), np.zeros(0, dtype=object), lengths
    every = pa.concat_arrays(dictionaries).to_numpy(zero_copy_only=False)
    distinct, names = pd.factorize(every)
    flat = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    return distinct.astype(np.int64)[flat], np.asarray(names, dtype=object), lengths


def _resolved_versions(
    table: pa.Table, classes: dict[str, list[str]], rows: _RowFetcher
) -> dict[str, tuple[LabelColumns, VoteColumns]]:
    out: dict[str, tuple[LabelColumns, VoteColumns]] = {}
    for version, (start, end) in _runs(table.column("schema_version")).items():
        of_version = table.slice(start, end - start)
        names = classes.setdefault(version, [])
        annotator_codes, annotator_names, lengths = _list_codes(
            of_version.column("vote_annotators")
        )
        label_codes, label_names, _ = _list_codes(of_version.column("vote_labels"))
        if not label_codes.size:
            out[version] = (_label_columns(of_version, rows), VoteColumns.empty())
            continue
        item = np.repeat(np.arange(of_version.num_rows, dtype=np.int64), lengths)
        out[version] = (
            _label_columns(of_version, rows),
            _vote_columns(
                item, (annotator_codes, annotator_names), (label_codes, list(label_names)), names
            ),
        )
    return out


def _vote_columns(
    item: NDArray[np.int64],
    annotators: tuple[NDArray[np.int64], NDArray[Any]],
    labels: tuple[NDArray[np.int64], list[str]],
    classes: list[str],
) -> VoteColumns:
    """The votes as :class:`VoteColumns` from their codes into the names read: annotators in
    order of first vote, labels as codes into ``classes`` (filled, when empty, with the labels
    voted, sorted)."""
    annotator, annotator_ids = first_seen_codes(*annotators)
    label_codes, names = labels
    if not classes:
        classes.extend(sorted({str(names[j]) for j in np.unique(label_codes).tolist()}))
    return VoteColumns(item, annotator, annotator_ids, class_codes(label_codes, names, classes))


def _runs(values: pa.ChunkedArray) -> dict[str, tuple[int, int]]:
    """(start, end) of each value's run in a column sorted by it."""
    if not len(values):
        return {}
    codes = pc.dictionary_encode(values).combine_chunks()
    index = codes.indices.to_numpy()
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    ends = np.r_[starts[1:], index.shape[0]]
    names = codes.dictionary.to_pylist()
    return {names[index[s]]: (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}


def _versions(
    labels: pa.Table, votes: pa.Table, classes: dict[str, list[str]], rows: _RowFetcher
) -> dict[str, tuple[LabelColumns, VoteColumns]]:
    table = _VoteIndex.of(votes)
    out: dict[str, tuple[LabelColumns, VoteColumns]] = {}
    for version, (start, end) in _runs(labels.column("schema_version")).items():
        of_version = labels.slice(start, end - start)
        record = _label_columns(of_version, rows)
        out[version] = (record, table.named(of_version, classes.setdefault(version, [])))
    return out


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[NDArray[np.int64], list[str]]:
    """A dictionary column's codes and names."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    return array.indices.to_numpy().astype(np.int64), array.dictionary.to_pylist()


@dataclass
class _VoteIndex:
    """The votes read, indexed by the hash of their id: each id's first copy in log order."""

    index: pd.Index
    """the distinct hashes (a hash table)"""
    rows: NDArray[np.int64]
    """the row of each distinct hash's first copy"""
    checks: NDArray[np.uint64]
    """each vote's second hash of its id (sipHash64)"""
    annotators: tuple[NDArray[np.int64], list[str]]
    labels: tuple[NDArray[np.int64], list[str]]

    @classmethod
    def of(cls, votes: pa.Table) -> _VoteIndex:
        hashes = votes.column("hash").to_numpy().astype(np.uint64)
        index = pd.Index(hashes)
        rows = np.arange(hashes.shape[0], dtype=np.int64)
        if not index.is_unique:
            first = ~index.duplicated(keep="first")  # rows in log order: its first copy
            rows, index = rows[first], pd.Index(hashes[first])
        return cls(
            index,
            rows,
            votes.column("check").to_numpy().astype(np.uint64),
            _codes(votes.column("annotator_id")),
            _codes(votes.column("label")),
        )

    def named(self, labels: pa.Table, classes: list[str]) -> VoteColumns:
        """The votes the labels name, in item order and each label's vote order (as the log
        source joins them); ids the log does not hold are left out."""
        hashes = labels.column("vote_hashes").combine_chunks()
        offsets = hashes.offsets.to_numpy()
        wanted = hashes.values.to_numpy().astype(np.uint64)
        item = np.repeat(np.arange(labels.num_rows, dtype=np.int64), np.diff(offsets))
        # a hash table's look-ups (pandas): 0.3 CPU-s at article scale against 0.8 for a sort
        # of both sides and a sorted search
        at = self.index.get_indexer(wanted)
        found = at >= 0
        rows = self.rows[at[found]]
        checks = labels.column("vote_checks").combine_chunks().values.to_numpy()
        if not np.array_equal(checks.astype(np.uint64)[found], self.checks[rows]):
            raise LabeltrailError("two vote ids share a 64-bit hash: read this run from the log")
        if not rows.size:
            return VoteColumns.empty()
        annotator_codes, annotator_names = self.annotators
        label_codes, names = self.labels
        return _vote_columns(
            item[found],
            (annotator_codes[rows], np.asarray(annotator_names, dtype=object)),
            (label_codes[rows], names),
            classes,
        )


def _objects(table: pa.Table, name: str) -> NDArray[Any]:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=object)


_WHOLE = 20_000
"""Past this many rows asked at once, every live label row is fetched in one scan."""


@dataclass
class _RowFetcher:
    """The label fields ``relabel_labels`` leaves out, fetched by position when a row is
    asked for (an engine opened for the fetch: the run's own is closed by then)."""

    settings: Settings
    topic: str
    partitions: list[int]
    ends: list[int]
    fetched: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    whole: bool = False
    """whether every live row has been fetched"""

    asked: int = 0

    def fetch(self, at: list[tuple[int, int]], *, every: bool = False) -> None:
        """Fetch the rows at these (partition, offset) positions not fetched yet (``every``:
        all of them)."""
        missing = [p for p in dict.fromkeys(at) if p not in self.fetched]
        if (not missing and not every) or self.whole:
            return
        every = every or len(missing) > _WHOLE
        client = client_from(self.settings)
        try:
            table = run_named_arrow(
                client,
                "relabel_label_rows",
                topic=self.topic,
                partitions=self.partitions,
                ends=self.ends,
                all=every,
                at_partitions=[] if every else [p for p, _ in missing],
                at_offsets=[] if every else [o for _, o in missing],
            )
        finally:
            client.close()
        self.whole = every
        for row in table.to_pylist():
            self.fetched[(int(row["partition"]), int(row["offset"]))] = row

    def __call__(self, partition: int, offset: int) -> dict[str, Any]:
        # rows asked one at a time: past 64 (a commit not prefetched), all in one scan
        self.asked += 1
        self.fetch([(partition, offset)], every=self.asked > 64)
        return self.fetched[(partition, offset)]


def _label_columns(table: pa.Table, rows: _RowFetcher) -> LabelColumns:
    """One version's labels of record as columns; a row is made from them when asked (its
    other fields fetched by position, ``prefetch`` fetching many in one query)."""
    dist = table.column("distribution").combine_chunks()
    offsets = dist.offsets.to_numpy()
    flat = dist.values.to_numpy()
    widths = np.diff(offsets)
    square = widths.size and bool((widths == widths[0]).all())
    partitions = table.column("partition").to_numpy()
    log_offsets = table.column("offset").to_numpy()

    def distributions(at: NDArray[np.int64]) -> NDArray[np.float64]:
        if square:
            rows: NDArray[np.float64] = flat.reshape(-1, int(widths[0]))[at]
            return rows
        return np.array([flat[offsets[i] : offsets[i + 1]] for i in at.tolist()], np.float64)

    def where(i: int) -> tuple[int, int]:
        return int(partitions[i]), int(log_offsets[i])

    def prefetch(at: Sequence[int]) -> None:
        rows.fetch([where(i) for i in at])

    def row(i: int) -> tuple[LabelCommittedRow, tuple[str, int, int]]:
        partition, offset = where(i)
        wide = rows(partition, offset)
        narrow = table.slice(i, 1).to_pylist()[0]
        label = LabelCommittedRow(
            label_id=wide["label_id"],
            comment_id=narrow["comment_id"],
            schema_version=narrow["schema_version"],
            label=narrow["label"],
            classes=list(wide["classes"]),
            distribution=list(narrow["distribution"]),
            confidence=wide["confidence"],
            route=narrow["route"],
            method=narrow["method"],
            method_params=dict(wide["method_params"]),
            vote_ids=list(wide["vote_ids"]),
            annotator_ids=list(wide["annotator_ids"]),
            adjudication_id=wide["adjudication_id"],
            machine_made=bool(wide["machine_made"]),
            gold_label=wide["gold_label"],
            run_id=None,
            event_id=wide["event_id"],
            occurred_ms=int(wide["occurred_ms"]),
            recorded_ms=int(wide["recorded_ms"]),
        )
        return label, (rows.topic, partition, offset)

    return LabelColumns(
        _objects(table, "comment_id"),
        _objects(table, "label"),
        _objects(table, "route"),
        _objects(table, "method"),
        distributions,
        row,
        prefetch,
    )


def _slices(client: Client) -> dict[str, str]:
    """Each comment's slice attribute (its first copy), where it has one."""
    rows = client.query(
        "SELECT comment_id, argMin(attributes['slice'], (partition, offset)) AS s FROM comments "
        "GROUP BY comment_id HAVING s != ''"
    ).result_rows
    return {str(c): str(s) for c, s in rows}
