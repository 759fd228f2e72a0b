"""Compose the frontend (feed thread, Kafka sink, aiohttp app) and run it.

Shutdown order, on SIGTERM or SIGINT: stop accepting connections, let in-flight requests
finish (up to ``shutdown_timeout``; a submission in flight completes its flush and gets its
200), then close the sink (flushing anything queued) and stop the feed. A vote that was
acknowledged is on the broker; one that was not can be resubmitted and carries the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator

from aiohttp import web

from labeltrail.annotate.app import Frontend, create_app
from labeltrail.annotate.auth import TokenStore
from labeltrail.annotate.feed import TaskFeed, wait_ready
from labeltrail.annotate.metrics import Metrics
from labeltrail.annotate.publish import KafkaSink
from labeltrail.annotate.queue import TaskQueue
from labeltrail.annotate.ratelimit import RateLimiter
from labeltrail.annotate.sessions import SessionStore
from labeltrail.annotate.sink import Sink
from labeltrail.config import Settings
from labeltrail.exceptions import ConfigurationError
from labeltrail.kafka.keys import KafkaKeyStore

__all__ = ["AnnotateService", "background_server", "serve"]


class AnnotateService:
    """One frontend process's parts; :meth:`start` and :meth:`stop` run in its event loop."""

    def __init__(
        self,
        settings: Settings,
        *,
        tokens: TokenStore | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.settings = settings
        self.config = config = settings.annotate
        if tokens is None:
            tokens = TokenStore.load(
                config.tokens_file, config.tokens, max_age=config.token_max_age
            )
        if not len(tokens):
            raise ConfigurationError(
                "no annotator tokens: set LABELTRAIL_ANNOTATE_TOKENS_FILE or _TOKENS"
            )
        self.metrics = Metrics()
        self.queue = TaskQueue()
        self.feed = TaskFeed(settings, self.queue, self.metrics)
        self._stop_feed = threading.Event()
        self._feed_thread = threading.Thread(
            target=self.feed.run, args=(self._stop_feed,), name="annotate-feed", daemon=True
        )
        self.frontend = Frontend(
            queue=self.queue,
            sink=sink if sink is not None else KafkaSink(settings),
            tokens=tokens,
            submit_limit=RateLimiter(config.submit_rate, config.submit_burst),
            signin_limit=RateLimiter(config.signin_rate, config.signin_burst),
            sessions=SessionStore(max_age=config.session_max_age, idle=config.session_idle),
            auth_limit=RateLimiter(config.auth_fail_rate, config.auth_fail_burst),
            metrics=self.metrics,
            is_ready=lambda: self.feed.caught_up.is_set() and self.feed.failed is None,
            secure_cookie=config.secure_cookie,
            keyring=KafkaKeyStore(settings),
        )
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, *, wait_for_log: bool = True) -> str:
        """Start the feed and the HTTP server; returns the base URL."""
        self._feed_thread.start()
        if wait_for_log:
            ready = await asyncio.to_thread(wait_ready, self.feed, self.config.ready_timeout)
            if not ready:
                raise ConfigurationError(f"task log not read: {self.feed.failed or 'timeout'}")
        app = create_app(self.frontend)
        self._runner = web.AppRunner(
            app, shutdown_timeout=self.config.shutdown_timeout, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        """Graceful: in-flight requests finish, the sink flushes, then the feed stops."""
        if self._runner is not None:
            await self._runner.cleanup()  # closes the sink via the app's on_cleanup
        else:
            self.frontend.sink.close()
        self._stop_feed.set()
        if self._feed_thread.is_alive():
            await asyncio.to_thread(self._feed_thread.join, 10)


def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully (``settings.annotate`` says
    where and how)."""

    async def main() -> None:
        service = AnnotateService(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        url = await service.start()
        print(f"labeltrail annotate: serving {url} (topics {settings.topic_prefix}.*)", flush=True)
        await stop.wait()
        print("labeltrail annotate: shutting down", flush=True)
        await service.stop()

    asyncio.run(main())


@contextlib.contextmanager
def background_server(service: AnnotateService) -> Iterator[AnnotateService]:
    """Run a service on its own loop in a thread (tests, benchmarks); stop it gracefully."""
    started = threading.Event()
    loop = asyncio.new_event_loop()
    errors: list[BaseException] = []
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            await service.start()
        except BaseException as exc:
            errors.append(exc)
            started.set()
            await service.stop()
            return
        started.set()
        await stop.wait()
        await service.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(service.config.ready_timeout + 30)
    if errors:
        thread.join(10)
        loop.close()
        raise errors[0]
    try:
        yield service
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(service.config.shutdown_timeout + 15)
        loop.close()
