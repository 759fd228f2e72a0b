"""Replay the log into a fresh ClickHouse database and compare table contents.

A rebuild is the projector run against an empty database until it has read every partition to
its end, without writing anything back to the log (dead letters already on the log are
projected like any other event). Because every row is a function of its record and position,
the rebuilt tables have the same content checksums as the live ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from labeltrail.clickhouse.client import Client, apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector, ProjectorStats
from labeltrail.clickhouse.writer import table_checksums
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = ["RebuildResult", "compare_checksums", "rebuild", "run_until_caught_up"]


@dataclass(frozen=True)
class RebuildResult:
    """The rebuilt database, what the projector did, and how fast."""

    dsn: str
    stats: ProjectorStats
    seconds: float

    @property
    def rate(self) -> float:
        """Events projected per second."""
        return self.stats.projected / self.seconds if self.seconds > 0 else 0.0


def run_until_caught_up(
    projector: Projector, *, timeout: float = 600.0, idle_seconds: float = 0.5
) -> ProjectorStats:
    """Run a projector in a thread until it has read every partition to its end."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            projector.run(stop, idle_seconds=idle_seconds)
        except BaseException as exc:  # re-raised below: a failed projection must fail loudly
            errors.append(exc)
            stop.set()

    thread = threading.Thread(target=target, name="projector")
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not projector.caught_up.wait(0.2):
            if stop.is_set() or time.monotonic() > deadline:
                break
    finally:
        stop.set()
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    if not projector.caught_up.is_set():
        raise LabeltrailError(f"projector did not catch up within {timeout:.0f}s")
    return projector.stats


def rebuild(
    settings: Settings,
    into: str,
    *,
    client: Client | None = None,
    timeout: float = 3_600.0,
    batch_size: int = 20_000,
) -> RebuildResult:
    """Replay every topic of ``settings`` into the empty database at DSN ``into``."""
    ch = client or client_from(settings, dsn=into)
    try:
        apply_ddl(ch)
        if int(ch.query("SELECT count() FROM events").result_rows[0][0]) > 0:
            raise LabeltrailError(f"{into} is not empty: a rebuild needs a fresh database")
        projector = Projector(ch, settings, batch_size=batch_size, emit_dead_letters=False)
        started = time.monotonic()
        stats = run_until_caught_up(projector, timeout=timeout)
        return RebuildResult(into, stats, time.monotonic() - started)
    finally:
        if client is None:
            ch.close()  # chdb serves one directory per process at a time


def compare_checksums(
    left: dict[str, tuple[int, int]], right: dict[str, tuple[int, int]]
) -> list[str]:
    """The tables whose row count or checksum differ (empty when the contents are equal)."""
    return sorted(t for t in left.keys() | right.keys() if left.get(t) != right.get(t))


__all__ += ["table_checksums"]
