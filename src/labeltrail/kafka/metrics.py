"""Prometheus metrics and health of one service: ``/metrics`` and ``/healthz`` on its own port.

Every runner (the confluent :class:`~labeltrail.kafka.runner.StageRunner` and its scale-out
worker, the faust worker, the ClickHouse projector) owns a :class:`ServiceMetrics` with its own
``CollectorRegistry`` (never the global one, so several runners in one process, as in the
tests and the demo, do not collide). The counters are not counted twice: a collector reads the
runner's own :class:`~labeltrail.kafka.records.StageStats` when scraped. What only the loop
knows (lag per partition, the last commit, whether it polls) it writes into :class:`Vitals`
between batches, so a scrape never touches a Kafka client from the server's thread.

With ``LABELTRAIL_METRICS_PORT`` set, each service listens on that base port plus a fixed
offset of its own (:data:`PORT_OFFSETS`), so one setting serves every service of a host;
``0`` (the default) serves nothing. :func:`read` is the other side: it scrapes a service and
sums it up (``labeltrail status`` uses it). docs/operations.md lists every metric and alert.
"""

from __future__ import annotations

import errno
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError
from labeltrail.kafka.records import StageStats

__all__ = [
    "COMMIT_STALE_S",
    "POLL_STALE_S",
    "PORT_OFFSETS",
    "MetricsPortInUseError",
    "MetricsServer",
    "MetricsUnavailableError",
    "ServiceMetrics",
    "Vitals",
    "metrics_port",
    "metrics_url",
    "read",
    "serve_metrics",
    "state_entries",
    "summarize",
]

PORT_OFFSETS: dict[str, int] = {
    "projector": 0,
    "tasking": 1,
    "consensus": 2,
    "labels": 3,
    "reliability": 4,
    "iaa": 5,
    "scorer": 6,
    "trainer": 7,
    "questions": 8,
    "feedback": 9,
    "active": 10,
    "lf": 11,
    "weak": 12,
}
"""Each service's port is ``LABELTRAIL_METRICS_PORT`` plus its offset here."""

OTHER_OFFSET = 15
"""The offset of a fold not in :data:`PORT_OFFSETS` (a custom stage): the last of a block of
16 ports (``supervise.status.METRICS_BLOCK``)."""

POLL_STALE_S = 60.0
"""``/healthz`` fails when the loop has not polled its consumer for this long."""

COMMIT_STALE_S = 60.0
"""``/healthz`` fails when records dealt with have waited this long for their commit."""

VITALS_EVERY_S = 0.5
"""How often a loop refreshes the lag and commit figures it reports."""

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class MetricsPortInUseError(LabeltrailError):
    """The metrics port is taken (another service, a second copy of this one)."""


class MetricsUnavailableError(LabeltrailError):
    """A service's metrics could not be read (not running, metrics off, wrong port)."""


def metrics_port(settings: Settings, service: str) -> int | None:
    """The port ``service`` serves its metrics on, or None when metrics are off."""
    if not settings.metrics_port:
        return None
    return settings.metrics_port + PORT_OFFSETS.get(service, OTHER_OFFSET)


def metrics_url(settings: Settings, service: str) -> str | None:
    """``http://host:port`` of ``service``'s metrics server, or None when metrics are off."""
    port = metrics_port(settings, service)
    return None if port is None else f"http://{settings.metrics_host}:{port}"


# what a service reports -------------------------------------------------------------------


@dataclass
class Vitals:
    """What the loop last saw, written by the loop's thread and read by a scrape."""

    started_at: float = field(default_factory=time.monotonic)
    polled_at: float | None = None
    """When the loop last polled its consumer (monotonic)."""
    committed_at: float | None = None
    """When an offset commit (or the projector's position write) last succeeded."""
    uncommitted: int = 0
    """Records dealt with whose offsets are not committed yet."""
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    """Records not yet read per assigned partition (high watermark minus position)."""
    assigned: int = 0
    caught_up: bool = False
    failure: str | None = None
    must_own_partitions: bool = True
    """False for a scale-out worker: a worker beyond the partition count holds none."""

    def health(self, now: float | None = None) -> tuple[bool, dict[str, Any]]:
        """(healthy, the checks): not failed, polled within :data:`POLL_STALE_S`, holding
        partitions (unless a scale-out worker), and no record waiting for its commit longer
        than :data:`COMMIT_STALE_S`."""
        now = time.monotonic() if now is None else now
        since_poll = None if self.polled_at is None else now - self.polled_at
        since_commit = now - (self.committed_at or self.started_at)
        problems = []
        if self.failure is not None:
            problems.append(f"failed: {self.failure}")
        if since_poll is None:
            problems.append("has not polled its consumer yet")
        elif since_poll > POLL_STALE_S:
            problems.append(f"has not polled its consumer for {since_poll:.0f}s")
        if self.must_own_partitions and self.assigned == 0 and since_poll is not None:
            problems.append("no partitions assigned")
        if self.uncommitted and since_commit > COMMIT_STALE_S:
            problems.append(
                f"{self.uncommitted} records dealt with but not committed for {since_commit:.0f}s"
            )
        return not problems, {
            "healthy": not problems,
            "problems": problems,
            "seconds_since_poll": None if since_poll is None else round(since_poll, 3),
            "seconds_since_last_commit": round(since_commit, 3),
            "uncommitted_records": self.uncommitted,
            "assigned_partitions": self.assigned,
            "lag": sum(self.lag.values()),
            "caught_up": self.caught_up,
        }


def state_entries(fold: object) -> int:
    """Entries the fold holds: the lengths of its containers, its own and one level into the
    objects it keeps (a wrapper's fold, a registry object). ``len`` only, so a scrape is cheap
    and never walks the state."""
    total = 0
    seen: set[int] = set()

    def walk(obj: object, depth: int) -> None:
        nonlocal total
        if id(obj) in seen:
            return
        seen.add(id(obj))
        attrs = getattr(obj, "__dict__", None)
        if not isinstance(attrs, dict):
            return
        for value in list(attrs.values()):
            if isinstance(value, (dict, list, set, frozenset, tuple)) or hasattr(value, "maxlen"):
                if id(value) not in seen:
                    seen.add(id(value))
                    total += len(value)
            elif depth > 0 and not isinstance(value, (str, bytes, int, float, type)):
                walk(value, depth - 1)

    walk(fold, 2)
    return total


def _by(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    metric: str,
    help_: str,
    stage: str,
    labels: list[str],
    values: Mapping[Any, float],
) -> Metric:
    """One family of ``stage``'s samples, one per tuple of label values (``values``' keys),
    in a stable order."""
    family = kind(metric, help_, labels=["stage", *labels])
    for key, n in sorted(values.items()):
        family.add_metric([stage, *key], n)
    return family


class _Collector:
    """Reads a runner's counters and vitals when scraped (nothing is counted twice)."""

    def __init__(
        self,
        service: str,
        stats: Callable[[], StageStats],
        vitals: Vitals,
        state: Callable[[], int] | None,
    ) -> None:
        self.service = service
        self.stats = stats
        self.vitals = vitals
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        s, v, name = self.stats(), self.vitals, self.service
        for metric, help_, value in (
            ("labeltrail_records_consumed", "Input records read (restored included).", s.consumed),
            ("labeltrail_records_restored", "Records read only to rebuild state.", s.restored),
            ("labeltrail_records_processed", "Live records processed.", s.processed),
            ("labeltrail_records_skipped", "Processed records of a type not taken.", s.skipped),
        ):
            yield _by(CounterMetricFamily, metric, help_, name, [], {(): value})
        yield _by(
            CounterMetricFamily,
            "labeltrail_records_rejected",
            "Records dead-lettered, by reason code.",
            name,
            ["reason"],
            {(reason,): n for reason, n in dict(s.reasons).items()},
        )
        yield _by(
            CounterMetricFamily,
            "labeltrail_events_emitted",
            "Events written, by topic and event type.",
            name,
            ["topic", "type"],
            dict(s.emitted_by),
        )
        yield _by(
            CounterMetricFamily,
            "labeltrail_blind_spots_flagged",
            "Agreement windows closed with the blind-spot flag, by slice.",
            name,
            ["slice"],
            {(slice_,): n for slice_, n in dict(s.blind_spots).items()},
        )
        yield _by(
            GaugeMetricFamily,
            "labeltrail_consumer_lag",
            "Records not yet read, per assigned partition.",
            name,
            ["topic", "partition"],
            {(topic, str(partition)): n for (topic, partition), n in dict(v.lag).items()},
        )
        now = time.monotonic()
        healthy, _ = v.health(now)
        gauges: tuple[tuple[str, str, float], ...] = (
            (
                "labeltrail_seconds_since_last_commit",
                "Seconds since offsets were last committed (since start if never).",
                now - (v.committed_at or v.started_at),
            ),
            (
                "labeltrail_uncommitted_records",
                "Records dealt with whose offsets are not committed yet.",
                v.uncommitted,
            ),
            ("labeltrail_assigned_partitions", "Input partitions held.", v.assigned),
            ("labeltrail_caught_up", "1 when every input is read to its end.", int(v.caught_up)),
            ("labeltrail_healthy", "1 when /healthz answers 200.", int(healthy)),
        )
        for gauge_name, gauge_help, figure in gauges:
            yield _by(GaugeMetricFamily, gauge_name, gauge_help, name, [], {(): figure})
        if self.state is not None:
            yield _by(
                GaugeMetricFamily,
                "labeltrail_fold_state_entries",
                "Entries in the fold's containers (its state's size).",
                name,
                [],
                {(): self.state()},
            )


class ServiceMetrics:
    """One service's registry: its counters (read from ``stats``), vitals and histograms."""

    def __init__(
        self,
        service: str,
        stats: Callable[[], StageStats],
        *,
        state: Callable[[], int] | None = None,
    ) -> None:
        self.service = service
        self.vitals = Vitals()
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(service, stats, self.vitals, state))
        self.batch_seconds = Histogram(
            "labeltrail_batch_seconds",
            "Time to process one consumed batch (its records applied, outputs sent).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(service)
        self.record_latency = Histogram(
            "labeltrail_record_latency_seconds",
            "From a live record's broker timestamp to its processing.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(service)
        self._vitals_at = 0.0
        self.serving = False
        """Set while its server runs: until then the per-record histogram is not fed (it
        costs about 10 us a record on the reference machine, for nobody to read)."""

    def due(self, now: float, *, force: bool = False) -> bool:
        """Whether the loop should refresh its vitals (at most every :data:`VITALS_EVERY_S`,
        and whenever ``force``: on catching up)."""
        if not force and now - self._vitals_at < VITALS_EVERY_S:
            return False
        self._vitals_at = now
        return True

    def observe_age(self, timestamp_ms: int) -> None:
        """A live record with this broker timestamp was processed now."""
        if self.serving and timestamp_ms > 0:
            self.record_latency.observe(max(time.time() - timestamp_ms / 1000, 0.0))


# the server --------------------------------------------------------------------------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log."""


class MetricsServer:
    """``/metrics`` (Prometheus text) and ``/healthz`` (JSON, 200 or 503) in a thread."""

    def __init__(self, metrics: ServiceMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        exposition = make_wsgi_app(metrics.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                return exposition(environ, start_response)  # type: ignore[no-any-return]
            if path == "/healthz":
                healthy, body = metrics.vitals.health()
                body["service"] = metrics.service
                status = "200 OK" if healthy else "503 Service Unavailable"
                start_response(status, [("Content-Type", "application/json")])
                return [json.dumps(body).encode()]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"/metrics or /healthz\n"]

        offset = PORT_OFFSETS.get(metrics.service, OTHER_OFFSET)
        try:
            self._server = make_server(
                host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise MetricsPortInUseError(
                    f"{metrics.service}: metrics port {port} on {host} is already in use "
                    f"(another service or a second copy of this one listens there); set "
                    f"LABELTRAIL_METRICS_PORT to a free base port (the {metrics.service} "
                    f"service listens on it plus {offset})"
                ) from exc
            raise LabeltrailError(
                f"{metrics.service}: cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name=f"metrics-{metrics.service}",
            daemon=True,
        )
        self._thread.start()
        metrics.serving = True

    def close(self) -> None:
        self.metrics.serving = False
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(metrics: ServiceMetrics, settings: Settings) -> MetricsServer | None:
    """Start ``metrics``' server on its configured port; None when metrics are off."""
    port = metrics_port(settings, metrics.service)
    if port is None:
        return None
    return MetricsServer(metrics, settings.metrics_host, port)


# the reading side --------------------------------------------------------------------------


def summarize(text: str) -> dict[str, Any]:
    """One service's figures from its Prometheus text: ``stage``, ``consumed``, ``restored``,
    ``processed``, ``skipped``, ``rejected`` (by reason), ``emitted`` (by event type),
    ``lag`` (total) and ``lag_by_partition`` (``"topic[p]"``), ``seconds_since_last_commit``,
    ``uncommitted``, ``assigned``, ``caught_up``, ``healthy``, ``state_entries`` (None if
    the service has no fold) and ``latency_p50_s``/``latency_count`` (record latency)."""
    out: dict[str, Any] = {
        "stage": None,
        "rejected": {},
        "emitted": {},
        "blind_spots": {},
        "lag_by_partition": {},
        "state_entries": None,
    }
    scalars = {
        "labeltrail_records_consumed_total": "consumed",
        "labeltrail_records_restored_total": "restored",
        "labeltrail_records_processed_total": "processed",
        "labeltrail_records_skipped_total": "skipped",
        "labeltrail_seconds_since_last_commit": "seconds_since_last_commit",
        "labeltrail_uncommitted_records": "uncommitted",
        "labeltrail_assigned_partitions": "assigned",
        "labeltrail_caught_up": "caught_up",
        "labeltrail_healthy": "healthy",
        "labeltrail_fold_state_entries": "state_entries",
    }
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            out["stage"] = out["stage"] or labels.get("stage")
            key = scalars.get(sample.name)
            if key is not None:
                out[key] = value if "seconds" in key else int(value)
            elif sample.name == "labeltrail_records_rejected_total":
                out["rejected"][labels["reason"]] = int(value)
            elif sample.name == "labeltrail_events_emitted_total":
                kind = labels["type"]
                out["emitted"][kind] = out["emitted"].get(kind, 0) + int(value)
            elif sample.name == "labeltrail_blind_spots_flagged_total":
                out["blind_spots"][labels["slice"]] = int(value)
            elif sample.name == "labeltrail_consumer_lag":
                out["lag_by_partition"][f"{labels['topic']}[{labels['partition']}]"] = int(value)
            elif sample.name == "labeltrail_record_latency_seconds_bucket":
                buckets.append((float(labels["le"]), value))
            elif sample.name == "labeltrail_record_latency_seconds_count":
                out["latency_count"] = int(value)
    out["lag"] = sum(out["lag_by_partition"].values())
    for key in ("caught_up", "healthy"):
        if key in out:
            out[key] = bool(out[key])
    total = out.get("latency_count", 0)
    out["latency_p50_s"] = (
        next((le for le, n in sorted(buckets) if n >= total / 2), None) if total else None
    )
    return out


def read(url: str, *, timeout: float = 2.0) -> dict[str, Any]:
    """Scrape the service at ``url`` (``http://host:port``): :func:`summarize` of its
    ``/metrics`` plus ``health``, the body of its ``/healthz`` (``healthy``, ``problems``).
    :class:`MetricsUnavailableError` naming the URL and the cause when nothing answers."""
    base = url.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=timeout) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MetricsUnavailableError(f"no metrics at {base}/metrics: {reason}") from exc
    out = summarize(text)
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=timeout) as response:
            out["health"] = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503: unhealthy, with the reasons in the body
        out["health"] = json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        out["health"] = {"healthy": False, "problems": [f"no /healthz: {exc}"]}
    out["url"] = base
    return out
