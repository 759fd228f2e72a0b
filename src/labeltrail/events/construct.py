"""A compiled constructor per event type, for the outputs the folds build.

Every output of a fold is built from values the fold already holds with their fields' types
(strings, floats, lists of strings, records): pydantic's validation of such a value gives back
an equal value, and costs a few microseconds per output. :func:`constructor` compiles, per event
type and from its pydantic fields, a function that checks each value has exactly its field's
type (and meets its ``ge``/``le``/``gt``/``lt``/``min_length`` bounds) and then sets the model's
fields as ``model_construct`` does, copying lists and dicts as validation does; any value that
is not already so (an int for a float, a str subclass, a missing or unknown field, a bound not
met) goes through the model's own validation, and is coerced or rejected there. A type with a
field or model validator, a ``default_factory`` or a field type not listed here is always
validated. So the rules stay where they are (the model's fields), and an event built either
way is the same event (``tests/events/test_construct.py``).
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from labeltrail.events.base import Envelope, Event, utc_now

__all__ = ["Constructor", "constructor"]

Constructor = Callable[[str, str, dt.datetime, str | None, str | None, Mapping[str, Any]], Event]
"""Builds an event of one type, its envelope recorded now, from its envelope's arguments
(event id, producer, event time, causation and correlation ids) and its own fields."""

_BOUNDS = {
    annotated_types.Ge: ("ge", ">="),
    annotated_types.Le: ("le", "<="),
    annotated_types.Gt: ("gt", ">"),
    annotated_types.Lt: ("lt", "<"),
}
_PLAIN = (str, int, float, bool)


class _Unsupported(Exception):
    """A field this module does not check: its type is always validated."""


def _check(annotation: Any, value: str, constants: dict[str, Any]) -> tuple[str, str]:
    """An expression true when ``value`` already has exactly type ``annotation``, and the
    expression of the value to store (a copy of a list or dict, as validation makes)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in _PLAIN:
        constants[annotation.__name__] = annotation
        return f"type({value}) is {annotation.__name__}", value
    if origin is typing.Literal and all(type(a) is str for a in args):
        name = f"L{len(constants)}"
        constants[name] = frozenset(args)
        return f"(type({value}) is str and {value} in {name})", value
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        check, store = _check(inner, value, constants)
        if store != value:
            raise _Unsupported(annotation)
        return f"({value} is None or {check})", value
    if origin is list and len(args) == 1:
        return f"(type({value}) is list and {_items(args[0], value, constants)})", f"[*{value}]"
    if origin is dict and args == (str, str):
        return (
            f"(type({value}) is dict and (not {value} or set(map(type, {value})) <= STR"
            f" and set(map(type, {value}.values())) <= STR))",
            f"{{**{value}}}",
        )
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        name = f"M{len(constants)}"
        constants[name] = annotation
        return f"type({value}) is {name}", value
    raise _Unsupported(annotation)


def _items(annotation: Any, value: str, constants: dict[str, Any]) -> str:
    """An expression true when every item of the list ``value`` has exactly type
    ``annotation`` (a plain type or a record: items that validation keeps as they are)."""
    if annotation in _PLAIN or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        name = f"T{len(constants)}"
        constants[name] = frozenset({annotation})
        return f"(not {value} or set(map(type, {value})) <= {name})"
    raise _Unsupported(annotation)


def _bounds(metadata: list[Any], value: str) -> list[str]:
    checks = []
    for item in metadata:
        if type(item) in _BOUNDS:
            attribute, operator = _BOUNDS[type(item)]
            checks.append(f"{value} {operator} {getattr(item, attribute)!r}")
        elif type(item) is annotated_types.MinLen:
            checks.append(f"len({value}) >= {item.min_length!r}")
        else:
            raise _Unsupported(item)
    return checks


def _compile(model: type[Event]) -> Constructor:
    def validated(
        event_id: str,
        producer: str,
        occurred_at: dt.datetime,
        causation_id: str | None,
        correlation_id: str | None,
        fields: Mapping[str, Any],
    ) -> Event:
        envelope = Envelope.build(
            event_id=event_id,
            event_type=model.__name__,
            occurred_at=occurred_at,
            recorded_at=utc_now(),
            producer=producer,
            causation_id=causation_id,
            correlation_id=correlation_id,
        )
        return model(envelope=envelope, **fields)

    decorators = model.__pydantic_decorators__
    if (
        decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or decorators.model_validators
        or model.__pydantic_post_init__ is not None
        or model.model_config.get("extra") != "forbid"
    ):
        return validated
    constants: dict[str, Any] = {
        "Envelope": Envelope,
        "model": model,
        "validated": validated,
        "utc_now": utc_now,
        "datetime": dt.datetime,
        "UTC": dt.UTC,
        "EVENT_TYPE": model.__name__,
        "ENVELOPE_FIELDS": frozenset(Envelope.model_fields),
        "_new": object.__new__,
        "_set": object.__setattr__,
        "MISSING": PydanticUndefined,
        "STR": frozenset({str}),
    }
    names = [name for name in model.model_fields if name != "envelope"]
    constants["NAMES"] = frozenset(names)
    lines = [
        "def construct(event_id, producer, occurred_at, causation_id, correlation_id, f):",
        # The envelope's arguments as Envelope.build takes them without validation, and
        # occurred_at already what it makes of one (UTC, whole milliseconds).
        "    if not (type(event_id) is str and type(producer) is str",
        "        and type(occurred_at) is datetime and occurred_at.tzinfo is UTC",
        "        and not occurred_at.microsecond % 1000",
        "        and (causation_id is None or type(causation_id) is str)",
        "        and (correlation_id is None or type(correlation_id) is str)",
        "        and f.keys() <= NAMES",
        "    ):",
        "        return validated(event_id, producer, occurred_at, causation_id,"
        " correlation_id, f)",
    ]
    checks: list[str] = []
    stores: list[str] = []
    try:
        for i, name in enumerate(names):
            field = model.model_fields[name]
            value = f"v{i}"
            check, store = _check(field.annotation, value, constants)
            bounds = _bounds(field.metadata, value)
            if field.default_factory is not None:
                raise _Unsupported(field.default_factory)
            lines.append(f"    {value} = f.get({name!r}, MISSING)")
            if field.default is PydanticUndefined:
                checks.append(f"{value} is not MISSING")
            else:
                constants[f"D{i}"] = field.default
                lines += [f"    if {value} is MISSING:", f"        {value} = D{i}"]
            checks.append(check)
            if bounds:  # on the value, when it is one (None meets the bounds of an optional)
                optional = check.startswith(f"({value} is None or ")
                none = f"{value} is None or " if optional else ""
                checks.append(f"({none}" + " and ".join(bounds) + ")")
            stores.append(f"{name!r}: {store}")
    except _Unsupported:
        return validated
    lines += [
        "    if not (" + "\n        and ".join(checks) + "\n    ):",
        "        return validated(event_id, producer, occurred_at, causation_id,"
        " correlation_id, f)",
        "    envelope = _new(Envelope)",
        "    _set(envelope, '__dict__', {'event_id': event_id, 'event_type': EVENT_TYPE,"
        " 'occurred_at': occurred_at, 'recorded_at': utc_now(), 'producer': producer,"
        " 'causation_id': causation_id, 'correlation_id': correlation_id})",
        "    _set(envelope, '__pydantic_fields_set__', set(ENVELOPE_FIELDS))",
        "    _set(envelope, '__pydantic_extra__', None)",
        "    _set(envelope, '__pydantic_private__', None)",
        "    obj = _new(model)",
        "    _set(obj, '__dict__', {'envelope': envelope, " + ", ".join(stores) + "})",
        "    _set(obj, '__pydantic_fields_set__', {'envelope', *f})",
        "    _set(obj, '__pydantic_extra__', None)",
        "    _set(obj, '__pydantic_private__', None)",
        "    return obj",
    ]
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<labeltrail construct {model.__name__}>", "exec"), constants)
    built: Constructor = constants["construct"]
    return built


@cache
def constructor(model: type[Event]) -> Constructor:
    """The compiled constructor of event type ``model`` (see the module's doc)."""
    return _compile(model)
