"""Labeling functions a live stage runs: discovered, named and versioned.

An LF a stage runs is a :class:`VersionedLF`: a :class:`~labeltrail.learning.lf.LabelingFunction`
with a ``version`` and the ``classes`` its class indices mean. They are found two ways
(:func:`discover`):

- Python entry points of the group ``labeltrail.lfs`` (a package declares
  ``[project.entry-points."labeltrail.lfs"] name = "module:attr"``); this project ships its
  example LFs (:mod:`labeltrail.learning.example_lfs`) that way;
- ``module:attr`` paths listed in the settings (``LABELTRAIL_WEAK__LF_PATHS``).

``attr`` is one :class:`VersionedLF` or a sequence of them. Two LFs with one name and version
are one LF too many: discovery refuses them, so a vote's ``(name, version)`` names one piece of
code. :func:`vote` runs one LF on one example and turns what goes wrong into an
:class:`LFError` naming the LF and its version (the stage dead-letters it).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from labeltrail.exceptions import LabeltrailError
from labeltrail.learning.lf import ABSTAIN, Example, LabelingFunction

__all__ = ["ENTRY_POINT_GROUP", "LFError", "VersionedLF", "discover", "load_path", "vote"]

ENTRY_POINT_GROUP = "labeltrail.lfs"


class LFError(LabeltrailError):
    """An LF that raised or returned something that is not a class: the reason names it."""


@dataclass(frozen=True)
class VersionedLF:
    """An LF as the live stage runs it: ``lf`` returns an index into ``classes`` or ABSTAIN."""

    lf: LabelingFunction
    version: str
    classes: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.lf.name

    @property
    def key(self) -> str:
        """``name@version``: how analyses and the joint model name this source."""
        return f"{self.lf.name}@{self.version}"


def vote(lf: VersionedLF, example: Example, allowed: Sequence[str]) -> str | None:
    """The class ``lf`` votes for ``example`` (None: it abstains). Raises :class:`LFError` when
    the LF raises, returns no class index, or a class not in ``allowed`` (the schema's)."""
    try:
        code = lf.lf.fn(example)
    except Exception as exc:
        raise LFError(f"lf {lf.key} raised {type(exc).__name__}: {exc}") from exc
    if code == ABSTAIN:
        return None
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < len(lf.classes):
        raise LFError(f"lf {lf.key} returned {code!r}, not a class index of {len(lf.classes)}")
    label = lf.classes[code]
    if label not in allowed:
        raise LFError(f"lf {lf.key} returned unknown class {label!r}")
    return label


def _as_lfs(obj: object, where: str) -> list[VersionedLF]:
    if isinstance(obj, VersionedLF):
        return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        items = list(obj)
        if all(isinstance(i, VersionedLF) for i in items):
            return items
    raise LFError(f"{where} is not a VersionedLF or a sequence of them")


def load_path(path: str) -> list[VersionedLF]:
    """The LFs at ``module:attr``."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise LFError(f"LF path {path!r} is not module:attr")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise LFError(f"LF path {path!r} not loaded: {exc}") from exc
    return _as_lfs(obj, path)


def discover(
    paths: Sequence[str] = (), *, group: str | None = ENTRY_POINT_GROUP
) -> tuple[VersionedLF, ...]:
    """The entry points of ``group`` (None: none) and the ``paths``, in that order (entry points
    by name), each ``name@version`` once."""
    found: list[VersionedLF] = []
    if group is not None:
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            try:
                loaded = ep.load()
            except (ImportError, AttributeError) as exc:
                raise LFError(f"entry point {ep.name} = {ep.value} not loaded: {exc}") from exc
            found += _as_lfs(loaded, f"entry point {ep.name}")
    for path in paths:
        found += load_path(path)
    seen: set[str] = set()
    for lf in found:
        if lf.key in seen:
            raise LFError(f"two LFs named {lf.key}")
        seen.add(lf.key)
    return tuple(found)
