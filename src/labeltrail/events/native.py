"""The native codec: ``labeltrail_native`` (``native/``, Rust) reading and writing by plans.

Used when it imports, its ``__version__`` is :data:`NATIVE_VERSION` and ``LABELTRAIL_NATIVE``
is not ``0``; otherwise :data:`native` is None and every event type runs on the pure-Python
codec (:mod:`labeltrail.events.codec`), the reference built from the same plans.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from labeltrail.events.base import EPOCH, epoch_millis
from labeltrail.events.plan import Compiled, contract
from labeltrail.exceptions import SerializationError

__all__ = ["NATIVE_VERSION", "compiled_native", "native"]

NATIVE_VERSION = "0.1.0"
"""The ``labeltrail_native`` version the plans of :mod:`labeltrail.events.plan` are written for."""


def _load_native() -> Any:
    """The native module, or None: not built, another version, or LABELTRAIL_NATIVE=0."""
    if os.environ.get("LABELTRAIL_NATIVE", "1") == "0":
        return None
    try:
        import labeltrail_native  # type: ignore[import-not-found]
    except ImportError:
        return None
    if getattr(labeltrail_native, "__version__", None) != NATIVE_VERSION:
        return None
    return labeltrail_native


native: Any = _load_native()
"""``labeltrail_native`` when it is used, else None (the pure-Python codec)."""


def _millis_of(value: Any) -> int:
    """What the Python writer makes of a timestamp the native writer does not read itself."""
    if value.tzinfo is None:
        raise SerializationError("naive datetime for a timestamp-millis field")
    return epoch_millis(value)


@cache
def compiled_native(name: str) -> Compiled | None:
    """The native codec of an event type, or None (not built, or no plan for its model)."""
    found = contract(name)
    if native is None or found is None:
        return None
    plan, fingerprint = found
    try:
        codec = native.Codec(plan, EPOCH.tzinfo, _millis_of)
    except (ValueError, TypeError):
        return None
    return Compiled(codec.read, codec.write, fingerprint, True)
