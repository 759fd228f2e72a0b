"""Re-project erased comments: their rows rewritten as erased, the old copies gone from disk.

The projector calls :func:`erase_comments` when it reads a ``CommentsErased``. Every row that
holds an erased comment's text or author (its ``comments`` row, the ``assignments`` of it and
of its replies, which carry it as thread context, and their raw ``events`` rows) is rebuilt
from its raw event, read through :func:`~labeltrail.events.crypto.erased` and inserted again,
exactly as a projection of the log after the erasure would write it; then the old rows are
deleted by part (a mutation that names event ids and part names, never text: ClickHouse keeps
its mutation commands on disk), and the tables' outdated parts are dropped at once instead of
after ``old_parts_lifetime``. Inserting before deleting makes a crash in between harmless: the
erasure event is read again and finishes the work.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labeltrail.clickhouse.client import Client
from labeltrail.clickhouse.tables import RAW_TABLE, TABLES, Projection
from labeltrail.events.base import Envelope, Event
from labeltrail.events.crypto import ERASED, SEALED_FIELDS, erased
from labeltrail.events.models import EVENT_TYPES

__all__ = ["ErasureResult", "erase_comments", "outdated_parts"]

_TABLE_OF = {t.event_type: t.name for t in TABLES}
_ERASABLE = tuple(sorted(SEALED_FIELDS))
"""The event types whose rows can hold comment text (their typed tables, and raw rows)."""


@dataclass
class ErasureResult:
    """What one erasure rewrote: rows per table, and tables whose old parts outlived the wait."""

    rows: dict[str, int] = field(default_factory=dict)
    lingering: list[str] = field(default_factory=list)


_DELETE_ROUNDS = 5
_PART_BLOCKS = re.compile(r"_(\d+)_(\d+)_\d+(?:_\d+)?$")


def _newest_block(part: str) -> int:
    """The highest block number a part holds (``<partition>_<min>_<max>_<level>[_<mutation>]``)."""
    found = _PART_BLOCKS.search(part)
    return int(found.group(2)) if found else -1


def _stale_parts(client: Client, table: str, event_ids: list[str]) -> list[str]:
    """The parts of ``table`` holding an older copy of one of ``event_ids`` (the newest copy,
    the one just inserted, is in the part with the highest block number)."""
    parts: dict[str, list[str]] = {}
    for event_id, part in client.query(
        "SELECT event_id, _part FROM {t:Identifier} WHERE event_id IN {ids:Array(String)}",
        parameters={"t": table, "ids": event_ids},
    ).result_rows:
        parts.setdefault(str(event_id), []).append(str(part))
    stale: set[str] = set()
    for held in parts.values():
        if len(held) > 1:
            newest = max(held, key=_newest_block)
            stale.update(p for p in held if p != newest)
    return sorted(stale)


def _column(client: Client, sql: str, **parameters: Any) -> list[Any]:
    return [row[0] for row in client.query(sql, parameters=parameters).result_rows]


def _utc(value: dt.datetime) -> dt.datetime:
    """A DateTime64(3, 'UTC') as read: naive in UTC from some clients."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _event(row: Sequence[Any]) -> Event:
    """The event a raw ``events`` row holds (envelope columns and JSON payload)."""
    (event_id, event_type, occurred, recorded, producer, causation, correlation, payload) = row
    envelope = Envelope(
        event_id=event_id,
        event_type=event_type,
        occurred_at=_utc(occurred),
        recorded_at=_utc(recorded),
        producer=producer,
        causation_id=causation or None,
        correlation_id=correlation or None,
    )
    return EVENT_TYPES[event_type].model_validate({**json.loads(payload), "envelope": envelope})


def erase_comments(
    client: Client, comment_ids: Sequence[str], *, purge_timeout: float = 120.0
) -> ErasureResult:
    """Rewrite every row holding the text or author of ``comment_ids`` as erased, and remove
    the old rows from disk (waiting up to ``purge_timeout`` seconds for ClickHouse to drop
    the parts they were in). Idempotent: rows already erased are left alone."""
    result = ErasureResult()
    ids = sorted(set(comment_ids))
    if not ids:
        return result
    texts = _column(
        client,
        "SELECT DISTINCT text FROM comments WHERE comment_id IN {ids:Array(String)} "
        "AND text != {erased:String}",
        ids=ids,
        erased=ERASED,
    )
    replies = _column(
        client,
        "SELECT DISTINCT comment_id FROM comments WHERE hasAny(parent_ids, {ids:Array(String)})",
        ids=ids,
    )
    rows = client.query(
        "SELECT event_id, event_type, occurred_at, recorded_at, producer, causation_id, "
        "correlation_id, payload, topic, partition, offset FROM events "
        "WHERE event_type IN {types:Array(String)} AND comment_id IN {near:Array(String)}",
        parameters={"types": list(_ERASABLE), "near": sorted(set(ids) | set(replies))},
    ).result_rows
    changed: dict[str, tuple[Event, str, int, int]] = {}
    for row in rows:
        event = _event(row[:8])
        after = erased(event, ids, texts)
        if after is not event:
            changed[event.event_id] = (after, str(row[8]), int(row[9]), int(row[10]))
    if not changed:
        return result
    event_ids = sorted(changed)
    typed = {_TABLE_OF[item[0].envelope.event_type] for item in changed.values()}
    tables = [RAW_TABLE.name, *sorted(typed)]
    projection = Projection()
    projection.extend(changed.values())
    for name, arrow in projection.arrow_tables().items():
        client.insert_arrow(name, arrow)
        result.rows[name] = arrow.num_rows
    # Each event is one row per table, so an event found twice has its old copy in the part
    # of the older blocks. Looked up again after each delete: a background merge can move an
    # old row to another part between a look-up and its delete (a single look-up before the
    # insert left one behind now and then).
    for _ in range(_DELETE_ROUNDS):
        stale = {table: _stale_parts(client, table, event_ids) for table in tables}
        if not any(stale.values()):
            break
        for table, parts in stale.items():
            if parts:
                client.command(
                    f"ALTER TABLE {table} DELETE WHERE event_id IN {{ids:Array(String)}} "
                    "AND _part IN {parts:Array(String)} SETTINGS mutations_sync = 2",
                    parameters={"ids": event_ids, "parts": parts},
                )
    result.lingering = _purge(client, tables, purge_timeout)
    return result


def outdated_parts(client: Client, table: str) -> list[str]:
    """The table's parts that are replaced but still on disk."""
    return _column(
        client,
        "SELECT name FROM system.parts WHERE database = currentDatabase() "
        "AND table = {t:String} AND NOT active",
        t=table,
    )


def _gone(client: Client, tables: Sequence[str], timeout: float) -> list[str]:
    """Wait up to ``timeout`` seconds for ``tables`` to have no outdated part; those that do."""
    waiting = list(tables)
    deadline = time.monotonic() + timeout
    while waiting:
        waiting = [t for t in waiting if outdated_parts(client, t)]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return waiting


def _purge(client: Client, tables: Sequence[str], timeout: float) -> list[str]:
    """Have ClickHouse drop the outdated parts of ``tables`` now; the tables it did not drop
    them from within ``timeout`` seconds (their parts go after ``old_parts_lifetime``).

    With ``old_parts_lifetime`` at 0 the cleanup thread (every second on these tables, their
    DDL) removes them. The embedded engine keeps parts it was sent as data blocks by this
    process referenced until the table is attached again (chdb 25: ``INSERT ... VALUES`` parts
    go, Arrow and Native inserts stay), so a table still holding some after a few seconds is
    detached and attached (a moment in which queries of it fail).
    """
    for table in tables:
        client.command(f"ALTER TABLE {table} MODIFY SETTING old_parts_lifetime = 0")
    try:
        waiting = _gone(client, tables, min(timeout, 2.0))
        for table in waiting:
            client.command(f"DETACH TABLE {table} SYNC")
            client.command(f"ATTACH TABLE {table}")
        return _gone(client, waiting, timeout)
    finally:
        for table in tables:
            client.command(f"ALTER TABLE {table} RESET SETTING old_parts_lifetime")
