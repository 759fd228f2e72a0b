"""Deterministic identities.

A derived event's id is a function of its inputs, so reprocessing after a crash emits the
same id and every sink can deduplicate on it.
"""

from __future__ import annotations

import uuid

__all__ = ["LABELTRAIL_NAMESPACE", "derive_id", "new_id"]

LABELTRAIL_NAMESPACE = uuid.UUID("f093ab41-f07b-51f7-98ae-aaa7219b3d18")
"""uuid5(NAMESPACE_URL, "labeltrail"): fixed forever, or every derived id changes."""


def derive_id(kind: str, *parts: object) -> str:
    """A uuid5 of ``kind`` and the parts, in order; lists and tuples are joined sorted.

    >>> derive_id("LabelCommitted", "c-1", "v3", ["b", "a"]) == derive_id(
    ...     "LabelCommitted", "c-1", "v3", ["a", "b"])
    True
    """
    rendered: list[str] = [kind]
    for part in parts:
        if isinstance(part, list | tuple | set | frozenset):
            rendered.append(",".join(sorted(str(p) for p in part)))
        else:
            rendered.append(str(part))
    return str(uuid.uuid5(LABELTRAIL_NAMESPACE, "\x1f".join(rendered)))


def new_id() -> str:
    """A random id, for facts that enter the system from outside."""
    return str(uuid.uuid4())
