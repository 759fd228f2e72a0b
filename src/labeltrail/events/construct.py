"""A compiled constructor per event type, for the outputs the folds build.

Every output of a fold is built from values the fold already holds with their fields' types
(strings, floats, lists of strings, records): pydantic's validation of such a value gives back
an equal value, and costs a few microseconds per output. :func:`constructor` compiles, per event
type, from the plan the compiled codecs check a record by (:func:`labeltrail.events.plan.
contract`: each field's type and the bounds and literals its model declares), a function that
checks each value has exactly its field's type and meets those checks, and then sets the
model's fields as ``model_construct`` does, copying lists and dicts as validation does. Any
value that is not already so (an int for a float, a str subclass, a datetime not in UTC
milliseconds, a missing or unknown field, a bound not met) goes through the model's own
validation, and is coerced or rejected there; a type without a plan, or with a
``default_factory`` or a list of constrained items, is always validated. So the rules stay
where they are (the models), and an event built either way is the same event
(``tests/events/test_construct.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic_core import PydanticUndefined

from labeltrail.events.base import Envelope, Event, utc_now
from labeltrail.events.plan import PYTHON_TYPES, Plan, Unsupported, contract

__all__ = ["Constructor", "constructor"]

Constructor = Callable[[str, str, dt.datetime, str | None, str | None, Mapping[str, Any]], Event]
"""Builds an event of one type, its envelope recorded now, from its envelope's arguments
(event id, producer, event time, causation and correlation ids) and its own fields."""

_OPS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _bounds(checks: tuple[tuple[str, Any], ...], value: str, constants: dict[str, Any]) -> str:
    """The plan's checks of a value as one expression ("" when none)."""
    out = []
    for op, bound in checks:
        name = f"C{len(constants)}"
        constants[name] = frozenset(bound) if op == "in" else bound
        if op in _OPS:
            out.append(f"{value} {_OPS[op]} {name}")
        elif op == "min_len":
            out.append(f"len({value}) >= {name}")
        elif op == "max_len":
            out.append(f"len({value}) <= {name}")
        else:  # "in": a Literal's values
            out.append(f"{value} in {name}")
    return " and ".join(out)


def _type(node: Plan, constants: dict[str, Any]) -> str:
    """The name of the exact type a value of a scalar or record node has unvalidated."""
    name = f"T{len(constants)}"
    constants[name] = node[1] if node[0] == "record" else PYTHON_TYPES[node[0]]
    return name


def _check(node: Plan, value: str, constants: dict[str, Any]) -> tuple[str, str]:
    """An expression true when ``value`` already is what validation makes of it for ``node``,
    and the expression of the value to store (a copy of a list or dict, as validation makes)."""
    kind = node[0]
    if kind == "optional":
        check, store = _check(node[1], value, constants)
        if store != value:
            raise Unsupported(f"optional {node[1][0]}")
        return f"({value} is None or {check})", value
    if kind in ("array", "map"):
        item = node[1]
        if item[0] not in ("record", *PYTHON_TYPES) or (item[0] != "record" and item[1]):
            raise Unsupported(f"{kind} of {item[0]} items")
        items = f"{value}.values()" if kind == "map" else value
        types = f"S{len(constants)}"
        constants[types] = frozenset({constants[_type(item, constants)]})
        check = f"set(map(type, {items})) <= {types}"
        if kind == "map":
            constants["STR"] = frozenset({str})
            check = f"set(map(type, {value})) <= STR and {check}"
        check = f"(not {value} or {check})"
        bounds = _bounds(node[2], value, constants)
        container = "list" if kind == "array" else "dict"
        store = f"[*{value}]" if kind == "array" else f"{{**{value}}}"
        return f"(type({value}) is {container} and {check}{' and ' * bool(bounds)}{bounds})", store
    if kind == "record":  # a record instance: validation keeps it as it is
        return f"type({value}) is {_type(node, constants)}", value
    if kind == "millis":  # what Millis makes of an aware datetime
        check = (
            f"type({value}) is datetime and {value}.tzinfo is UTC"
            f" and not {value}.microsecond % 1000"
        )
    else:
        check = f"type({value}) is {_type(node, constants)}"
    bounds = _bounds(node[1], value, constants)
    return f"({check}{' and ' * bool(bounds)}{bounds})", value


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

    found = contract(model.__name__)
    if found is None or found[0][1] is not model or model.model_config.get("extra") != "forbid":
        return validated  # no plan (custom validation, ...): validate every time
    _, _, names, nodes = found[0]
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
        "NAMES": frozenset(names) - {"envelope"},
    }
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
        for i, (name, node) in enumerate(zip(names, nodes, strict=True)):
            if name == "envelope":
                continue
            field = model.model_fields[name]
            value = f"v{i}"
            check, store = _check(node, value, constants)
            if field.default_factory is not None:
                raise Unsupported(f"{name}: a default factory")
            lines.append(f"    {value} = f.get({name!r}, MISSING)")
            if field.default is PydanticUndefined:
                checks.append(f"{value} is not MISSING")
            else:
                constants[f"D{i}"] = field.default
                lines += [f"    if {value} is MISSING:", f"        {value} = D{i}"]
            checks.append(check)
            stores.append(f"{name!r}: {store}")
    except Unsupported:
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
