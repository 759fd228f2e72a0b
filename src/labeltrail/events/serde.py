"""Avro single-object encoding of events, with schema resolution on read.

A message is ``C3 01``, the writer schema's 8-byte CRC-64-AVRO fingerprint (little-endian, as
the Avro specification and its Java ``BinaryMessageEncoder`` write it) and the Avro body, so no
registry is needed: the reader knows every committed version. Readers also take the legacy
header (the fingerprint's bytes reversed, written by labeltrail 0.1.0) until
:data:`~labeltrail.events.avro.LEGACY_ORDER_REMOVED_IN`. A record in the Confluent framing
(``00``, a schema id) is read through the :class:`FramedReader` the schema registry adapter
installs (:mod:`labeltrail.kafka.registry`). The compiled
codec (native, or :mod:`labeltrail.events.codec`) is the hot path for current contracts;
fastavro + pydantic decode older writer versions, uncompiled models and every message the
compiled reader does not accept, so a bad message is rejected with exactly the reason
pydantic or fastavro gives (``docs/streaming.md``, "Event encoding on the hot path").
"""

from __future__ import annotations

import io
import struct
from typing import Any, Protocol

from fastavro import schemaless_reader, schemaless_writer
from pydantic import ValidationError

from labeltrail.events.avro import (
    WriterSchema,
    accepted_writers,
    committed_schemas,
    writer_schemas,
)
from labeltrail.events.base import Event
from labeltrail.events.codec import compiled as _compiled
from labeltrail.events.models import EVENT_TYPES
from labeltrail.exceptions import (
    RegistryUnavailableError,
    SchemaInvalidError,
    SerializationError,
    UndecodableError,
    UnknownEventTypeError,
)

__all__ = [
    "CONFLUENT_MAGIC",
    "MAGIC",
    "FramedReader",
    "decode",
    "encode",
    "encode_with",
    "event_type_of",
    "read_framed_with",
]

MAGIC = b"\xc3\x01"
_HEADER = len(MAGIC) + 8
CONFLUENT_MAGIC = b"\x00"
"""The first byte of the Confluent framing: then a 4-byte big-endian schema id, the body."""


class FramedReader(Protocol):
    """Reads Confluent-framed messages: the schema registry adapter
    (:mod:`labeltrail.kafka.registry`) installs one with :func:`read_framed_with`."""

    def name_of(self, data: bytes) -> str:
        """The event type of the message's writer schema (a SerializationError if unknown)."""

    def record_of(self, data: bytes, name: str) -> dict[str, Any]:
        """The record, resolved to the current contract of ``name``."""


_framed: list[FramedReader] = []


def read_framed_with(reader: FramedReader | None) -> None:
    """Make :func:`decode` and :func:`event_type_of` read Confluent-framed messages with
    ``reader`` (None: refuse them again)."""
    _framed[:] = [reader] if reader is not None else []


def _framed_reader(data: bytes) -> FramedReader:
    if not _framed:
        schema_id = int.from_bytes(data[1:5], "big") if len(data) >= 5 else None
        raise RegistryUnavailableError(
            f"a Confluent-framed message (schema id {schema_id}) and no schema registry "
            "configured (LABELTRAIL_SCHEMA_REGISTRY_URL)"
        )
    return _framed[0]


# encoding ----------------------------------------------------------------------------------


def _current(name: str) -> tuple[Any, bytes]:
    schema = committed_schemas().get(name)
    if schema is None:
        raise SerializationError(f"no committed contract for event type {name!r}")
    for writer in writer_schemas().values():
        if writer.schema is schema:
            return schema, writer.fingerprint
    raise SerializationError(f"no fingerprint for {name!r}")  # pragma: no cover


_CURRENT: dict[str, tuple[Any, bytes]] = {}


def encode(event: Event) -> bytes:
    """Encode an event with its current contract."""
    name = type(event).__name__
    compiled = _compiled(name)
    if compiled is not None:
        buf = bytearray(MAGIC)
        buf += compiled.fingerprint
        try:
            compiled.write(buf, event)
        except SerializationError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, struct.error) as exc:
            raise SerializationError(f"cannot encode {name}: {exc}") from exc
        return bytes(buf)
    entry = _CURRENT.get(name)
    if entry is None:
        entry = _CURRENT[name] = _current(name)
    schema, fp = entry
    return encode_with(schema, fp, event.model_dump())


def encode_with(schema: Any, fp: bytes, record: dict[str, Any]) -> bytes:
    """Encode a plain record with a given parsed schema and fingerprint (tests, old writers)."""
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(fp)
    try:
        schemaless_writer(buf, schema, record)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SerializationError(f"cannot encode {schema.get('name')}: {exc}") from exc
    return buf.getvalue()


# decoding ----------------------------------------------------------------------------------


def event_type_of(data: bytes) -> str:
    """The event type a message claims, from its fingerprint (or its registry schema id),
    without decoding the body."""
    if data[:1] == CONFLUENT_MAGIC:
        return _framed_reader(data).name_of(data)
    return _writer(data).name


def _writer(data: bytes) -> WriterSchema:
    if len(data) < _HEADER or data[:2] != MAGIC:
        raise UndecodableError("not an Avro single-object message (bad marker or too short)")
    writer = accepted_writers().get(data[2:_HEADER])
    if writer is None:
        raise UnknownEventTypeError(f"unknown schema fingerprint {data[2:_HEADER].hex()}")
    return writer


def decode(data: bytes) -> Event:
    """Decode a message into its event model, resolving an older writer schema.

    Raises :class:`UndecodableError`, :class:`UnknownEventTypeError` or
    :class:`SchemaInvalidError`; each carries the dead-letter ``reason_code``.
    """
    if data[:1] == CONFLUENT_MAGIC:
        reader = _framed_reader(data)
        name = reader.name_of(data)
        return _validated(name, reader.record_of(data, name))
    writer = _writer(data)
    name = writer.name
    compiled = _compiled(name)
    if compiled is not None and writer.fingerprint == compiled.fingerprint:
        try:
            event, end = compiled.read(data, _HEADER)
            if end == len(data) and event.envelope.event_type == name:  # type: ignore[attr-defined]
                return event  # type: ignore[no-any-return]
        except Exception:  # any doubt: the general path decides, and explains a rejection
            pass
    return _decode_general(data, name)


def _decode_general(data: bytes, name: str) -> Event:
    writer = accepted_writers()[data[2:_HEADER]]
    reader = committed_schemas()[name]
    buf = io.BytesIO(data)
    buf.seek(_HEADER)
    try:
        # Same version: no resolution needed. Both schemas are parsed once (fastavro marks a
        # parsed schema and skips re-parsing it), which halves the cost of a decode.
        resolve = None if writer.schema is reader else reader
        record = schemaless_reader(buf, writer.schema, resolve)
    except Exception as exc:  # fastavro raises a variety of errors on corrupt bodies
        raise UndecodableError(f"corrupt {name} body: {type(exc).__name__}: {exc}") from exc
    if buf.tell() != len(data):
        raise UndecodableError(f"{len(data) - buf.tell()} trailing bytes after {name} body")
    return _validated(name, record)


def _validated(name: str, record: Any) -> Event:
    """The event model of a decoded record, or SchemaInvalidError saying what is wrong."""
    model = EVENT_TYPES.get(name)
    if model is None:
        raise UnknownEventTypeError(f"no model for event type {name!r}")
    try:
        event = model.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SchemaInvalidError(f"{name}.{where}: {first['msg']}") from exc
    if event.envelope.event_type != name:
        raise SchemaInvalidError(
            f"envelope says {event.envelope.event_type!r} but the schema is {name!r}"
        )
    return event
