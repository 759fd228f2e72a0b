"""A stage's periodic progress line: what it read, did and holds, and how far behind it is.

Without it a stage logs "assigned N partitions" and then nothing, so an operator cannot tell a
stage that keeps up from one that is stuck, or one that holds its input waiting for a schema.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["PROGRESS_LOG_S", "Progress"]

log = logging.getLogger("labeltrail.kafka.runner")

PROGRESS_LOG_S = 30.0
"""How often a stage logs its progress while anything changes (and once when it catches up)."""


class _Stats(Protocol):
    consumed: int
    restored: int
    processed: int
    rejected: int
    emitted: int


class Progress:
    """Logs ``name``'s counts every ``PROGRESS_LOG_S`` while they move, and why it holds input.

    ``held_reason`` is the fold's own sentence (``fold.held_reason()``, None when it holds
    nothing); ``lag`` the records not yet read on the assigned partitions.
    """

    def __init__(
        self,
        name: Callable[[], str],
        stats: _Stats,
        held_reason: Callable[[], str | None],
        lag: Callable[[], int | None],
    ) -> None:
        self._name = name
        self._stats = stats
        self._held_reason = held_reason
        self._lag = lag
        self._last_at = time.monotonic()
        self._last_consumed = -1
        self._last_held: str | None = None

    def tick(self, *, caught_up: bool = False) -> None:
        """Log if the interval has passed and anything changed, or on catching up."""
        now = time.monotonic()
        consumed = self._stats.consumed
        due = now - self._last_at >= PROGRESS_LOG_S and consumed != self._last_consumed
        if not (due or caught_up):
            return
        held = self._held_reason()
        if not due and consumed == self._last_consumed and held == self._last_held:
            return
        self._last_at, self._last_consumed, self._last_held = now, consumed, held
        s = self._stats
        lag = self._lag()
        log.info(
            "%s: %s; consumed %d (restored %d, processed %d, rejected %d), emitted %d%s%s",
            self._name(),
            "caught up" if caught_up else "working",
            consumed,
            s.restored,
            s.processed,
            s.rejected,
            s.emitted,
            "" if lag is None else f", lag {lag}",
            f"; {held}" if held else "",
        )
