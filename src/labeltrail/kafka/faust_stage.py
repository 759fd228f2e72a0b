"""Run any fold as a faust-streaming worker: the second runner, with the first one's guarantees.

The logic is the fold's, and what happens to each record is the shared
:class:`~labeltrail.kafka.records.RecordHandler`'s (decode, skip, dead-letter with the same
reasons, count), so a fold gives the same outputs and dead letters under either runner. One
faust App per fold (app id and consumer group ``<prefix>.<fold>.faust``), one agent reading
the fold's input topics as raw bytes; outputs are encoded, placed and size-checked by
:class:`~labeltrail.kafka.producer.EventEncoder` (faust's aiokafka producer hashes keys with
murmur2, like our producers' ``murmur2_random``, so an output lands in the same partition
whichever runner wrote it).

- **restore, then resume.** Before the worker starts, the input partitions are read with
  confluent-kafka from the beginning up to the group's committed offsets; those records only
  rebuild the fold's state. faust then consumes from the committed offsets.
- **outputs acknowledged before offsets commit.** The agent acks nothing itself (a ``noack``
  stream): a record is acked only once every output and dead letter it caused is delivered,
  and only after every earlier record of the run, so faust (which commits the acked prefix)
  never commits past a record whose outputs are not on the log. A failed delivery acks
  nothing more and stops the worker (exit code 1): the restart reads that record again.
- **drain.** With ``finite=True`` (a replay, a test), once the agent has been idle for
  ``idle_seconds`` with every assigned partition read to its high watermark, the fold's
  optional ``drain()`` runs. A live stage never drains. ``caught_up`` is reported either way.
- **one worker per stage.** Fold state is in memory, rebuilt by the restore above, so a
  worker must own every input partition: a worker that holds only some (a second copy of the
  stage joined the group) fails loudly instead of emitting from partial state. Scale-out is
  the confluent runner's (:mod:`labeltrail.kafka.scaleout`).
- **liveness.** A watchdog fails the worker if the agent raised, a delivery failed, or input
  is waiting but nothing was processed for ``stall_seconds``. With ``status_file`` set, it
  writes the stage's counters there as JSON, for a supervisor or a test to read.

A service runs under it with ``LABELTRAIL_RUNNER=faust python services/consensus.py``
(:func:`labeltrail.kafka.serve.serve`); any importable ``Settings -> Fold`` factory with
``python -m labeltrail.kafka.faust_stage MODULE:FACTORY --status-file var/c.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import faust
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from labeltrail.config import Settings, settings
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import LabeltrailError
from labeltrail.folds.base import Fold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import make_consumer
from labeltrail.kafka.faust_io import Outbox, Record, brokers, credentials
from labeltrail.kafka.metrics import ServiceMetrics, serve_metrics, state_entries
from labeltrail.kafka.records import RecordHandler, StageStats

__all__ = ["FaustStage", "StageFailedError", "main", "serve_faust"]

log = logging.getLogger(__name__)


class StageFailedError(LabeltrailError):
    """The agent died, a delivery failed, or the stage stopped making progress."""


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
        self._outbox = Outbox(config)
        self._handler = RecordHandler(fold, config.topic_prefix, self.stats, self._outbox)
        self.caught_up = False
        self.failure: BaseException | None = None
        self._partitions: set[tuple[str, int]] = set()
        """Every input partition: the worker must own all of them (one worker per stage)."""
        self._partial_since: float | None = None
        self._resume_at: dict[tuple[str, int], int] = {}
        self._read_to: dict[tuple[str, int], int] = {}
        self._low: dict[tuple[str, int], int] = {}
        self._unacked: deque[tuple[faust.types.EventT[bytes], list[asyncio.Future[Any]]]] = deque()
        """(input, the deliveries of its outputs) in the order read, acked from the front."""
        self._last_progress = time.monotonic()
        self._lag = 0
        self._committed: dict[tuple[str, int], int] = {}
        self.metrics = ServiceMetrics(
            fold.name, lambda: self.stats, state=lambda: state_entries(self.fold)
        )
        """Its Prometheus registry and vitals (:mod:`labeltrail.kafka.metrics`)."""
        self._worker: faust.Worker | None = None
        self._stopping: asyncio.Future[None] | None = None
        self.datadir = datadir or Path(tempfile.gettempdir()) / "labeltrail-faust" / self.app_id
        self.datadir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
        session_s = config.kafka_session_timeout_ms / 1000
        self.app = faust.App(
            self.app_id,
            broker=brokers(config),
            broker_credentials=credentials(config),
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=False,
            topic_disable_leader=True,
            topic_allow_declare=False,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_max_request_size=config.kafka_message_max_bytes,
            broker_commit_interval=commit_interval,
            # A stop or rebalance commits the acked prefix and goes: waiting for every record
            # to be acked would wait forever for one whose delivery failed.
            stream_wait_empty=False,
            broker_session_timeout=session_s,
            broker_heartbeat_interval=max(session_s / 5, 1.0),
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
            self._partitions = {(tp.topic, tp.partition) for tp in partitions}
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
                for msg in consumer.consume(500, timeout=0.5):
                    at = (msg.topic() or "", msg.partition() or 0)
                    offset = msg.offset() or 0
                    if at not in stop or msg.error() is not None or offset >= stop[at]:
                        continue
                    self._handler.restore(msg, at[0], at[1], offset)
                for at in list(stop):
                    [position] = consumer.position([TopicPartition(*at)])
                    if position.offset >= stop[at]:
                        del stop[at]
        finally:
            consumer.close()
        log.info("%s: restored from %d records", self.fold.name, self.stats.restored)

    # the agent ----------------------------------------------------------------------------

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        try:
            async for event in cast(faust.Stream[bytes], stream).noack().events():
                msg = event.message
                record = Record(msg.topic, msg.partition, msg.offset, msg.key, msg.value)
                self._read_to[(msg.topic, msg.partition)] = msg.offset + 1
                self._last_progress = time.monotonic()
                self.caught_up = False
                started = time.perf_counter()
                self._handler.live(record, msg.topic, msg.partition, msg.offset)
                sent = [await self._send(*r) for r in self._outbox.take()]
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
                self.metrics.observe_age(int((msg.timestamp or 0) * 1000))
                self._unacked.append((event, sent))
                self._ack_delivered()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any error must stop the worker loudly
            await self._fail(exc)

    async def _send(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Any]:
        fut = cast(
            asyncio.Future[Any],
            await self.app.producer.send(topic, key, value, None, None, None),
        )
        fut.add_done_callback(self._on_delivery)
        return fut

    def _on_delivery(self, fut: asyncio.Future[Any]) -> None:
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is not None and self.failure is None:
            self.failure = StageFailedError(f"{self.fold.name}: delivery failed: {exc!r}")
        self._ack_delivered()

    def _ack_delivered(self) -> None:
        """Ack, oldest first, every input whose outputs are all delivered; stop at the first
        that is not (or failed): faust commits only the acked prefix of each partition."""
        while self._unacked and self.failure is None:
            event, sent = self._unacked[0]
            if not all(f.done() for f in sent):
                return
            if any(f.cancelled() or f.exception() is not None for f in sent):
                return  # _on_delivery records the failure
            self._unacked.popleft()
            event.ack()

    async def _drain(self) -> None:
        if self.finite:
            self._handler.drain()
        queued = self._outbox.take()
        for record in queued:
            await self._send(*record)
        if queued:
            await self.app.producer.flush()

    # liveness -----------------------------------------------------------------------------

    async def _quiet_logging(self) -> None:
        # faust leaves the root logger at DEBUG under its defaults: every send would build a
        # debug record. Set it explicitly once the worker has configured logging.
        logging.getLogger().setLevel(self.loglevel)

    async def _lag_now(self) -> dict[tuple[str, int], int]:
        """Records waiting per assigned partition (high watermarks from fetch responses)."""
        consumer = self.app.consumer
        assigned = consumer.assignment()
        unknown = [tp for tp in assigned if consumer.highwater(tp) is None]
        asked = await consumer.highwaters(*unknown) if unknown else {}
        unread = [tp for tp in assigned if (tp.topic, tp.partition) not in self._read_to]
        new = [tp for tp in unread if (tp.topic, tp.partition) not in self._low]
        if new:  # a partition may start past 0 (deleted records): ask once
            lows = await consumer.earliest_offsets(*new)
            self._low.update({(tp.topic, tp.partition): lows.get(tp) or 0 for tp in new})
        lag = {}
        for tp in assigned:
            high = consumer.highwater(tp)
            high = asked.get(tp) or 0 if high is None else high
            at = (tp.topic, tp.partition)
            start = max(self._resume_at.get(at, 0), self._low.get(at, 0))
            lag[at] = max(high - self._read_to.get(at, start), 0)
        return lag

    def _report_vitals(self, lag: dict[tuple[str, int], int]) -> None:
        """The metrics' vitals: the worker's loop runs, the lag, the commit state. faust
        commits by itself and exposes no commit hook: a change in its committed offsets
        (read every watchdog tick) counts as a commit."""
        vitals = self.metrics.vitals
        vitals.polled_at = time.monotonic()
        vitals.lag, vitals.assigned, vitals.caught_up = lag, len(lag), self.caught_up
        committed = {
            (tp.topic, tp.partition): offset
            for tp, offset in dict(getattr(self.app.consumer, "_committed_offset", {})).items()
            if offset is not None
        }
        if committed != self._committed:
            self._committed = committed
            vitals.committed_at = time.monotonic()
        vitals.uncommitted = sum(
            max(at - committed.get(key, self._resume_at.get(key, 0)), 0)
            for key, at in self._read_to.items()
            if key in lag
        )

    async def _watchdog(self) -> None:
        try:
            if self.failure is not None:
                raise self.failure
            lag = await self._lag_now()
            self._lag = sum(lag.values())
            quiet = time.monotonic() - self._last_progress
            if self._lag and quiet > self.stall_seconds:
                raise StageFailedError(
                    f"{self.fold.name}: {self._lag} records waiting, no progress for {quiet:.0f}s"
                )
            self._check_assignment()
            self._ack_delivered()
            if not (self._lag or self._unacked or self.caught_up) and quiet >= self.idle_seconds:
                await self._drain()
                # Caught up means what was read is delivered and committed, as for the
                # StageRunner: a downstream reader or a supervisor may rely on it.
                await self.app.consumer.commit()
                self.caught_up = True
            self._report_vitals(lag)
            self._write_status(quiet)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc)

    def _check_assignment(self) -> None:
        """Fail unless this worker owns every input partition (or none yet)."""
        held = {(tp.topic, tp.partition) for tp in self.app.consumer.assignment()}
        if held and not held >= self._partitions:
            raise StageFailedError(
                f"{self.fold.name}: this worker holds {len(held)} of {len(self._partitions)} "
                f"input partitions; the faust runner runs one worker per stage (another joined "
                f"group {self.app_id}): use LABELTRAIL_RUNNER=confluent to scale out"
            )

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
            **{
                k: v
                for k, v in asdict(self.stats).items()
                if k not in ("reasons", "emitted_by", "blind_spots")
            },
            "reasons": dict(self.stats.reasons),
        }
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        tmp.replace(self.status_file)

    async def _fail(self, exc: BaseException) -> None:
        if self.failure is None or self.failure is exc:
            self.failure = exc
        self.metrics.vitals.failure = repr(exc)
        log.critical("%s: stage failed, stopping the worker: %r", self.fold.name, exc)
        self._write_status(time.monotonic() - self._last_progress)
        if self._worker is not None:
            self._stopping = asyncio.ensure_future(self._worker.stop())

    # lifecycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Restore, then run the worker until SIGTERM/SIGINT or failure; 0 on a clean stop.

        With metrics on, ``/metrics`` and ``/healthz`` are served from before the restore (a
        taken port: exit code 1 at once, the log naming the port)."""
        try:
            server = serve_metrics(self.metrics, self.config)
        except LabeltrailError as exc:  # a taken port: one line with the cause, exit 1
            log.critical("%s", exc)
            return 1
        try:
            self.restore()
            self._worker = faust.Worker(self.app, loglevel=self.loglevel, quiet=True)
            try:
                self._worker.execute_from_commandline()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            else:  # pragma: no cover - execute_from_commandline always exits
                code = 0
        finally:
            if server is not None:
                server.close()
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
    config: Settings | None = None,
) -> int:
    """Run ``make_fold(config)`` under faust until a signal; returns the exit code."""
    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = config or settings()
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
