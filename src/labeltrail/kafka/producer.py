"""An idempotent event producer whose partitioner agrees with the Java and faust clients."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.serde import encode
from labeltrail.events.topics import PICKED_BY, topic_for
from labeltrail.exceptions import LabeltrailError
from labeltrail.kafka.registry import codec_for
from labeltrail.kafka.security import refusal

__all__ = [
    "RECORD_OVERHEAD_BYTES",
    "EventEncoder",
    "EventProducer",
    "ProduceError",
    "RecordTooLargeError",
    "producer_config",
]

RECORD_OVERHEAD_BYTES = 512
"""Room left under ``message.max.bytes`` for the record's framing, so a record that passes our
check is never refused by the client for its size."""


POLL_EVERY = 64
"""Delivery reports are served (``poll(0)``) once every this many records sent, besides the
caller's own ``poll`` and ``flush`` (a stage runner polls once per batch, before it checks
``delivered``): an empty poll per record was about 1% of a fused process's runner thread."""


class ProduceError(LabeltrailError):
    """The broker did not accept a message."""


class RecordTooLargeError(ProduceError):
    """A record is over the producer's size limit; nothing was sent."""


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
        "message.max.bytes": settings.kafka_message_max_bytes,
    }
    conf.update(overrides)
    return conf


class EventEncoder:
    """An event's record: its topic (from the registry), key and Avro value, within the size
    limit. Shared by :class:`EventProducer` and the faust runner, so both write the same
    records and refuse the same ones."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topics: dict[tuple[str, str | None], str] = {}
        self._fixed_topics: dict[type[Event], str] = {}
        registry = codec_for(settings)  # also reads Confluent-framed records from now on
        self._registry = registry if settings.wire_format == "registry" else None

    def encode(self, event: Event, topic: str) -> bytes:
        """The event's value in the configured wire format (``LABELTRAIL_WIRE_FORMAT``)."""
        if self._registry is not None:
            return self._registry.encode(event, topic)
        return encode(event)

    def topic_of(self, event: Event) -> str:
        cls = type(event)
        topic = self._fixed_topics.get(cls)
        if topic is not None:  # most types: one topic whatever the event says
            return topic
        name = cls.__name__
        field = PICKED_BY.get(name)
        if field is None:
            topic = self._fixed_topics[cls] = topic_for(name, self._settings.topic_prefix)
            return topic
        # Not getattr(event, field, None): a miss goes through pydantic's __getattr__.
        value = event.__dict__.get(field)
        topic = self._topics.get((name, value))
        if topic is None:
            topic = self._topics[(name, value)] = topic_for(
                name, self._settings.topic_prefix, **{field: value}
            )
        return topic

    def records(self, events: list[Event]) -> list[tuple[str, bytes, bytes]]:
        """(topic, key, value) of every event: :class:`RecordTooLargeError` if any is over."""
        records = []
        for event in events:
            topic = self.topic_of(event)
            records.append((topic, event.key.encode(), self.encode(event, topic)))
        for topic, key, value in records:
            self._check_size(topic, key, value)
        return records

    def fits(self, key: bytes | None, value: bytes) -> bool:
        """Whether a record of this key and value is within the producer's size limit."""
        size = len(value) + (len(key) if key else 0) + RECORD_OVERHEAD_BYTES
        return size <= self._settings.kafka_message_max_bytes

    def _check_size(self, topic: str, key: bytes | None, value: bytes) -> None:
        if not self.fits(key, value):
            raise RecordTooLargeError(
                f"{topic}: a record of {len(value):,} bytes is over the producer's limit of "
                f"{self._settings.kafka_message_max_bytes:,} (LABELTRAIL_KAFKA_MESSAGE_MAX_BYTES)"
            )


class EventProducer(EventEncoder):
    """Produces events to their topics; ``flush`` raises if any delivery failed.

    Besides ``flush``, the producer numbers what it sends in *tickets* so a caller can move on
    without waiting: :meth:`checkpoint` closes the current ticket, and :meth:`delivered` tells,
    without blocking, whether everything sent up to a ticket has been acknowledged. A stage
    runner commits a batch's input offsets once its ticket is delivered.
    """

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        super().__init__(settings)
        self._producer = Producer(producer_config(settings, **overrides))
        self._errors: list[str] = []
        self.sent = 0
        self._ticket = 0
        self._unacked: dict[int, int] = {}
        """ticket -> messages sent under it and not yet acknowledged (absent when none)."""
        self._callback = partial(self._on_delivery, 0)

    def _on_delivery(self, ticket: int, err: KafkaError | None, msg: Message) -> None:
        left = self._unacked[ticket] - 1
        if left:
            self._unacked[ticket] = left
        else:
            del self._unacked[ticket]
        if err is not None:
            refused = refusal(self._settings, err, doing="write to", resource=msg.topic() or "")
            self._errors.append(str(refused) if refused else f"{msg.topic()}: {err}")

    def send(self, event: Event, *, topic: str | None = None) -> None:
        """Queue one event (its topic from the registry unless given)."""
        topic = topic or self.topic_of(event)
        self.send_raw(topic, event.key.encode(), self.encode(event, topic))

    def send_all(self, events: list[Event]) -> None:
        """Queue every event, or none: :class:`RecordTooLargeError` if any is over the limit."""
        for topic, key, value in self.records(events):  # sizes checked there, all first
            self._produce(topic, key, value, self._callback)

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue pre-encoded bytes; :class:`RecordTooLargeError` (nothing sent) if too large."""
        self._check_size(topic, key, value)
        self._produce(topic, key, value, self._callback)

    def _produce(
        self, topic: str, key: bytes | None, value: bytes, on_delivery: Callable[..., None]
    ) -> None:
        """Queue one record whose size is checked, under the current ticket."""
        ticket = self._ticket
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)
        self._unacked[ticket] = self._unacked.get(ticket, 0) + 1
        self.sent += 1
        if not self.sent % POLL_EVERY:
            self._producer.poll(0)

    def checkpoint(self) -> int:
        """Close the current ticket and return it; later sends belong to the next one."""
        closed = self._ticket
        self._ticket += 1
        self._callback = partial(self._on_delivery, self._ticket)
        return closed

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports (waiting up to ``timeout`` seconds for the first one)."""
        self._producer.poll(timeout)

    def delivered(self, ticket: int) -> bool:
        """Whether every message sent up to ``ticket`` (inclusive) was acknowledged.

        Raises :class:`ProduceError` if any delivery failed: whatever the caller would have
        committed on the strength of it must not be committed.
        """
        self._raise_errors()
        return not self._unacked or min(self._unacked) > ticket

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise ProduceError(f"{remaining} messages not delivered within {timeout}s")
        self._raise_errors()

    def close(self) -> None:
        """Release the client now (its connections and librdkafka threads) instead of when
        the object is collected, which may be never while anything still holds its owner
        (the demo's stage runners outlived their run, and their producers kept reconnecting
        to a broker long gone). Whatever is still unacknowledged is dropped, not awaited:
        callers flush first where it matters, and nothing is committed on the strength of an
        unacknowledged send."""
        self._producer.purge()
        self._producer.poll(0)
        self._producer.close()

    @property
    def failed(self) -> bool:
        """Whether any delivery has failed (then it stays failed: see :meth:`delivered`)."""
        return bool(self._errors)

    def _raise_errors(self) -> None:
        # Sticky: once a delivery failed, every later flush and ticket check raises too, so
        # nothing that would commit on the strength of a later success ever can.
        if self._errors:
            errors = self._errors
            raise ProduceError(f"{len(errors)} deliveries failed, first: {errors[0]}")
