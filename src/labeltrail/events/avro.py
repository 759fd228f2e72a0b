"""Avro contracts: derive a schema from an event model, load the committed ones, fingerprint.

The committed ``.avsc`` files in ``schemas/avro`` are the contract with producers and
consumers outside this code base. :func:`schema_for` derives what a model implies, and a test
compares the two, so neither can change without the other.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import types
import typing
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, Literal, Union

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from pydantic import AwareDatetime, BaseModel

from labeltrail.events.base import Event
from labeltrail.exceptions import ContractError

__all__ = [
    "LEGACY_ORDER_REMOVED_IN",
    "NAMESPACE",
    "WriterSchema",
    "accepted_writers",
    "committed_schemas",
    "fingerprint64",
    "schema_dir",
    "schema_for",
    "writer_schemas",
]

NAMESPACE = "labeltrail.events"
AvroSchema = dict[str, Any]


def schema_dir() -> Path:
    """Where the committed contracts live (``LABELTRAIL_SCHEMA_DIR`` overrides)."""
    override = os.environ.get("LABELTRAIL_SCHEMA_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "schemas" / "avro"
        if candidate.is_dir():
            return candidate
    raise ContractError("schemas/avro not found; set LABELTRAIL_SCHEMA_DIR")


def _avro_type(annotation: Any, name_hint: str, defined: set[str]) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _avro_type(args[0], name_hint, defined)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) != 1:
            raise ContractError(f"{name_hint}: only Optional unions are supported")
        return ["null", _avro_type(members[0], name_hint, defined)]
    if origin is Literal:
        return "string"
    if origin is list:
        return {"type": "array", "items": _avro_type(args[0], name_hint, defined)}
    if origin is dict:
        if args[0] is not str:
            raise ContractError(f"{name_hint}: map keys must be strings")
        return {"type": "map", "values": _avro_type(args[1], name_hint, defined)}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _record(annotation, defined)
    scalars: dict[Any, Any] = {
        str: "string",
        int: "long",
        float: "double",
        bool: "boolean",
        bytes: "bytes",
    }
    if annotation in scalars:
        return scalars[annotation]
    if annotation is dt.datetime or annotation is AwareDatetime:
        return {"type": "long", "logicalType": "timestamp-millis"}
    raise ContractError(f"{name_hint}: no Avro mapping for {annotation!r}")


def _record(model: type[BaseModel], defined: set[str]) -> Any:
    full_name = f"{NAMESPACE}.{model.__name__}"
    if full_name in defined:
        return full_name
    defined.add(full_name)
    fields: list[dict[str, Any]] = []
    for name, info in model.model_fields.items():
        field: dict[str, Any] = {
            "name": name,
            "type": _avro_type(info.annotation, f"{model.__name__}.{name}", defined),
        }
        if info.description:
            field["doc"] = info.description
        if not info.is_required():
            default = info.get_default(call_default_factory=True)
            field["default"] = default
        fields.append(field)
    record: dict[str, Any] = {"type": "record", "name": model.__name__, "namespace": NAMESPACE}
    if model.__doc__:
        record["doc"] = " ".join(model.__doc__.split())
    record["fields"] = fields
    return record


def schema_for(model: type[Event]) -> AvroSchema:
    """The Avro schema a model implies (the envelope as a nested ``Envelope`` record)."""
    schema: AvroSchema = _record(model, set())
    return schema


class WriterSchema(typing.NamedTuple):
    """One committed schema version."""

    name: str
    version: int
    schema: Any
    fingerprint: bytes


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ContractError(f"cannot read contract {path}: {exc}") from exc


_LOAD_LOCK = threading.RLock()
T = typing.TypeVar("T")


def _once(load: Callable[[], T]) -> Callable[[], T]:
    """Compute ``load()`` once, even when several threads ask first at the same moment.

    ``functools.cache`` would let two threads each compute and keep different results; the
    codecs compare parsed schemas by identity, so every caller must get the same objects
    (the demo's stage threads hit exactly that race).
    """
    done: list[T] = []

    @wraps(load)
    def get() -> T:
        if not done:
            with _LOAD_LOCK:
                if not done:
                    done.append(load())
        return done[0]

    return get


@_once
def committed_schemas() -> dict[str, Any]:
    """The current contract of every event type, parsed, by record name."""
    out: dict[str, Any] = {}
    for path in sorted(schema_dir().glob("*.avsc")):
        raw = _load(path)
        out[raw["name"]] = parse_schema(raw)
    return out


def fingerprint64(parsed: Any) -> int:
    """The schema's CRC-64-AVRO fingerprint of its parsing canonical form, as a signed 64-bit
    integer: what Java's ``SchemaNormalization.parsingFingerprint64`` returns.

    fastavro's hex spells the fingerprint's bytes in little-endian order (Java's
    ``0xf1402114dc26a86a`` for ``CommentPosted`` is ``6aa826dc142140f1`` there).
    """
    raw = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    return int.from_bytes(raw, "little", signed=True)


def _fingerprint(parsed: Any) -> bytes:
    """The 8 header bytes of the single-object encoding: the fingerprint, little-endian."""
    return fingerprint64(parsed).to_bytes(8, "little", signed=True)


LEGACY_ORDER_REMOVED_IN = "1.0.0"
"""The release that stops reading the legacy header byte order.

labeltrail 0.1.0 wrote the fingerprint's eight bytes in reverse (big-endian) order, which no
other Avro implementation reads. Every 0.x release reads both orders, so logs written before
the fix still decode; 1.0.0 drops the legacy keys (``tests/events/test_contracts.py`` fails
once the package version reaches it while they are still here). Writers always use the
specification's order.
"""


@_once
def writer_schemas() -> dict[bytes, WriterSchema]:
    """Every schema version a reader accepts, current and historical, by fingerprint.

    The fingerprint is the CRC-64-AVRO of the parsing canonical form, stored little-endian as
    the Avro single-object encoding specifies. Historical versions live in
    ``schemas/avro/history/<Name>.v<N>.avsc``; the current one is the highest version.
    Readers look headers up in :func:`accepted_writers`, which adds the legacy byte order.
    """
    out: dict[bytes, WriterSchema] = {}
    history = schema_dir() / "history"
    current = committed_schemas()
    versions: dict[str, int] = {}
    if history.is_dir():
        for path in sorted(history.glob("*.avsc")):
            stem_name, _, version = path.stem.partition(".v")
            parsed = parse_schema(_load(path))
            number = int(version)
            versions[stem_name] = max(versions.get(stem_name, 0), number)
            fp = _fingerprint(parsed)
            out[fp] = WriterSchema(stem_name, number, parsed, fp)
    for name, parsed in current.items():
        fp = _fingerprint(parsed)
        out[fp] = WriterSchema(name, versions.get(name, 0) + 1, parsed, fp)
    return out


@_once
def accepted_writers() -> dict[bytes, WriterSchema]:
    """What a reader accepts as header bytes: every :func:`writer_schemas` fingerprint in the
    specification's order, and each in the legacy reversed order (until
    :data:`LEGACY_ORDER_REMOVED_IN`), mapped to the same writer (whose ``fingerprint`` is the
    specification's)."""
    spec = writer_schemas()
    out = dict(spec)
    for fp, writer in spec.items():
        legacy = fp[::-1]
        if legacy in spec and spec[legacy] is not writer:
            raise ContractError(
                f"{writer.name} v{writer.version}: its legacy header {legacy.hex()} is the "
                f"fingerprint of {spec[legacy].name} v{spec[legacy].version}"
            )
        out.setdefault(legacy, writer)
    return out
