"""The pure-Python compiled Avro codec: each current contract's plan as plain readers and writers.

Serde's hot path when the native codec is not used, and the reference the native one is
tested against: each plan (:mod:`labeltrail.events.plan`) is compiled into straight-line
Python that writes from the model's attributes and builds models directly, checking only the
constraints Avro does not guarantee. A compiled reader never reports an error; serde hands what
it refuses to the general path, which explains it (``docs/streaming.md``, "Event encoding on
the hot path").
"""

from __future__ import annotations

import datetime as dt
import operator
import struct
from collections.abc import Callable
from functools import cache, partial
from typing import Any

from labeltrail.events.base import epoch_millis, from_epoch_millis
from labeltrail.events.native import compiled_native
from labeltrail.events.plan import Compiled, Plan, Reader, Writer, contract
from labeltrail.exceptions import SerializationError

__all__ = ["Compiled", "Reader", "Writer", "compiled", "compiled_python"]

_DOUBLE = struct.Struct("<d")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1

Reader_Writer = tuple[Reader, Writer]


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


_PRIMITIVES: dict[str, Reader_Writer] = {
    "string": (_r_string, _w_string),
    "long": (_r_long, _w_long),
    "double": (_r_double, _w_double),
    "boolean": (_r_boolean, _w_boolean),
    "bytes": (_r_bytes, _w_bytes),
    "millis": (_r_millis, _w_millis),
}
"""The reader and writer of each plan kind that is a single Avro value."""


# constraints -------------------------------------------------------------------------------


def _bound(op: Callable[[Any, Any], bool], bound: Any) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        return op(value, bound)

    return test


def _length(op: Callable[[Any, Any], bool], bound: int) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        return op(len(value), bound)

    return test


_TESTS: dict[str, Callable[[Any], Callable[[Any], bool]]] = {
    "ge": partial(_bound, operator.ge),
    "gt": partial(_bound, operator.gt),
    "le": partial(_bound, operator.le),
    "lt": partial(_bound, operator.lt),
    "min_len": partial(_length, operator.ge),
    "max_len": partial(_length, operator.le),
}


def _check(checks: tuple[tuple[str, Any], ...]) -> Callable[[Any], bool] | None:
    """A predicate for a plan node's checks, or None if there are none."""
    if checks and checks[0][0] == "in":
        allowed = frozenset(checks[0][1])
        rest = _check(checks[1:])

        def in_literal(value: Any) -> bool:
            return value in allowed and (rest is None or rest(value))

        return in_literal
    tests = [_TESTS[op](bound) for op, bound in checks]
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


# compiling a plan --------------------------------------------------------------------------


def _compile(node: Plan) -> Reader_Writer:
    """A reader and a writer for one plan node."""
    kind = node[0]
    if kind == "optional":
        read_x, write_x = _compile(node[1])

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
    if kind == "record":
        return _compile_record(node)
    if kind in ("array", "map"):
        read_item, write_item = _compile(node[1])
        read = _array_reader(read_item) if kind == "array" else _map_reader(read_item)
        write = _array_writer(write_item) if kind == "array" else _map_writer(write_item)
        return _constrained(read, _check(node[2])), write
    read, write = _PRIMITIVES[kind]
    return _constrained(read, _check(node[1])), write


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


def _compile_record(node: Plan) -> Reader_Writer:
    _, model, names, nodes = node
    readers: list[Reader] = []
    writers: list[Writer] = []
    for field in nodes:
        read, write = _compile(field)
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


# the codec of each event type --------------------------------------------------------------


@cache
def compiled_python(name: str) -> Compiled | None:
    """The pure-Python compiled codec of an event type (the reference and the fallback)."""
    found = contract(name)
    if found is None:
        return None
    plan, fingerprint = found
    return Compiled(*_compile_record(plan), fingerprint)


@cache
def compiled(name: str) -> Compiled | None:
    """The compiled codec of an event type's current contract (None: use the general path).

    Native (:mod:`labeltrail.events.native`) when ``labeltrail_native`` is built and
    LABELTRAIL_NATIVE is not 0, else Python.
    """
    return compiled_native(name) or compiled_python(name)
