"""The projector's batch writer: decode log records, insert them through Arrow, record positions.

A batch's positions row is inserted only after every data row of the batch, so a restart
resumes at the first record not fully projected and a crash re-inserts at most one batch,
which the tables keyed on event id absorb. No Kafka here: the live projector, the rebuild and
the benchmark all feed it ``LogRecord`` values (``docs/audit.md``, "Projections").
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from labeltrail.clickhouse.client import Client
from labeltrail.clickhouse.erasure import erase_comments
from labeltrail.clickhouse.relabel import fill_label_votes
from labeltrail.clickhouse.tables import RAW_TABLE, TABLES, Projection
from labeltrail.events.base import Event
from labeltrail.events.crypto import ForgettingKeyring, reveal_event
from labeltrail.events.models import CommentsErased, LabelCommitted, VoteCast
from labeltrail.events.serde import decode
from labeltrail.events.topics import foreign
from labeltrail.exceptions import SerializationError, WrongTopicError

__all__ = ["BatchResult", "BatchWriter", "LogRecord", "table_checksums"]


@dataclass(frozen=True)
class LogRecord:
    """One record as read from the log."""

    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None


@dataclass
class BatchResult:
    """What one batch did: rows projected per table, and the records that did not decode."""

    projected: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[LogRecord, SerializationError]] = field(default_factory=list)
    positions: dict[tuple[str, int], int] = field(default_factory=dict)


class BatchWriter:
    """Writes batches of log records into ClickHouse for one consumer name."""

    def __init__(
        self,
        client: Client,
        consumer: str,
        *,
        on_topic: dict[str, frozenset[str]] | None = None,
        keyring: ForgettingKeyring | None = None,
    ) -> None:
        """``on_topic``: the event types each topic carries (:func:`events_on`); a record of
        another type is rejected as ``wrong_topic`` instead of projected. None: no check.
        ``keyring``: sealed comment text is revealed with it (erased text reads as erased),
        and a ``CommentsErased`` re-projects its comments (``docs/erasure.md``); None: sealed
        text is projected as it is on the log."""
        self.client = client
        self.consumer = consumer
        self.on_topic = on_topic
        self.keyring = keyring

    def stored_positions(self) -> dict[tuple[str, int], int]:
        """The next offset to read per (topic, partition), as recorded with the data."""
        result = self.client.query(
            "SELECT topic, partition, max(next_offset) FROM consumer_positions FINAL "
            "WHERE consumer = {c:String} GROUP BY topic, partition",
            parameters={"c": self.consumer},
        )
        return {(str(t), int(p)): int(o) for t, p, o in result.result_rows}

    def project(self, records: Sequence[LogRecord]) -> BatchResult:
        """Write a batch and then its positions (for callers with nothing to do in between)."""
        result = self.write_records(records)
        self.record_positions(result.positions)
        return result

    def write_records(self, records: Sequence[LogRecord]) -> BatchResult:
        """Decode and insert a batch; its positions are in the result, not yet recorded."""
        result = BatchResult()
        items: list[tuple[Event, str, int, int]] = []
        positions = result.positions
        for record in records:
            key = (record.topic, record.partition)
            positions[key] = max(positions.get(key, 0), record.offset + 1)
            try:
                event = decode(record.value)
                wrong = self.on_topic and foreign(
                    self.on_topic, record.topic, event.envelope.event_type
                )
                if wrong:
                    raise WrongTopicError(wrong)
            except SerializationError as exc:
                result.rejected.append((record, exc))
                continue
            if self.keyring is not None:
                if isinstance(event, CommentsErased):
                    self.keyring.forget(event.key_ids)
                event = reveal_event(event, self.keyring)
            items.append((event, record.topic, record.partition, record.offset))
            result.by_type[event.envelope.event_type] += 1
        result.rows = self.write_events(items)
        result.projected = len(items)
        return result

    def write_events(self, items: Sequence[tuple[Event, str, int, int]]) -> Counter[str]:
        """Insert decoded events (event, topic, partition, offset) into every table they feed."""
        projection = Projection()
        projection.extend(items)
        for name, table in projection.arrow_tables().items():
            self.client.insert_arrow(name, table)
        fill_label_votes(self.client, _resolving(items))
        if self.keyring is not None:
            for event, *_ in items:
                if isinstance(event, CommentsErased):
                    erase_comments(self.client, event.comment_ids)
        return Counter(projection.counts)

    def record_positions(self, positions: dict[tuple[str, int], int]) -> None:
        """Record the next offset per partition; call only after the batch's data is written."""
        if not positions:
            return
        now = dt.datetime.now(dt.UTC)
        self.client.insert(
            "consumer_positions",
            [[self.consumer, t, p, o, now] for (t, p), o in sorted(positions.items())],
            column_names=["consumer", "topic", "partition", "next_offset", "updated_at"],
        )


def _resolving(items: Sequence[tuple[Event, str, int, int]]) -> list[str]:
    """The comments whose live label rows ``label_votes`` resolves again after this batch:
    those of its live labels and of its votes (a vote projected after its label completes the
    row)."""
    comments = {
        event.comment_id
        for event, *_ in items
        if isinstance(event, VoteCast) or (isinstance(event, LabelCommitted) and not event.run_id)
    }
    return sorted(comments)


def table_checksums(client: Client) -> dict[str, tuple[int, int]]:
    """Row count and an order-free content checksum of every projected table (read FINAL).

    The checksum is the wrapping sum of ``cityHash64`` over whole rows, so two databases with
    the same rows in any order and any part layout give the same figure.
    """
    out: dict[str, tuple[int, int]] = {}
    for table in (RAW_TABLE, *TABLES):
        rows = client.query(
            "SELECT count(), sum(cityHash64(*)) FROM {t:Identifier} FINAL",
            parameters={"t": table.name},
        ).result_rows
        count, checksum = rows[0]
        out[table.name] = (int(count), int(checksum or 0))
    return out
