"""Run any fold as a faust-streaming agent: the live path for stateful stages.

The logic is the fold's; this module only moves bytes. One faust App per fold (app id and
consumer group ``<prefix>.<fold>.faust``), one agent reading the fold's input topics as raw
bytes, outputs produced with the same topic and key rules as
:class:`~labeltrail.kafka.producer.EventProducer` (faust's aiokafka producer hashes keys with
murmur2, like our producers' ``murmur2_random``, so an output lands in the same partition
whichever runner wrote it), rejected inputs to the dead-letter topic exactly as
:class:`~labeltrail.kafka.runner.StageRunner` writes them.

Delivery is at least once, made exact by deterministic ids, like the StageRunner's:

- **restore, then resume.** Before the worker starts, the input partitions are read with
  confluent-kafka from the beginning up to the group's committed offsets; those records only
  rebuild the fold's state. faust then consumes from the committed offsets and produces.
- faust flushes its producer before it commits offsets, so a crash re-emits outputs with the
  same event ids, which every sink deduplicates. faust's ``exactly_once`` mode is not used.
- **drain.** With ``finite=True`` (a finished history: a replay, a test), once the agent has
  been idle for ``idle_seconds`` with every assigned partition read to its high watermark, the
  fold's optional ``drain()`` runs (held input is rejected). A live stage never drains: a lull
  is not the end of the input. ``caught_up`` is reported either way.
- **liveness.** A watchdog fails the worker (exit code 1) if the agent raised, if a delivery
  failed, or if input is waiting but nothing was processed for ``stall_seconds``: a crashed
  faust agent otherwise idles with zero progress. With ``status_file`` set, the watchdog
  also writes the stage's counters there as JSON, for a supervisor or a test to read.

Run a service's fold under faust::

    python -m labeltrail.kafka.faust_stage services.consensus:make --status-file var/c.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import faust
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from labeltrail.config import Settings, settings
from labeltrail.events.base import Event, LogPosition
from labeltrail.events.serde import decode, encode
from labeltrail.events.topics import topic_for, topic_name
from labeltrail.exceptions import LabeltrailError, SerializationError
from labeltrail.folds.base import Fold, Rejected
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import make_consumer
from labeltrail.kafka.runner import StageStats, dead_letter, held_dead_letter

__all__ = ["FaustStage", "StageFailedError", "main", "serve_faust"]

log = logging.getLogger(__name__)


class StageFailedError(LabeltrailError):
    """The agent died, a delivery failed, or the stage stopped making progress."""


class _Record:
    """The parts of a consumed record that :func:`dead_letter` reads (confluent's shape)."""

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


def _brokers(config: Settings) -> list[str]:
    return [f"kafka://{h.strip()}" for h in config.kafka_bootstrap_servers.split(",")]


def _credentials(config: Settings) -> faust.SASLCredentials | None:
    protocol = config.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        raise LabeltrailError(f"faust stages do not support security protocol {protocol}")
    password = config.kafka_sasl_password
    return faust.SASLCredentials(
        username=config.kafka_sasl_username,
        password=password.get_secret_value() if password is not None else None,
        mechanism=config.kafka_sasl_mechanism or "PLAIN",
        ssl_context=ssl.create_default_context() if protocol == "SASL_SSL" else None,
    )


class FaustStage:
    """One fold, one faust App, one agent. ``run()`` blocks and returns the exit code."""

    def __init__(
        self,
        fold: Fold,
        config: Settings,
        *,
        app_id: str | None = None,
        datadir: Path | None = None,
        loglevel: int = logging.WARNING,
        idle_seconds: float = 1.0,
        stall_seconds: float = 60.0,
        check_seconds: float = 1.0,
        status_file: Path | None = None,
        commit_interval: float = 1.0,
        finite: bool = False,
    ) -> None:
        self.fold = fold
        self.config = config
        self.app_id = app_id or f"{config.topic_prefix}.{fold.name}.faust"
        self.topics = [topic_name(config.topic_prefix, s) for s in fold.inputs]
        self.deadletter_topic = topic_name(config.topic_prefix, "deadletter")
        self.loglevel = loglevel
        self.idle_seconds = idle_seconds
        self.stall_seconds = stall_seconds
        self.status_file = status_file
        self.finite = finite
        self.stats = StageStats()
        self.caught_up = False
        self.failure: BaseException | None = None
        self._resume_at: dict[tuple[str, int], int] = {}
        self._read_to: dict[tuple[str, int], int] = {}
        self._low: dict[tuple[str, int], int] = {}
        self._last_progress = time.monotonic()
        self._lag = 0
        self._worker: faust.Worker | None = None
        self._stopping: asyncio.Future[None] | None = None
        self.datadir = datadir or Path(tempfile.gettempdir()) / "labeltrail-faust" / self.app_id
        self.datadir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
        self.app = faust.App(
            self.app_id,
            broker=_brokers(config),
            broker_credentials=_credentials(config),
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=False,
            topic_disable_leader=True,
            topic_allow_declare=False,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            broker_commit_interval=commit_interval,
            datadir=str(self.datadir),
        )
        channel = self.app.topic(*self.topics, key_type=bytes, value_type=bytes)
        self.app.agent(channel, name=f"{fold.name}-agent")(self._agent)
        self.app.timer(check_seconds)(self._watchdog)
        self.app.task(self._quiet_logging)

    # state --------------------------------------------------------------------------------

    def restore(self) -> None:
        """Rebuild the fold from input read before the group's committed offsets."""
        consumer = make_consumer(self.config, self.app_id)
        try:
            meta = consumer.list_topics(timeout=30)
            partitions = [
                TopicPartition(t, p)
                for t in self.topics
                if t in meta.topics
                for p in sorted(meta.topics[t].partitions)
            ]
            stop: dict[tuple[str, int], int] = {}
            for tp in consumer.committed(partitions, timeout=30):
                if tp.offset > 0:
                    _, high = consumer.get_watermark_offsets(tp, timeout=10)
                    self._resume_at[(tp.topic, tp.partition)] = tp.offset
                    stop[(tp.topic, tp.partition)] = min(tp.offset, high)
            if not stop:
                return
            consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in stop])
            while stop:
                messages = consumer.consume(500, timeout=0.5)
                for msg in messages:
                    at = (msg.topic() or "", msg.partition() or 0)
                    offset = msg.offset() or 0
                    if at not in stop or msg.error() is not None or offset >= stop[at]:
                        continue
                    self.stats.consumed += 1
                    self.stats.restored += 1
                    try:
                        event = decode(msg.value() or b"")
                    except SerializationError:
                        continue
                    self.fold.apply(event, LogPosition(topic=at[0], partition=at[1], offset=offset))
                for at in list(stop):
                    tp = TopicPartition(*at)
                    [position] = consumer.position([tp])
                    if position.offset >= stop[at]:
                        del stop[at]
        finally:
            consumer.close()
        log.info("%s: restored from %d records", self.fold.name, self.stats.restored)

    # the agent ----------------------------------------------------------------------------

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        try:
            async for item in stream.events():
                msg = item.message
                record = _Record(msg.topic, msg.partition, msg.offset, msg.key, msg.value)
                await self._one(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any error must stop the worker loudly
            await self._fail(exc)

    async def _one(self, msg: _Record) -> None:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        self.stats.consumed += 1
        self._read_to[(topic, partition)] = offset + 1
        self._last_progress = time.monotonic()
        self.caught_up = False
        try:
            event = decode(msg.value())
        except SerializationError as exc:
            await self._reject(msg, exc.reason_code, str(exc))
            return
        outputs = self.fold.apply(
            event, LogPosition(topic=topic, partition=partition, offset=offset)
        )
        rejected = [o for o in outputs if isinstance(o, Rejected)]
        for out in outputs:
            if isinstance(out, Event):
                await self._send(out)
                self.stats.emitted += 1
        if rejected:
            await self._reject(msg, "policy_rejected", "; ".join(r.reason for r in rejected))
        else:
            self.stats.processed += 1

    async def _send(self, event: Event) -> None:
        pool = getattr(event, "pool", None)
        topic = topic_for(type(event).__name__, self.config.topic_prefix, pool=pool)
        fut = await self.app.producer.send(
            topic, event.key.encode(), encode(event), None, None, None
        )
        cast(asyncio.Future[Any], fut).add_done_callback(self._on_delivery)

    def _on_delivery(self, fut: asyncio.Future[Any]) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None and self.failure is None:
            self.failure = StageFailedError(f"{self.fold.name}: delivery failed: {exc!r}")

    async def _reject(self, msg: _Record, code: str, reason: str) -> None:
        self.stats.rejected += 1
        self.stats.reasons[code] += 1
        log.warning("%s rejected %s[%s]@%s: %s", self.fold.name, *msg._at, reason)
        await self._send(dead_letter(cast(Message, msg), self.fold.name, code, reason))

    async def _drain(self) -> None:
        drain = getattr(self.fold, "drain", None)
        outputs = drain() if drain is not None and self.finite else []
        for out in outputs:
            if isinstance(out, Rejected):
                self.stats.rejected += 1
                self.stats.reasons["policy_rejected"] += 1
                out = held_dead_letter(self.fold.name, out.reason)
            else:
                self.stats.emitted += 1
            await self._send(out)
        if outputs:
            await self.app.producer.flush()

    # liveness -----------------------------------------------------------------------------

    async def _quiet_logging(self) -> None:
        # faust leaves the root logger at DEBUG under its defaults: every send would build a
        # debug record. Set it explicitly once the worker has configured logging.
        logging.getLogger().setLevel(self.loglevel)

    async def _lag_now(self) -> int:
        """Records waiting in the assigned partitions (high watermarks from fetch responses)."""
        consumer = self.app.consumer
        assigned = consumer.assignment()
        unknown = [tp for tp in assigned if consumer.highwater(tp) is None]
        asked = await consumer.highwaters(*unknown) if unknown else {}
        unread = [tp for tp in assigned if (tp.topic, tp.partition) not in self._read_to]
        new = [tp for tp in unread if (tp.topic, tp.partition) not in self._low]
        if new:  # a partition may start past 0 (deleted records): ask once
            lows = await consumer.earliest_offsets(*new)
            self._low.update({(tp.topic, tp.partition): lows.get(tp) or 0 for tp in new})
        lag = 0
        for tp in assigned:
            high = consumer.highwater(tp)
            high = asked.get(tp) or 0 if high is None else high
            at = (tp.topic, tp.partition)
            start = max(self._resume_at.get(at, 0), self._low.get(at, 0))
            lag += max(high - self._read_to.get(at, start), 0)
        return lag

    async def _watchdog(self) -> None:
        try:
            if self.failure is not None:
                raise self.failure
            self._lag = await self._lag_now()
            quiet = time.monotonic() - self._last_progress
            if self._lag and quiet > self.stall_seconds:
                raise StageFailedError(
                    f"{self.fold.name}: {self._lag} records waiting, no progress for {quiet:.0f}s"
                )
            if not self._lag and not self.caught_up and quiet >= self.idle_seconds:
                await self._drain()
                self.caught_up = True
            self._write_status(quiet)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc)

    def _write_status(self, quiet: float) -> None:
        if self.status_file is None:
            return
        status = {
            "stage": self.fold.name,
            "app_id": self.app_id,
            "alive": self.failure is None,
            "caught_up": self.caught_up,
            "lag": self._lag,
            "seconds_since_progress": round(quiet, 3),
            **{k: v for k, v in asdict(self.stats).items() if k != "reasons"},
            "reasons": dict(self.stats.reasons),
        }
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        tmp.replace(self.status_file)

    async def _fail(self, exc: BaseException) -> None:
        if self.failure is None or self.failure is exc:
            self.failure = exc
        log.critical("%s: stage failed, stopping the worker: %r", self.fold.name, exc)
        self._write_status(time.monotonic() - self._last_progress)
        if self._worker is not None:
            self._stopping = asyncio.ensure_future(self._worker.stop())

    # lifecycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Restore, then run the worker until SIGTERM/SIGINT or failure; 0 on a clean stop."""
        self.restore()
        self._worker = faust.Worker(self.app, loglevel=self.loglevel, quiet=True)
        try:
            self._worker.execute_from_commandline()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - execute_from_commandline always exits
            code = 0
        if self.failure is not None:
            log.critical("%s: exited after failure: %r", self.fold.name, self.failure)
            return 1
        log.info("%s: stopped; %s", self.fold.name, self.stats)
        return code


def serve_faust(
    make_fold: Callable[[Settings], Fold],
    *,
    status_file: Path | None = None,
    loglevel: int = logging.WARNING,
    stall_seconds: float = 60.0,
    finite: bool = False,
) -> int:
    """Run ``make_fold(settings)`` under faust until a signal; returns the exit code."""
    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = settings()
    ensure_topics(config)
    stage = FaustStage(
        make_fold(config),
        config,
        loglevel=loglevel,
        status_file=status_file,
        stall_seconds=stall_seconds,
        finite=finite,
    )
    return stage.run()


def _load(spec: str) -> Callable[[Settings], Fold]:
    module, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"expected MODULE:FACTORY, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # so ``services.<stage>:make`` imports from the repo
    return cast(Callable[[Settings], Fold], getattr(importlib.import_module(module), attr))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m labeltrail.kafka.faust_stage MODULE:FACTORY [--status-file PATH]``."""
    parser = argparse.ArgumentParser(description="Run a fold as a faust agent.")
    parser.add_argument("factory", help="MODULE:FACTORY, a callable Settings -> Fold")
    parser.add_argument("--status-file", type=Path, default=None)
    parser.add_argument("--loglevel", default="WARNING")
    parser.add_argument("--stall-seconds", type=float, default=60.0)
    parser.add_argument("--finite", action="store_true", help="drain the fold when caught up")
    args = parser.parse_args(argv)
    return serve_faust(
        _load(args.factory),
        status_file=args.status_file,
        loglevel=logging.getLevelName(args.loglevel.upper()),
        stall_seconds=args.stall_seconds,
        finite=args.finite,
    )


if __name__ == "__main__":
    raise SystemExit(main())
