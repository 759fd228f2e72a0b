"""The compiled Avro codec: each current contract and its model, as plain readers and writers.

The hot path of :mod:`labeltrail.events.serde`. Per event type, the Avro schema and the pydantic
model are compiled together into straight-line Python: the writer reads the model's attributes
(no ``model_dump``); the reader builds the models directly, checking every constraint the
models declare beyond the Avro types (``Literal`` values, ``ge``/``le``/``gt``/``lt``,
``min_length``/``max_length``), so it does not validate again what Avro already guarantees. A
model with anything else (a custom validator, a pattern) is not compiled: :func:`compiled`
returns None and serde uses fastavro + pydantic. A compiled reader never reports an error
itself; serde hands anything it does not accept to the general path, which explains it.
"""

from __future__ import annotations

import datetime as dt
import operator
import os
import struct
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

import annotated_types
from pydantic import AfterValidator, AwareDatetime, BaseModel

from labeltrail.events.avro import committed_schemas, writer_schemas
from labeltrail.events.base import EPOCH, epoch_millis, from_epoch_millis, to_utc_millis
from labeltrail.events.exceptions import (
    SerializationError,
)
from labeltrail.events.models import EVENT_TYPES

__all__ = ["Compiled", "Reader", "Writer", "compiled"]

_DOUBLE = struct.Struct("<d")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1

Reader = Callable[[bytes, int], tuple[Any, int]]
Writer = Callable[[bytearray, Any], None]
Reader_Writer = tuple[Reader, Writer]


class _Unsupported(Exception):
    """A schema or model feature the compiled path does not handle (use the general one)."""


class _Refused(Exception):
    """The compiled reader does not accept this message (the general path decides)."""


# primitive writers -------------------------------------------------------------------------


def _w_long(buf: bytearray, n: int) -> None:
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise SerializationError(f"{n} does not fit an Avro long")
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def _w_string(buf: bytearray, s: str) -> None:
    b = s.encode()
    n = len(b)
    if n < 64:
        buf.append(n << 1)
    else:
        _w_long(buf, n)
    buf += b


def _w_bytes(buf: bytearray, b: bytes) -> None:
    _w_long(buf, len(b))
    buf += b


def _w_double(buf: bytearray, x: float) -> None:
    buf += _DOUBLE.pack(x)


def _w_boolean(buf: bytearray, x: bool) -> None:
    buf.append(1 if x else 0)


def _w_millis(buf: bytearray, value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise SerializationError("naive datetime for a timestamp-millis field")
    _w_long(buf, epoch_millis(value))


# primitive readers -------------------------------------------------------------------------


def _r_long(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    pos += 1
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos
    n = b & 0x7F
    shift = 7
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 63:
            raise _Refused
    if n >> 64:
        raise _Refused  # not a 64-bit long
    return (n >> 1) ^ -(n & 1), pos


def _r_string(data: bytes, pos: int) -> tuple[str, int]:
    n = data[pos]
    if n < 0x80:  # most strings are shorter than 64 bytes: a one-byte length
        n = (n >> 1) ^ -(n & 1)
        pos += 1
    else:
        n, pos = _r_long(data, pos)
    end = pos + n
    if n < 0 or end > len(data):
        raise _Refused
    return data[pos:end].decode(), end


def _r_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _r_long(data, pos)
    end = pos + n
    if n < 0 or end > len(data):
        raise _Refused
    return data[pos:end], end


def _r_double(data: bytes, pos: int) -> tuple[float, int]:
    return _DOUBLE.unpack_from(data, pos)[0], pos + 8


def _r_boolean(data: bytes, pos: int) -> tuple[bool, int]:
    b = data[pos]
    if b > 1:
        raise _Refused
    return b == 1, pos + 1


def _r_millis(data: bytes, pos: int) -> tuple[dt.datetime, int]:
    n, pos = _r_long(data, pos)
    return from_epoch_millis(n), pos


_PRIMITIVES: dict[str, tuple[Reader, Writer, type]] = {
    "string": (_r_string, _w_string, str),
    "long": (_r_long, _w_long, int),
    "double": (_r_double, _w_double, float),
    "boolean": (_r_boolean, _w_boolean, bool),
    "bytes": (_r_bytes, _w_bytes, bytes),
}


# constraints -------------------------------------------------------------------------------


def _bound(op: Callable[[Any, Any], bool], bound: Any) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        return op(value, bound)

    return test


def _length(op: Callable[[Any, Any], bool], bound: int) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        return op(len(value), bound)

    return test


def _check(metadata: list[Any]) -> Callable[[Any], bool] | None:
    """A predicate for the field constraints pydantic would enforce, or None if there are none.

    Raises :class:`_Unsupported` for metadata whose effect this module does not reproduce.
    """
    tests: list[Callable[[Any], bool]] = []
    for m in metadata:
        if isinstance(m, AfterValidator) and m.func is to_utc_millis:
            continue  # the compiled reader builds UTC datetimes at millisecond precision
        if isinstance(m, annotated_types.Ge):
            tests.append(_bound(operator.ge, m.ge))
        elif isinstance(m, annotated_types.Gt):
            tests.append(_bound(operator.gt, m.gt))
        elif isinstance(m, annotated_types.Le):
            tests.append(_bound(operator.le, m.le))
        elif isinstance(m, annotated_types.Lt):
            tests.append(_bound(operator.lt, m.lt))
        elif isinstance(m, annotated_types.MinLen):
            tests.append(_length(operator.ge, m.min_length))
        elif isinstance(m, annotated_types.MaxLen):
            tests.append(_length(operator.le, m.max_length))
        else:
            raise _Unsupported(f"constraint {m!r}")
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda v: all(t(v) for t in tests)


def _constrained(read: Reader, ok: Callable[[Any], bool] | None) -> Reader:
    if ok is None:
        return read

    def checked(data: bytes, pos: int) -> tuple[Any, int]:
        value, pos = read(data, pos)
        if not ok(value):
            raise _Refused
        return value, pos

    return checked


# compiling a schema with its model ---------------------------------------------------------


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Split ``Annotated[T, *metadata]`` into ``T`` and its metadata."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        inner, more = _unwrap(base)
        return inner, [*more, *metadata]
    return annotation, []


def _compile(
    schema: Any, annotation: Any, metadata: list[Any], named: dict[str, Any]
) -> tuple[Reader, Writer]:
    """A reader and a writer for one Avro type and the pydantic annotation it maps to."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    annotation, more = _unwrap(annotation)
    metadata = [*metadata, *more]
    origin = typing.get_origin(annotation)
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise _Unsupported(f"union {schema}")
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin not in (Union, types.UnionType) or len(members) != 1:
            raise _Unsupported(f"union for {annotation!r}")
        read_x, write_x = _compile(schema[1], members[0], metadata, named)

        def read_optional(data: bytes, pos: int) -> tuple[Any, int]:
            branch = data[pos]
            if branch == 0:
                return None, pos + 1
            if branch != 2:
                raise _Refused
            return read_x(data, pos + 1)

        def write_optional(buf: bytearray, value: Any) -> None:
            if value is None:
                buf.append(0)
            else:
                buf.append(2)
                write_x(buf, value)

        return read_optional, write_optional
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind == "record":
        if metadata or not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise _Unsupported(f"record {schema.get('name')} for {annotation!r}")
        return _compile_record(schema, annotation, named)
    if kind in ("array", "map"):
        expected = list if kind == "array" else dict
        if origin is not expected:
            raise _Unsupported(f"{kind} for {annotation!r}")
        args = typing.get_args(annotation)
        inner_schema = schema["items"] if kind == "array" else schema["values"]
        read_item, write_item = _compile(inner_schema, args[-1], [], named)
        read = _array_reader(read_item) if kind == "array" else _map_reader(read_item)
        write = _array_writer(write_item) if kind == "array" else _map_writer(write_item)
        return _constrained(read, _check(metadata)), write
    if not isinstance(schema, str) and schema.get("logicalType") == "timestamp-millis":
        if annotation is not AwareDatetime and annotation is not dt.datetime:
            raise _Unsupported(f"timestamp for {annotation!r}")
        return _constrained(_r_millis, _check(metadata)), _w_millis
    if kind not in _PRIMITIVES or (not isinstance(schema, str) and len(schema) > 1):
        raise _Unsupported(f"Avro type {schema!r}")
    read, write, python = _PRIMITIVES[kind]
    if origin is Literal:
        allowed = frozenset(typing.get_args(annotation))
        if not all(type(a) is python for a in allowed):
            raise _Unsupported(f"Literal {annotation!r} for {kind}")
        metadata_ok = _check(metadata)

        def in_literal(value: Any) -> bool:
            return value in allowed and (metadata_ok is None or metadata_ok(value))

        return _constrained(read, in_literal), write
    if annotation is not python:
        raise _Unsupported(f"{kind} for {annotation!r}")
    return _constrained(read, _check(metadata)), write


def _string_array_reader(data: bytes, pos: int) -> tuple[list[str], int]:
    out: list[str] = []
    size = len(data)
    while True:
        count, pos = _r_long(data, pos)
        if count == 0:
            return out, pos
        if count < 0:
            _, pos = _r_long(data, pos)
            count = -count
        for _ in range(count):
            n = data[pos]
            if n < 0x80:
                n = (n >> 1) ^ -(n & 1)
                pos += 1
            else:
                n, pos = _r_long(data, pos)
            end = pos + n
            if n < 0 or end > size:
                raise _Refused
            out.append(data[pos:end].decode())
            pos = end


def _string_array_writer(buf: bytearray, items: list[str]) -> None:
    if items:
        _w_long(buf, len(items))
        for item in items:
            b = item.encode()
            n = len(b)
            if n < 64:
                buf.append(n << 1)
            else:
                _w_long(buf, n)
            buf += b
    buf.append(0)


def _double_array_reader(data: bytes, pos: int) -> tuple[list[float], int]:
    out: list[float] = []
    while True:
        count, pos = _r_long(data, pos)
        if count == 0:
            return out, pos
        if count < 0:
            _, pos = _r_long(data, pos)
            count = -count
        out.extend(struct.unpack_from(f"<{count}d", data, pos))
        pos += 8 * count


def _double_array_writer(buf: bytearray, items: list[float]) -> None:
    if items:
        n = len(items)
        _w_long(buf, n)
        buf += struct.pack(f"<{n}d", *items)
    buf.append(0)


def _array_reader(read_item: Reader) -> Reader:
    if read_item is _r_string:
        return _string_array_reader
    if read_item is _r_double:
        return _double_array_reader

    def read(data: bytes, pos: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        while True:
            count, pos = _r_long(data, pos)
            if count == 0:
                return out, pos
            if count < 0:
                _, pos = _r_long(data, pos)  # a block's byte size
                count = -count
            for _ in range(count):
                item, pos = read_item(data, pos)
                out.append(item)

    return read


def _string_map_reader(data: bytes, pos: int) -> tuple[dict[str, str], int]:
    out: dict[str, str] = {}
    size = len(data)
    while True:
        count, pos = _r_long(data, pos)
        if count == 0:
            return out, pos
        if count < 0:
            _, pos = _r_long(data, pos)
            count = -count
        for _ in range(count):
            n = data[pos]
            if n < 0x80:
                n = (n >> 1) ^ -(n & 1)
                pos += 1
            else:
                n, pos = _r_long(data, pos)
            end = pos + n
            if n < 0 or end > size:
                raise _Refused
            key = data[pos:end].decode()
            pos = end
            n = data[pos]
            if n < 0x80:
                n = (n >> 1) ^ -(n & 1)
                pos += 1
            else:
                n, pos = _r_long(data, pos)
            end = pos + n
            if n < 0 or end > size:
                raise _Refused
            out[key] = data[pos:end].decode()
            pos = end


def _string_map_writer(buf: bytearray, items: dict[str, str]) -> None:
    if items:
        _w_long(buf, len(items))
        for key, value in items.items():
            for text in (key, value):
                b = text.encode()
                n = len(b)
                if n < 64:
                    buf.append(n << 1)
                else:
                    _w_long(buf, n)
                buf += b
    buf.append(0)


def _map_reader(read_value: Reader) -> Reader:
    if read_value is _r_string:
        return _string_map_reader

    def read(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while True:
            count, pos = _r_long(data, pos)
            if count == 0:
                return out, pos
            if count < 0:
                _, pos = _r_long(data, pos)
                count = -count
            for _ in range(count):
                key, pos = _r_string(data, pos)
                out[key], pos = read_value(data, pos)

    return read


def _array_writer(write_item: Writer) -> Writer:
    if write_item is _w_string:
        return _string_array_writer
    if write_item is _w_double:
        return _double_array_writer

    def write(buf: bytearray, items: list[Any]) -> None:
        if items:
            _w_long(buf, len(items))
            for item in items:
                write_item(buf, item)
        buf.append(0)

    return write


def _map_writer(write_value: Writer) -> Writer:
    if write_value is _w_string:
        return _string_map_writer

    def write(buf: bytearray, items: dict[str, Any]) -> None:
        if items:
            _w_long(buf, len(items))
            for key, value in items.items():
                _w_string(buf, key)
                write_value(buf, value)
        buf.append(0)

    return write


_new = object.__new__
_set = object.__setattr__


def _compile_record(schema: Any, model: type[BaseModel], named: dict[str, Any]) -> Reader_Writer:
    decorators = model.__pydantic_decorators__
    if (
        decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or decorators.model_validators
        or model.__pydantic_post_init__ is not None
    ):
        raise _Unsupported(f"{model.__name__} has custom validation")
    fields = schema["fields"]
    if [f["name"] for f in fields] != list(model.model_fields):
        raise _Unsupported(f"{model.__name__}: fields differ from the schema")
    names: list[str] = []
    readers: list[Reader] = []
    writers: list[Writer] = []
    for f in fields:
        info = model.model_fields[f["name"]]
        read, write = _compile(f["type"], info.annotation, list(info.metadata), named)
        names.append(f["name"])
        readers.append(read)
        writers.append(write)
    # Straight-line source per record: no per-field loop, plain strings (most fields) read and
    # written inline, every other field through its compiled reader or writer.
    namespace: dict[str, Any] = {
        "_r_long": _r_long,
        "_w_long": _w_long,
        "_Refused": _Refused,
        "_new": _new,
        "_set": _set,
        "model": model,
        "ALL": frozenset(names),
    }
    read_lines = ["def read_record(data, pos):", "    size = len(data)"]
    write_lines = ["def write_record(buf, obj):", "    v = obj.__dict__"]
    for i, (name, read, write) in enumerate(zip(names, readers, writers, strict=True)):
        if read is _r_string:
            read_lines += [
                "    n = data[pos]",
                "    if n < 0x80:",
                "        n = (n >> 1) ^ -(n & 1)",
                "        pos += 1",
                "    else:",
                "        n, pos = _r_long(data, pos)",
                "    end = pos + n",
                "    if n < 0 or end > size:",
                "        raise _Refused",
                f"    v{i} = data[pos:end].decode()",
                "    pos = end",
            ]
        else:
            namespace[f"R{i}"] = read
            read_lines.append(f"    v{i}, pos = R{i}(data, pos)")
        if write is _w_string:
            write_lines += [
                f"    b = v[{name!r}].encode()",
                "    n = len(b)",
                "    if n < 64:",
                "        buf.append(n << 1)",
                "    else:",
                "        _w_long(buf, n)",
                "    buf += b",
            ]
        else:
            namespace[f"W{i}"] = write
            write_lines.append(f"    W{i}(buf, v[{name!r}])")
    values = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    # What model_construct does, without its per-field default handling: every field is
    # present, each checked by its reader.
    read_lines += [
        "    obj = _new(model)",
        f"    _set(obj, '__dict__', {{{values}}})",
        "    _set(obj, '__pydantic_fields_set__', set(ALL))",
        "    _set(obj, '__pydantic_extra__', None)",
        "    _set(obj, '__pydantic_private__', None)",
        "    return obj, pos",
    ]
    if len(write_lines) == 2:
        write_lines.append("    pass")
    source = "\n".join(read_lines) + "\n\n" + "\n".join(write_lines) + "\n"
    exec(compile(source, f"<labeltrail codec {model.__name__}>", "exec"), namespace)
    read_record: Reader = namespace["read_record"]
    write_record: Writer = namespace["write_record"]
    return read_record, write_record


# the native plan --------------------------------------------------------------------------
#
# The same walk as _compile, producing data instead of functions: the plan the native codec
# (``native/``, module ``labeltrail_native``) reads and writes by. Each node is a tuple:
# (kind, checks) for string, long, double, boolean, bytes and millis; ("optional", node);
# ("array" | "map", node, checks); ("record", model, names, nodes). ``checks`` is a tuple of
# (op, value) with op one of ge, gt, le, lt, min_len, max_len, in (a Literal's values).

Plan = tuple[Any, ...]


def _plan_checks(metadata: list[Any]) -> tuple[tuple[str, Any], ...]:
    out: list[tuple[str, Any]] = []
    for m in metadata:
        if isinstance(m, AfterValidator) and m.func is to_utc_millis:
            continue
        if isinstance(m, annotated_types.Ge):
            out.append(("ge", m.ge))
        elif isinstance(m, annotated_types.Gt):
            out.append(("gt", m.gt))
        elif isinstance(m, annotated_types.Le):
            out.append(("le", m.le))
        elif isinstance(m, annotated_types.Lt):
            out.append(("lt", m.lt))
        elif isinstance(m, annotated_types.MinLen):
            out.append(("min_len", m.min_length))
        elif isinstance(m, annotated_types.MaxLen):
            out.append(("max_len", m.max_length))
        else:
            raise _Unsupported(f"constraint {m!r}")
    return tuple(out)


def _plan(schema: Any, annotation: Any, metadata: list[Any], named: dict[str, Any]) -> Plan:
    """The native plan of one Avro type and its annotation (mirrors :func:`_compile`)."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    annotation, more = _unwrap(annotation)
    metadata = [*metadata, *more]
    origin = typing.get_origin(annotation)
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise _Unsupported(f"union {schema}")
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin not in (Union, types.UnionType) or len(members) != 1:
            raise _Unsupported(f"union for {annotation!r}")
        return ("optional", _plan(schema[1], members[0], metadata, named))
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind == "record":
        if metadata or not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise _Unsupported(f"record {schema.get('name')} for {annotation!r}")
        return _plan_record(schema, annotation, named)
    if kind in ("array", "map"):
        if origin is not (list if kind == "array" else dict):
            raise _Unsupported(f"{kind} for {annotation!r}")
        inner = schema["items"] if kind == "array" else schema["values"]
        item = _plan(inner, typing.get_args(annotation)[-1], [], named)
        return (kind, item, _plan_checks(metadata))
    if not isinstance(schema, str) and schema.get("logicalType") == "timestamp-millis":
        if annotation is not AwareDatetime and annotation is not dt.datetime:
            raise _Unsupported(f"timestamp for {annotation!r}")
        return ("millis", _plan_checks(metadata))
    if kind not in _PRIMITIVES or (not isinstance(schema, str) and len(schema) > 1):
        raise _Unsupported(f"Avro type {schema!r}")
    python = _PRIMITIVES[kind][2]
    if origin is Literal:
        allowed = tuple(dict.fromkeys(typing.get_args(annotation)))
        if not all(type(a) is python for a in allowed):
            raise _Unsupported(f"Literal {annotation!r} for {kind}")
        return (kind, (("in", allowed), *_plan_checks(metadata)))
    if annotation is not python:
        raise _Unsupported(f"{kind} for {annotation!r}")
    return (kind, _plan_checks(metadata))


def _plan_record(schema: Any, model: type[BaseModel], named: dict[str, Any]) -> Plan:
    fields = schema["fields"]
    if [f["name"] for f in fields] != list(model.model_fields):
        raise _Unsupported(f"{model.__name__}: fields differ from the schema")
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


def _millis_of(value: Any) -> int:
    """What the Python writer makes of a timestamp the native writer does not read itself."""
    if value.tzinfo is None:
        raise SerializationError("naive datetime for a timestamp-millis field")
    return epoch_millis(value)


NATIVE_VERSION = "0.1.0"
"""The ``labeltrail_native`` version this module's plans are written for."""


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


class Compiled(typing.NamedTuple):
    read: Reader
    write: Writer
    fingerprint: bytes
    native: bool = False


_COMPILED: dict[str, Compiled | None] = {}
_PYTHON: dict[str, Compiled | None] = {}
_NATIVE: dict[str, Compiled | None] = {}


def compiled_python(name: str) -> Compiled | None:
    """The pure-Python compiled codec of an event type (the reference and the fallback)."""
    if name in _PYTHON:
        return _PYTHON[name]
    schema = committed_schemas().get(name)
    model = EVENT_TYPES.get(name)
    entry: Compiled | None = None
    if schema is not None and model is not None:
        fp = next(f for f, w in writer_schemas().items() if w.schema is schema)
        try:
            read, write = _compile_record(schema, model, schema.get("__named_schemas", {}))
            entry = Compiled(read, write, fp)
        except _Unsupported:
            entry = None
    _PYTHON[name] = entry
    return entry


def compiled_native(name: str) -> Compiled | None:
    """The native codec of an event type, or None (not built, or a model it cannot plan).

    Only event types the Python codec compiles are planned, so the two accept the same types.
    """
    if name in _NATIVE:
        return _NATIVE[name]
    python = compiled_python(name)
    entry: Compiled | None = None
    if native is not None and python is not None:
        schema = committed_schemas()[name]
        try:
            plan = _plan_record(schema, EVENT_TYPES[name], schema.get("__named_schemas", {}))
            codec = native.Codec(plan, EPOCH.tzinfo, _millis_of)
            entry = Compiled(codec.read, codec.write, python.fingerprint, True)
        except (_Unsupported, ValueError, TypeError):
            entry = None
    _NATIVE[name] = entry
    return entry


def compiled(name: str) -> Compiled | None:
    """The compiled codec of an event type's current contract (None: use the general path).

    Native when ``labeltrail_native`` is built (and LABELTRAIL_NATIVE is not 0), else Python.
    """
    if name in _COMPILED:
        return _COMPILED[name]
    entry = compiled_native(name) or compiled_python(name)
    _COMPILED[name] = entry
    return entry
