"""The two implementations of the compiled codec, for tests that must hold for both.

``python`` is the pure-Python compiled codec (the reference and the fallback); ``native`` is
``labeltrail_native`` (``native/``), parametrized in only where it is built. Under CI=true it
must be built: ``tests/events/test_native.py`` fails otherwise, so CI never passes by leaving
the native path out.
"""

from __future__ import annotations

from typing import Any

import pytest

from labeltrail.events import codec, columnar, serde
from labeltrail.events import native as native_codec

IMPLEMENTATIONS = ["python", "native"] if native_codec.native is not None else ["python"]


def compiled_by(impl: str) -> Any:
    """``codec.compiled`` as one implementation gives it (native falls back per type)."""
    if impl == "python":
        return codec.compiled_python
    return lambda name: native_codec.compiled_native(name) or codec.compiled_python(name)


def use(impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make serde's encode/decode and columnar's decode_rows run on one implementation."""
    monkeypatch.setattr(serde, "_compiled", compiled_by(impl))
    if impl == "python":
        monkeypatch.setattr(columnar, "_native_rows", lambda: None)
