"""Deterministic pseudo-random draws from ids, so a fold's choices replay exactly."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable

__all__ = ["draw", "rank"]


def draw(*parts: object) -> float:
    """A number in [0, 1) that depends only on ``parts``."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def rank(candidates: Iterable[str], *parts: object, first: int | None = None) -> list[str]:
    """``candidates`` in an order that depends only on ``parts`` (rendezvous hashing).

    The order does not depend on the order the candidates come in, so callers need not sort
    them; ``first=k`` returns only the first k, in linear time.
    """

    def key(c: str) -> tuple[float, str]:
        return (draw(*parts, c), c)

    if first is None:
        return sorted(candidates, key=key)
    return heapq.nsmallest(first, candidates, key=key)
