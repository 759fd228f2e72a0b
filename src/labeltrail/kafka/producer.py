"""An idempotent event producer whose partitioner agrees with the Java and faust clients."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.serde import encode
from labeltrail.events.topics import topic_for
from labeltrail.exceptions import LabeltrailError

__all__ = ["EventProducer", "ProduceError", "producer_config"]


class ProduceError(LabeltrailError):
    """The broker did not accept a message."""


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """librdkafka producer settings: idempotent, acks=all, murmur2 partitioning.

    murmur2_random is the Java client's partitioner; faust (aiokafka) uses the same, so table
    changelogs land in the partition of their source records.
    """
    conf: dict[str, Any] = {
        **settings.kafka_config(),
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    conf.update(overrides)
    return conf


class EventProducer:
    """Produces events to their topics; ``flush`` raises if any delivery failed."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self._settings = settings
        self._producer = Producer(producer_config(settings, **overrides))
        self._errors: list[str] = []
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def send(self, event: Event, *, topic: str | None = None) -> None:
        """Queue one event (its topic from the registry unless given)."""
        self.send_raw(topic or self.topic_of(event), event.key.encode(), encode(event))

    def topic_of(self, event: Event) -> str:
        pool = getattr(event, "pool", None)
        return topic_for(type(event).__name__, self._settings.topic_prefix, pool=pool)

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue pre-encoded bytes (used by tests to inject bad input)."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)
        self.sent += 1

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise ProduceError(f"{remaining} messages not delivered within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise ProduceError(f"{len(errors)} deliveries failed, first: {errors[0]}")
