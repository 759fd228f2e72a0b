"""Where answers go: a sink whose ``publish`` returns only once the event is on the broker.

:class:`KafkaSink` batches concurrent submissions into one flush (group commit): a publisher
thread takes everything queued, sends it, flushes once and then resolves every waiting
request. A request is answered 200 only after its flush succeeded, so an acknowledged vote is
never lost, even if the process is stopped right after.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading

from labeltrail.annotate.sink import PublishError
from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.kafka.producer import EventProducer

__all__ = ["KafkaSink"]

log = logging.getLogger(__name__)


_Item = tuple[Event, concurrent.futures.Future[None]]
_STOP = object()


class KafkaSink:
    """Group-commit publisher over :class:`EventProducer` (idempotent, acks=all)."""

    def __init__(self, settings: Settings, *, flush_timeout: float = 10.0) -> None:
        self._producer = EventProducer(settings, **{"linger.ms": 1})
        self._flush_timeout = flush_timeout
        self._queue: queue.Queue[_Item | object] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="annotate-publisher", daemon=True)
        self._thread.start()

    async def publish(self, event: Event) -> None:
        if self._closed:
            raise PublishError("the frontend is shutting down")
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((event, future))
        await asyncio.wrap_future(future)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Item] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._flush(batch)

    def _flush(self, batch: list[_Item]) -> None:
        try:
            for event, _ in batch:
                self._producer.send(event)
            self._producer.flush(self._flush_timeout)
        except Exception as exc:
            log.error("could not produce %d answer(s): %s", len(batch), exc)
            for _, future in batch:
                future.set_exception(PublishError(f"broker did not take the answer: {exc}"))
            return
        for _, future in batch:
            future.set_result(None)

    def close(self) -> None:
        """Flush everything queued, then stop the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(self._flush_timeout + 5)
