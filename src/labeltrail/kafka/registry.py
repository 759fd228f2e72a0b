"""The schema registry wire format: Confluent framing (``00``, a 4-byte schema id, the Avro
body) through confluent-kafka's own ``schema_registry`` client, ``AvroSerializer`` and
``AvroDeserializer``.

Subjects are per topic and event type (``<topic>-labeltrail.events.<Type>``, the
``TopicRecordNameStrategy``): a topic may carry several event types, and each type's versions
are checked for compatibility on their own. Writers register the committed contract
(``schemas/avro``) on first use; the registry's compatibility rule (BACKWARD, see
:func:`require_backward`) refuses a contract change that would break readers.

Readers resolve each record's writer schema (fetched by id, cached by the client) to labeltrail's
current contract of its type and validate it with the event model, as
:func:`labeltrail.events.serde.decode` does for single-object messages: an unknown id is
``unknown_event_type``, a registry that cannot be asked ``registry_unavailable``, a bad body
``undecodable`` or ``schema_invalid``; each is dead-lettered by the stage that reads it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from confluent_kafka.schema_registry import (
    SchemaRegistryClient,
    SchemaRegistryError,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from labeltrail.config import Settings
from labeltrail.events import serde
from labeltrail.events.avro import NAMESPACE, committed_schemas, schema_dir
from labeltrail.events.base import Event
from labeltrail.exceptions import (
    ConfigurationError,
    RegistryUnavailableError,
    SerializationError,
    UndecodableError,
    UnknownEventTypeError,
)

__all__ = ["RegistryCodec", "codec_for", "require_backward", "subject_of"]

_NOT_FOUND = 404


def subject_of(topic: str, event_type: str) -> str:
    """The subject of an event type's schema on a topic (TopicRecordNameStrategy)."""
    return f"{topic}-{NAMESPACE}.{event_type}"


def _contract(name: str) -> str:
    return (schema_dir() / f"{name}.avsc").read_text()


class RegistryCodec:
    """Writes and reads the Confluent framing against one schema registry."""

    def __init__(self, url: str, *, timeout: float = 5.0, retries: int = 2) -> None:
        self.url = url
        self.client = SchemaRegistryClient(
            {"url": url, "timeout": timeout, "max.retries": retries, "retries.wait.ms": 200}
        )
        self._serializers: dict[str, AvroSerializer] = {}
        self._deserializers: dict[str, AvroDeserializer] = {}
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the client's HTTP session (the codec is unusable afterwards)."""
        self.client.close()

    # writing -------------------------------------------------------------------------------

    def encode(self, event: Event, topic: str) -> bytes:
        """The event in the Confluent framing, its contract registered under its subject."""
        name = type(event).__name__
        serializer = self._serializers.get(name)
        if serializer is None:
            with self._lock:
                serializer = self._serializers.setdefault(
                    name,
                    AvroSerializer(
                        self.client,
                        _contract(name),
                        lambda e, _ctx: e.model_dump(),
                        {
                            "auto.register.schemas": True,
                            "subject.name.strategy": topic_record_subject_name_strategy,
                        },
                    ),
                )
        ctx = SerializationContext(topic, MessageField.VALUE)
        try:
            data = serializer(event, ctx)
        except SchemaRegistryError as exc:
            raise SerializationError(
                f"the schema registry refused {name} on {topic}: {exc.error_message}"
            ) from exc
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(f"cannot encode {name}: {exc}") from exc
        except Exception as exc:  # no answer: the client's transport errors (httpx's)
            raise RegistryUnavailableError(f"schema registry {self.url}: {exc}") from exc
        if data is None:  # pragma: no cover - only for a None event
            raise SerializationError(f"the serializer wrote nothing for {name}")
        return data

    # reading -------------------------------------------------------------------------------

    def name_of(self, data: bytes) -> str:
        if len(data) < 5:
            raise UndecodableError("a Confluent-framed message shorter than its header")
        schema_id = int.from_bytes(data[1:5], "big")
        name = self._names.get(schema_id)
        if name is None:
            try:
                schema = self.client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == _NOT_FOUND:
                    raise UnknownEventTypeError(f"unknown schema id {schema_id}") from exc
                raise RegistryUnavailableError(
                    f"schema registry {self.url}, schema id {schema_id}: {exc.error_message}"
                ) from exc
            except Exception as exc:  # no answer: the client's transport errors (httpx's)
                raise RegistryUnavailableError(
                    f"schema registry {self.url}, schema id {schema_id}: {exc}"
                ) from exc
            try:
                full = json.loads(schema.schema_str or "")
                name = str(full["name"]).rpartition(".")[2]
            except (ValueError, KeyError, TypeError) as exc:
                raise UnknownEventTypeError(f"schema id {schema_id} is no Avro record") from exc
            if full.get("namespace", NAMESPACE) != NAMESPACE or name not in committed_schemas():
                raise UnknownEventTypeError(f"schema id {schema_id} is {full['name']!r}")
            self._names[schema_id] = name
        return name

    def record_of(self, data: bytes, name: str) -> dict[str, Any]:
        deserializer = self._deserializers.get(name)
        if deserializer is None:
            with self._lock:
                deserializer = self._deserializers.setdefault(
                    name, AvroDeserializer(self.client, _contract(name))
                )
        try:
            record = deserializer(data, SerializationContext("", MessageField.VALUE))
        except Exception as exc:  # fastavro and the deserializer raise a variety on bad bodies
            raise UndecodableError(f"corrupt {name} body: {type(exc).__name__}: {exc}") from exc
        if not isinstance(record, dict):
            raise UndecodableError(f"a {name} body that is not a record")
        return record


_CODECS: dict[str, RegistryCodec] = {}
_CODECS_LOCK = threading.Lock()


def codec_for(settings: Settings) -> RegistryCodec | None:
    """The process's codec for the configured registry (installed as the reader of
    Confluent-framed records), or None when none is configured. ``wire_format=registry``
    without a registry URL is a ConfigurationError."""
    url = settings.schema_registry_url
    if not url:
        if settings.wire_format == "registry":
            raise ConfigurationError(
                "LABELTRAIL_WIRE_FORMAT=registry needs LABELTRAIL_SCHEMA_REGISTRY_URL"
            )
        return None
    with _CODECS_LOCK:
        codec = _CODECS.get(url)
        if codec is None:
            codec = _CODECS[url] = RegistryCodec(url)
        serde.read_framed_with(codec)
    return codec


def require_backward(codec: RegistryCodec, subject: str | None = None) -> None:
    """Set the BACKWARD compatibility rule, on one subject or as the registry's default: a
    new version must read what the previous one wrote."""
    codec.client.set_compatibility(subject, "BACKWARD")
