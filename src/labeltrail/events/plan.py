"""What the two compiled codecs share: each current contract's *plan*, and the codec entry.

One walk of the Avro schema together with the pydantic model describes every field as data
(its kind and the constraints the model declares beyond the Avro type); the pure-Python codec
(:mod:`labeltrail.events.codec`) generates its readers and writers from the plan and the native
one (:mod:`labeltrail.events.native`) reads and writes by it, so both accept the same event
types and check the same constraints. A model with anything else (a custom validator, a
pattern) has no plan, and serde uses fastavro + pydantic for it.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, Literal, Union

import annotated_types
from pydantic import AfterValidator, AwareDatetime, BaseModel

from labeltrail.events.avro import committed_schemas, writer_schemas
from labeltrail.events.base import to_utc_millis
from labeltrail.events.models import EVENT_TYPES

__all__ = ["Compiled", "Plan", "Reader", "Unsupported", "Writer", "contract", "plan_record"]

Plan = tuple[Any, ...]
"""A node: (kind, checks) for string, long, double, boolean, bytes and millis; ("optional",
node); ("array" | "map", node, checks); ("record", model, names, nodes). ``checks`` is a tuple
of (op, value) with op one of ge, gt, le, lt, min_len, max_len, in (a ``Literal``'s values,
always first)."""
Reader = Callable[[bytes, int], tuple[Any, int]]
Writer = Callable[[bytearray, Any], None]


class Compiled(typing.NamedTuple):
    """A compiled codec of one event type's current contract."""

    read: Reader
    write: Writer
    fingerprint: bytes
    native: bool = False


class Unsupported(Exception):
    """A schema or model feature the compiled codecs do not handle (use the general path)."""


PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "long": int,
    "double": float,
    "boolean": bool,
    "bytes": bytes,
}
"""The Avro primitive kinds and the Python type each is read as."""


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Split ``Annotated[T, *metadata]`` into ``T`` and its metadata."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        inner, more = _unwrap(base)
        return inner, [*more, *metadata]
    return annotation, []


_CONSTRAINTS: tuple[tuple[type, str, str], ...] = (
    (annotated_types.Ge, "ge", "ge"),
    (annotated_types.Gt, "gt", "gt"),
    (annotated_types.Le, "le", "le"),
    (annotated_types.Lt, "lt", "lt"),
    (annotated_types.MinLen, "min_len", "min_length"),
    (annotated_types.MaxLen, "max_len", "max_length"),
)
"""The constraint metadata the codecs check: its class, the plan's op, the bound's attribute."""


def _checks(metadata: list[Any]) -> tuple[tuple[str, Any], ...]:
    """The field constraints pydantic would enforce, as (op, value) pairs.

    Raises :class:`Unsupported` for metadata whose effect the codecs do not reproduce.
    """
    out: list[tuple[str, Any]] = []
    for m in metadata:
        if isinstance(m, AfterValidator) and m.func is to_utc_millis:
            continue  # the compiled readers build UTC datetimes at millisecond precision
        for kind, op, attribute in _CONSTRAINTS:
            if isinstance(m, kind):
                out.append((op, getattr(m, attribute)))
                break
        else:
            raise Unsupported(f"constraint {m!r}")
    return tuple(out)


def _plan(schema: Any, annotation: Any, metadata: list[Any], named: dict[str, Any]) -> Plan:
    """The plan of one Avro type and the pydantic annotation it maps to."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    annotation, more = _unwrap(annotation)
    metadata = [*metadata, *more]
    origin = typing.get_origin(annotation)
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise Unsupported(f"union {schema}")
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin not in (Union, types.UnionType) or len(members) != 1:
            raise Unsupported(f"union for {annotation!r}")
        return ("optional", _plan(schema[1], members[0], metadata, named))
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind == "record":
        if metadata or not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise Unsupported(f"record {schema.get('name')} for {annotation!r}")
        return plan_record(schema, annotation, named)
    if kind in ("array", "map"):
        if origin is not (list if kind == "array" else dict):
            raise Unsupported(f"{kind} for {annotation!r}")
        inner = schema["items"] if kind == "array" else schema["values"]
        item = _plan(inner, typing.get_args(annotation)[-1], [], named)
        return (kind, item, _checks(metadata))
    if not isinstance(schema, str) and schema.get("logicalType") == "timestamp-millis":
        if annotation is not AwareDatetime and annotation is not dt.datetime:
            raise Unsupported(f"timestamp for {annotation!r}")
        return ("millis", _checks(metadata))
    if kind not in PYTHON_TYPES or (not isinstance(schema, str) and len(schema) > 1):
        raise Unsupported(f"Avro type {schema!r}")
    python = PYTHON_TYPES[kind]
    if origin is Literal:
        allowed = tuple(dict.fromkeys(typing.get_args(annotation)))
        if not all(type(a) is python for a in allowed):
            raise Unsupported(f"Literal {annotation!r} for {kind}")
        return (kind, (("in", allowed), *_checks(metadata)))
    if annotation is not python:
        raise Unsupported(f"{kind} for {annotation!r}")
    return (kind, _checks(metadata))


def plan_record(schema: Any, model: type[BaseModel], named: dict[str, Any]) -> Plan:
    """The plan of an Avro record and its model (raises :class:`Unsupported`)."""
    decorators = model.__pydantic_decorators__
    if (
        decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or decorators.model_validators
        or model.__pydantic_post_init__ is not None
    ):
        raise Unsupported(f"{model.__name__} has custom validation")
    fields = schema["fields"]
    if [f["name"] for f in fields] != list(model.model_fields):
        raise Unsupported(f"{model.__name__}: fields differ from the schema")
    nodes = tuple(
        _plan(
            f["type"],
            model.model_fields[f["name"]].annotation,
            list(model.model_fields[f["name"]].metadata),
            named,
        )
        for f in fields
    )
    return ("record", model, tuple(f["name"] for f in fields), nodes)


@cache
def contract(name: str) -> tuple[Plan, bytes] | None:
    """The plan of an event type's current contract and its writer fingerprint, or None (no
    committed contract, or a model the codecs cannot compile)."""
    schema = committed_schemas().get(name)
    model = EVENT_TYPES.get(name)
    if schema is None or model is None:
        return None
    fp = next(w.fingerprint for w in writer_schemas().values() if w.schema is schema)
    try:
        return plan_record(schema, model, schema.get("__named_schemas", {})), fp
    except Unsupported:
        return None
