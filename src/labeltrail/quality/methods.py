"""The registry of consensus methods, by the names the command line uses.

``labeltrail aggregate --method`` and ``labeltrail relabel --method`` both build their model
here, so a method and its parameters mean the same thing in both. A parameter is one of the
estimator's constructor arguments, given as text (``--param max_iter=50``) and converted to
the type of its default.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from labeltrail.exceptions import QualityError
from labeltrail.quality._base import Aggregator
from labeltrail.quality.consensus import MajorityVote, WeightedMajorityVote
from labeltrail.quality.dawid_skene import DawidSkene, OneCoinDawidSkene
from labeltrail.quality.glad import GLAD
from labeltrail.quality.mace import MACE
from labeltrail.quality.pooled import PooledDawidSkene

__all__ = ["DEFAULT_METHOD", "METHODS", "make_method", "method_parameters", "parse_params"]

METHODS: dict[str, type[Aggregator]] = {
    "mv": MajorityVote,
    "wmv": WeightedMajorityVote,
    "ds": DawidSkene,
    "ods": OneCoinDawidSkene,
    "mace": MACE,
    "glad": GLAD,
    "pds": PooledDawidSkene,
}
"""Method name -> estimator class."""

DEFAULT_METHOD = "pds"
"""The method used when none is named (docs/quality.md, "Default method")."""

_NOT_TEXT = ("weights",)
"""Constructor arguments that are not given as text (per-annotator weights)."""


def method_parameters(name: str) -> dict[str, Any]:
    """The parameters a method takes from the command line, with their defaults."""
    cls = _method(name)
    return {
        p.name: p.default
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.name not in _NOT_TEXT and p.default is not inspect.Parameter.empty
    }


def _method(name: str) -> type[Aggregator]:
    cls = METHODS.get(name)
    if cls is None:
        raise QualityError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return cls


def _convert(method: str, key: str, text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError as exc:
        kind = type(default).__name__
        raise QualityError(f"{method} parameter {key}={text!r} is not a {kind}") from exc
    return text


def parse_params(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{k: v}``; a malformed item or a key given twice is an error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise QualityError(f"parameter {item!r} is not key=value")
        if key in out:
            raise QualityError(f"parameter {key} given twice")
        out[key] = value.strip()
    return out


def make_method(name: str, params: Mapping[str, str] | None = None) -> Aggregator:
    """The estimator ``name`` with ``params`` (text, converted to each default's type).

    Raises :class:`~labeltrail.exceptions.QualityError` for an unknown method, a parameter
    the method does not take, or a value of the wrong type.
    """
    cls = _method(name)
    takes = method_parameters(name)
    kwargs: dict[str, Any] = {}
    for key, text in (params or {}).items():
        if key not in takes:
            accepted = ", ".join(sorted(takes)) or "none"
            raise QualityError(f"method {name} takes no parameter {key!r} (it takes: {accepted})")
        kwargs[key] = _convert(name, key, text, takes[key])
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise QualityError(f"method {name}: {exc}") from exc
