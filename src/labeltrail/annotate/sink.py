"""What a submission is handed to: a sink whose ``publish`` returns once the event is durable.

Pure: the Kafka implementation is :class:`labeltrail.annotate.publish.KafkaSink`.
"""

from __future__ import annotations

from typing import Protocol

from labeltrail.events.base import Event
from labeltrail.exceptions import LabeltrailError

__all__ = ["MemorySink", "PublishError", "Sink"]


class PublishError(LabeltrailError):
    """An answer could not be written to the broker; the client may resubmit."""


class Sink(Protocol):
    """Accepts answers; ``publish`` returns when the event is durably written."""

    async def publish(self, event: Event) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps events in a list (unit tests and dry runs)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    async def publish(self, event: Event) -> None:
        if self.closed:
            raise PublishError("sink is closed")
        self.events.append(event)

    def close(self) -> None:
        self.closed = True
