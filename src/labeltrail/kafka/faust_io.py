"""What the faust runner reads and writes: the broker's address and credentials in faust's
terms, a consumed record in the shape the shared record handler reads, and the outbox that
encodes a record's outputs for the agent to send."""

from __future__ import annotations

from typing import Any

import faust

from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.kafka.producer import EventEncoder
from labeltrail.kafka.security import ssl_context

__all__ = ["Outbox", "Record", "brokers", "credentials"]


class Record:
    """A faust message in the shape :class:`~labeltrail.kafka.records.Record` (confluent's)."""

    def __init__(self, topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        self._at = (topic, partition, offset)
        self._key = key if isinstance(key, bytes) else None
        self._value = value if isinstance(value, bytes) else b""

    def topic(self) -> str:
        return self._at[0]

    def partition(self) -> int:
        return self._at[1]

    def offset(self) -> int:
        return self._at[2]

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes:
        return self._value


class Outbox(EventEncoder):
    """Collects the records of one input's outputs and dead letters for the agent to send."""

    def __init__(self, config: Settings) -> None:
        super().__init__(config)
        self.queued: list[tuple[str, bytes, bytes]] = []

    def send(self, event: Event) -> None:
        self.queued.extend(self.records([event]))

    def send_all(self, events: list[Event]) -> None:
        self.queued.extend(self.records(events))

    def take(self) -> list[tuple[str, bytes, bytes]]:
        queued, self.queued = self.queued, []
        return queued


def brokers(config: Settings) -> list[str]:
    """The bootstrap servers as faust's broker URLs."""
    return [f"kafka://{h.strip()}" for h in config.kafka_bootstrap_servers.split(",")]


def credentials(config: Settings) -> faust.types.auth.CredentialsT | None:
    """The settings' credentials for faust: the same ``settings.kafka`` section librdkafka
    clients get, with TLS as an :class:`ssl.SSLContext` (None for PLAINTEXT)."""
    section = config.kafka
    protocol = section.security_protocol
    context = ssl_context(section)
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = section.sasl_password
    return faust.SASLCredentials(
        username=section.sasl_username,
        password=password.get_secret_value() if password is not None else None,
        mechanism=section.sasl_mechanism,
        ssl_context=context,
    )
