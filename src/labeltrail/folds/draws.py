"""Deterministic pseudo-random draws from ids, so a fold's choices replay exactly."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable

__all__ = ["draw", "rank"]


def _unit(text: str) -> float:
    """A number in [0, 1) from the 8-byte blake2b digest of ``text``."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def draw(*parts: object) -> float:
    """A number in [0, 1) that depends only on ``parts``."""
    return _unit("\x1f".join(map(str, parts)))


def rank(candidates: Iterable[str], *parts: object, first: int | None = None) -> list[str]:
    """``candidates`` in an order that depends only on ``parts`` (rendezvous hashing).

    The order does not depend on the order the candidates come in, so callers need not sort
    them; ``first=k`` returns only the first k, in linear time. Each candidate's key is
    ``draw(*parts, candidate)``; the joined ``parts`` are rendered and hashed once per call,
    not once per candidate (tasking ranks the whole crowd for every task).
    """
    # blake2b is a stream hash: the state after the joined parts, copied and fed a candidate,
    # digests exactly the joined parts and the candidate. Keys are built in one loop and
    # compared as tuples (no key function called per comparison).
    copy = hashlib.blake2b("".join(f"{p}\x1f" for p in parts).encode(), digest_size=8).copy
    keyed: list[tuple[float, str]] = []
    for c in candidates:
        h = copy()
        h.update(str(c).encode())
        keyed.append((int.from_bytes(h.digest(), "big") / 2**64, c))
    if first is None:
        keyed.sort()
    else:
        keyed = heapq.nsmallest(first, keyed)
    return [c for _, c in keyed]
