"""What a fold is, and what it may return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from labeltrail.events.base import Event, LogPosition

__all__ = ["Fold", "Output", "Rejected"]


@dataclass(frozen=True)
class Rejected:
    """An input refused by policy; the runner sends it to the dead-letter topic."""

    reason: str


Output = Event | Rejected


class Fold(Protocol):
    """A stateful, deterministic processor.

    ``inputs`` are topic suffixes (see :mod:`labeltrail.events.topics`). ``apply`` must give
    the same outputs, with the same event ids, whenever it sees the same inputs in the same
    per-key order: that is what makes replay and crash recovery exact.
    """

    name: str
    inputs: tuple[str, ...]

    def apply(self, event: Event, position: LogPosition) -> list[Output]: ...
