"""The batch path of a replay: a finished history's records, batch by batch, through the
consensus and labels folds, and the labels it commits set against the ones on the log.

Pure: the caller reads the log (``kafka.log.read_values``), topic after topic in the order of
:func:`replay_topics`, and hands each fetched batch of record values to
:meth:`BatchReplay.feed` (or to :meth:`~BatchReplay.decode` and :meth:`~BatchReplay.fold`, to
time them apart). ``labeltrail replay labels`` and ``ops/bench/replay.py`` both drive it
(``docs/replay.md``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labeltrail.events.columnar import TaskRow, VoteRow, decode_rows
from labeltrail.events.models import (
    AnnotatorReliabilityUpdated,
    LabelCommitted,
    TaskCreated,
    VoteCast,
)
from labeltrail.events.topics import TOPICS
from labeltrail.folds.base import Rejected
from labeltrail.folds.consensus import ConsensusFold
from labeltrail.folds.labels import LabelRow, LabelsFold

__all__ = [
    "LABELS_IN",
    "REPLAY_TOPICS",
    "BatchReplay",
    "Comparison",
    "Difference",
    "Label",
    "LoggedLabels",
    "committed",
    "compare",
    "consensus_only",
    "fold_rows",
    "labels_on_log",
    "replay_topics",
]

REPLAY_TOPICS = ("schemas", "tasks", "votes", "adjudications")
"""The topics a replay reads, in this order: the consensus fold's schemas, tasks and votes,
and the labels fold's adjudications. Kafka orders records within a partition, not across
topics, so a replay reads each topic whole in turn. Reliability estimates (``quality``) are
not read: the live consensus stage weighed each vote by the estimates it had read by then,
an interleaving the log does not keep, so a replay weighs every vote by the prior
(``docs/replay.md``, "Limits")."""

LABELS_IN = "labels-in"
"""The virtual topic the labels fold reads in a replay: each consensus output, and each input
the consensus fold does not consume alone (schemas, adjudications, scores), right after the
outputs it caused, at consecutive offsets."""


_ON_TOPIC = {spec.suffix: frozenset(spec.events) for spec in TOPICS}


def _kind(row: object) -> str:
    if type(row) is VoteRow:
        return "VoteCast"
    return "TaskCreated" if type(row) is TaskRow else type(row).__name__


def replay_topics(labels: LabelsFold) -> tuple[str, ...]:
    """:data:`REPLAY_TOPICS`, and ``scores`` when ``labels`` commits machine-made labels."""
    return REPLAY_TOPICS + (("scores",) if labels.auto_accept_threshold is not None else ())


class Label(NamedTuple):
    """What a replay compares of a ``LabelCommitted`` (beside its ``label_id``)."""

    comment_id: str
    label: str
    route: str


def committed(out: object) -> tuple[str, Label] | None:
    """``(label_id, label)`` of a labels output (a :class:`LabelRow` or a ``LabelCommitted``),
    else ``None``."""
    if isinstance(out, LabelRow):
        return out.label_id, Label(out.comment_id, out.label, "consensus")
    if isinstance(out, LabelCommitted):
        return out.label_id, Label(out.comment_id, out.label, out.route)
    return None


def consensus_only(row: object) -> bool:
    """An input only the consensus fold reads (the labels fold is not shown it)."""
    return (
        type(row) is VoteRow
        or type(row) is TaskRow
        or isinstance(row, VoteCast | TaskCreated | AnnotatorReliabilityUpdated)
    )


def fold_rows(
    rows: Sequence[Any], consensus: ConsensusFold, labels: LabelsFold, offset: int
) -> tuple[list[Any], list[Any], int]:
    """The folds over one batch of decoded rows: runs of consensus-only inputs go to consensus
    in one call; any other input goes to consensus and then, after the outputs it caused, to
    labels (as per event). Returns the consensus outputs, the labels outputs and the labels
    fold's next offset on :data:`LABELS_IN`."""
    outs: list[Any] = []
    label_in: list[Any] = []
    start = 0
    for end in [*(i for i, r in enumerate(rows) if not consensus_only(r)), len(rows)]:
        segment = consensus.apply_batch(rows[start : end + 1])
        outs += segment
        label_in += [o for o in segment if not isinstance(o, Rejected)]
        if end < len(rows):
            label_in.append(rows[end])
        start = end + 1
    labelled = labels.apply_batch(label_in, LABELS_IN, 0, offset)
    return outs, labelled, offset + len(label_in)


@dataclass
class BatchReplay:
    """Two folds fed batches of record values; what they committed and rejected so far."""

    consensus: ConsensusFold
    labels: LabelsFold
    keep: bool = False
    """keep every output in :attr:`outputs` / :attr:`label_outputs` (to compare paths)"""
    offset: int = 0
    """the labels fold's next offset on :data:`LABELS_IN`"""
    records: int = 0
    votes: int = 0
    commits: dict[str, Label] = field(default_factory=dict)
    """label id -> label, every label committed so far"""
    rejected: Counter[str] = field(default_factory=Counter)
    """dead-letter reason code -> count: decode errors and the folds' policy rejections"""
    outputs: list[Any] = field(default_factory=list)
    label_outputs: list[Any] = field(default_factory=list)

    def feed(self, values: Sequence[bytes], topic: str | None = None) -> None:
        """One fetched batch of record values, decoded and folded (see :meth:`decode`)."""
        self.fold(self.decode(values, topic))

    def decode(self, values: Sequence[bytes], topic: str | None = None) -> list[Any]:
        """``decode_rows``; what does not decode is counted by its reason code. Given the
        ``topic`` suffix the values were read from, a record of a type that does not belong
        there is left out and counted as ``wrong_topic``, as a live stage dead-letters it."""
        decoded = decode_rows(values)
        self.records += len(values)
        for _, exc in decoded.errors:
            self.rejected[exc.reason_code] += 1
        if topic is None:
            return decoded.rows
        allowed = _ON_TOPIC[topic]
        rows = [r for r in decoded.rows if _kind(r) in allowed]
        self.rejected["wrong_topic"] += len(decoded.rows) - len(rows)
        return rows

    def fold(self, rows: Sequence[Any]) -> None:
        self.votes += sum(1 for r in rows if type(r) is VoteRow or isinstance(r, VoteCast))
        outs, labelled, self.offset = fold_rows(rows, self.consensus, self.labels, self.offset)
        self.rejected["policy_rejected"] += sum(1 for o in outs if isinstance(o, Rejected))
        self.count(labelled)
        if self.keep:
            self.outputs += outs
            self.label_outputs += labelled

    def count(self, labelled: Iterable[Any]) -> None:
        """Labels outputs into :attr:`commits` (rejections counted)."""
        for out in labelled:
            if isinstance(out, Rejected):
                self.rejected["policy_rejected"] += 1
            label = committed(out)
            if label is not None:
                self.commits[label[0]] = label[1]

    def finish(self) -> None:
        """Every record has been fed: what the consensus fold still holds is rejected."""
        tail = self.consensus.drain()
        self.rejected["policy_rejected"] += len(tail)
        if self.keep:
            self.outputs += tail


# the labels on the log, against the replay's ------------------------------------------------


@dataclass
class LoggedLabels:
    """The ``LabelCommitted`` events of a labels topic: every distinct version of each label
    id (a label id is written once, or again with the same content by a retry)."""

    labels: dict[str, list[Label]] = field(default_factory=dict)
    unreadable: int = 0
    """records that do not decode (the labels stage writes none)"""


def labels_on_log(batches: Iterable[Sequence[bytes]]) -> LoggedLabels:
    """The labels of a labels topic, read as fetched batches of record values."""
    out = LoggedLabels()
    for values in batches:
        decoded = decode_rows(values)
        out.unreadable += len(decoded.errors)
        for row in decoded.rows:
            label = committed(row)
            if label is not None:
                versions = out.labels.setdefault(label[0], [])
                if label[1] not in versions:
                    versions.append(label[1])
    return out


class Difference(NamedTuple):
    """A label id on which the log and the replay disagree."""

    label_id: str
    logged: tuple[Label, ...]
    """every version on the log (none: the replay's label is not on the log)"""
    recomputed: Label | None
    """the replay's (``None``: the replay did not commit it)"""

    @property
    def kind(self) -> str:
        if not self.logged:
            return "extra"
        return "missing" if self.recomputed is None else "differing"


@dataclass(frozen=True)
class Comparison:
    """The labels on the log against the replay's, label id by label id."""

    read: int
    """label ids on the log"""
    recomputed: int
    """label ids the replay committed"""
    equal: int
    differences: list[Difference]
    unreadable: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for d in self.differences if d.kind == kind)

    @property
    def agree(self) -> bool:
        return not self.differences and not self.unreadable

    def summary(self) -> dict[str, int]:
        return {
            "read": self.read,
            "recomputed": self.recomputed,
            "equal": self.equal,
            "differing": self.count("differing"),
            "missing": self.count("missing"),
            "extra": self.count("extra"),
            "unreadable": self.unreadable,
        }


def compare(logged: LoggedLabels, recomputed: Mapping[str, Label]) -> Comparison:
    """Equal: a label id whose only version on the log is the replay's label. Differing: on
    both sides, some version not the same. Missing: on the log only. Extra: in the replay
    only. Differences in label id order."""
    differences: list[Difference] = []
    equal = 0
    for label_id in sorted(logged.labels.keys() | recomputed.keys()):
        versions = tuple(logged.labels.get(label_id, ()))
        ours = recomputed.get(label_id)
        if ours is not None and versions == (ours,):
            equal += 1
        else:
            differences.append(Difference(label_id, versions, ours))
    return Comparison(
        read=len(logged.labels),
        recomputed=len(recomputed),
        equal=equal,
        differences=differences,
        unreadable=logged.unreadable,
    )
