"""Deterministic pseudo-random draws from ids, so a fold's choices replay exactly."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["draw", "rank"]


def draw(*parts: object) -> float:
    """A number in [0, 1) that depends only on ``parts``."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def rank(candidates: Sequence[str], *parts: object) -> list[str]:
    """``candidates`` in an order that depends only on ``parts`` (rendezvous hashing)."""
    return sorted(candidates, key=lambda c: draw(*parts, c))
