"""Every service's Prometheus metrics and health, scraped over HTTP on the real broker.

A stage fed ordinary records and poison (undecodable, foreign, one its fold raises on) serves
counters that match what it did, its lag per partition while it is held up, latency histograms
that saw the hold-up, its commit state and fold size; ``/healthz`` says 200 while it polls and
503 with the reason when it is stuck. A taken metrics port is a clear error before anything is
read. ``ops/prometheus/alerts.yml`` names only metrics the services export.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.config import Settings
from labeltrail.events import Event, LogPosition, VoteCast, encode
from labeltrail.events.topics import topic_name
from labeltrail.folds.base import Output
from labeltrail.kafka import metrics as metrics_module
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.metrics import (
    PORT_OFFSETS,
    MetricsPortInUseError,
    MetricsServer,
    ServiceMetrics,
    read,
)
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.records import StageStats
from labeltrail.kafka.runner import StageRunner
from tests.events.samples import sample_event
from tests.kafka.runners import faust_log, faust_status, start_faust, start_service, stop_faust
from tests.kafka.test_runner_contract import POISON_ID, _event
from tests.probes import read_topic

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "ops" / "prometheus" / "alerts.yml"
HOLD_S = 1.0
"""How long the gated fold holds the first record: every record waits at least this long."""


class Echo:
    """A stage that answers each vote with an agreement window (the first flagged a blind
    spot), raises on ``POISON_ID``, and, with a gate, holds the first vote until it opens."""

    name = "consensus"  # its metrics port offset
    inputs = ("votes",)

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.seen: list[str] = []

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        event_id = event.envelope.event_id
        if event_id == POISON_ID:
            raise RuntimeError("the fold cannot take this one")
        if self.gate is not None and event_id == "ordinary-1":
            self.gate.wait(30)
        assert isinstance(event, VoteCast)
        window = _event("IaaWindowClosed", f"window-{event_id}")
        self.seen.append(event_id)
        return [window.model_copy(update={"blind_spot": len(self.seen) == 1})]


def echo(settings: Settings) -> Echo:
    """The factory the faust worker loads."""
    return Echo()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_metrics(settings: Settings, service: str) -> tuple[Settings, str]:
    """Settings whose ``service`` serves on a free port, and its URL."""
    port = _free_port()
    base = port - PORT_OFFSETS[service]
    return settings.model_copy(update={"metrics_port": base}), f"http://127.0.0.1:{port}"


def _feed(settings: Settings) -> str:
    """Two ordinary votes and three poison records on one partition of votes."""
    votes = topic_name(settings.topic_prefix, "votes")
    producer = EventProducer(settings)
    for value in (
        encode(_event("VoteCast", "ordinary-1")),
        b"not avro at all",
        encode(sample_event("CommentPosted")),  # foreign on votes
        encode(_event("VoteCast", POISON_ID)),
        encode(_event("VoteCast", "ordinary-2")),
    ):
        producer.send_raw(votes, b"c-1", value)
    producer.flush()
    return votes


def _healthz(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _until(condition: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fed(pipeline_settings: Settings) -> Iterator[tuple[Settings, str, str]]:
    settings, url = _with_metrics(pipeline_settings, "consensus")
    ensure_topics(settings)
    yield settings, url, _feed(settings)


def test_a_stage_serves_what_it_did_its_lag_and_latency(
    fed: tuple[Settings, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, url, votes = fed
    monkeypatch.setattr(metrics_module, "VITALS_EVERY_S", 0.0)  # refresh on every fetch
    gate = threading.Event()
    runner = StageRunner(Echo(gate), settings, batch_size=1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.run(stop, idle_seconds=0.3)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        # Held on the first record: all five are still unread on its partition, none else.
        held = _until(
            lambda: (s := _try_read(url)) and s["lag"] == 5 and s,
            "the held stage's lag",
            timeout=30,
        )
        on_votes = {k: v for k, v in held["lag_by_partition"].items() if k.startswith(votes)}
        assert sorted(on_votes.values()) == [0, 0, 5]  # three partitions, one holds the input
        assert held["health"]["healthy"] is True
        time.sleep(HOLD_S)
        gate.set()
        _until(runner.caught_up.is_set, "the stage to catch up")
        status, health = _healthz(url)
        assert status == 200 and health["healthy"] and health["problems"] == []
        got = read(url)
        text = _scrape(url)
    finally:
        gate.set()
        stop.set()
        thread.join(60)
    assert not errors, errors

    assert got["stage"] == "consensus"
    assert (got["consumed"], got["processed"], got["restored"]) == (5, 2, 0)
    assert got["rejected"] == {"undecodable": 1, "wrong_topic": 1, "fold_error": 1}
    # What it emitted is on the log, and the counters say the same.
    windows = [e for e in read_topic(settings, "iaa") if e.__class__.__name__ == "IaaWindowClosed"]
    assert got["emitted"] == {"IaaWindowClosed": len(windows)} == {"IaaWindowClosed": 2}
    assert got["blind_spots"] == {"coded_harassment": 1}
    dead = [e for e in read_topic(settings, "deadletter") if e.__class__.__name__ == "DeadLettered"]
    assert sum(got["rejected"].values()) == len(dead) == 3
    assert got["lag"] == 0 and got["uncommitted"] == 0 and got["caught_up"] is True
    assert got["seconds_since_last_commit"] < 5
    assert got["state_entries"] == 2  # the two votes it took
    assert got["healthy"] is True and got["health"]["healthy"] is True

    # The histograms: one batch per record (batch size 1), and every record waited the hold.
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("labeltrail_batch_seconds_count", None)] == 5
    assert samples[("labeltrail_record_latency_seconds_count", None)] == 5
    assert samples[("labeltrail_record_latency_seconds_bucket", "0.5")] == 0
    assert samples[("labeltrail_record_latency_seconds_sum", None)] >= 5 * HOLD_S
    assert samples[("labeltrail_batch_seconds_bucket", "0.5")] == 4  # all but the held one


def _try_read(url: str) -> dict[str, Any] | None:
    try:
        return read(url, timeout=1)
    except metrics_module.MetricsUnavailableError:
        return None


def test_a_taken_metrics_port_is_a_clear_error_before_anything_is_read(
    fed: tuple[Settings, str, str],
) -> None:
    settings, url, _ = fed
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        runner = StageRunner(Echo(), settings)
        with pytest.raises(MetricsPortInUseError) as caught:
            runner.run(threading.Event())
    message = str(caught.value)
    assert f"metrics port {port}" in message and "already in use" in message
    assert "LABELTRAIL_METRICS_PORT" in message
    assert runner.stats.consumed == 0


def test_a_faust_worker_on_a_taken_port_exits_1_naming_it(
    fed: tuple[Settings, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, url, _ = fed
    port = int(url.rsplit(":", 1)[1])
    monkeypatch.setenv("LABELTRAIL_METRICS_PORT", str(settings.metrics_port))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc = start_faust(f"{__name__}:echo", settings, tmp_path)
        assert proc.wait(120) == 1
    log = faust_log(tmp_path)
    assert f"metrics port {port} on 127.0.0.1 is already in use" in log, log[-2000:]
    assert faust_status(tmp_path) == {}  # it never started


def test_a_stage_service_on_a_taken_port_exits_1_naming_it(
    fed: tuple[Settings, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, url, _ = fed
    port = int(url.rsplit(":", 1)[1])
    monkeypatch.setenv("LABELTRAIL_METRICS_PORT", str(settings.metrics_port))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc, log = start_service("consensus", "confluent", settings, tmp_path)
        assert proc.wait(120) == 1
    text = log.read_text()
    assert f"consensus: metrics port {port} on 127.0.0.1 is already in use" in text, text
    assert "Traceback" not in text


def test_healthz_is_503_with_the_reason_when_the_stage_is_stuck() -> None:
    metrics = ServiceMetrics("tasking", StageStats)
    server = MetricsServer(metrics, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.port}"
    try:
        status, body = _healthz(url)
        assert status == 503 and body["problems"] == ["has not polled its consumer yet"]
        now = time.monotonic()
        vitals = metrics.vitals
        vitals.polled_at = now
        assert _healthz(url)[1]["problems"] == ["no partitions assigned"]
        vitals.must_own_partitions = False  # a scale-out worker beyond the partition count
        assert _healthz(url)[0] == 200
        vitals.must_own_partitions, vitals.assigned = True, 3
        assert _healthz(url)[0] == 200
        vitals.uncommitted, vitals.committed_at = 7, now - metrics_module.COMMIT_STALE_S - 5
        status, body = _healthz(url)
        assert status == 503
        assert body["problems"] == [
            f"7 records dealt with but not committed for {metrics_module.COMMIT_STALE_S + 5:.0f}s"
        ]
        vitals.uncommitted, vitals.polled_at = 0, now - metrics_module.POLL_STALE_S - 5
        status, body = _healthz(url)
        assert status == 503 and "has not polled its consumer" in body["problems"][0]
        assert read(url)["healthy"] is False
    finally:
        server.close()


def test_the_projector_serves_its_counts(pipeline_settings: Settings) -> None:
    settings, url = _with_metrics(pipeline_settings, "projector")
    ensure_topics(settings)
    _feed(settings)
    client = client_from(settings)
    apply_ddl(client)
    projector = Projector(client, settings)
    stop = threading.Event()
    thread = threading.Thread(target=projector.run, args=(stop,), kwargs={"idle_seconds": 0.3})
    thread.start()
    try:
        got = _until(
            lambda: projector.caught_up.is_set() and (s := read(url))["consumed"] >= 5 and s,
            "the projector to catch up",
        )
    finally:
        stop.set()
        thread.join(60)
        client.close()
    # Five records plus the two dead letters it wrote (and then read: they are on the log).
    assert got["stage"] == "projector"
    assert got["rejected"] == {"undecodable": 1, "wrong_topic": 1}
    assert got["consumed"] == got["processed"] + 2
    assert got["lag"] == 0 and got["seconds_since_last_commit"] < 10
    assert got["state_entries"] is None


def test_the_faust_worker_serves_the_same_counters(
    fed: tuple[Settings, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, url, _ = fed
    monkeypatch.setenv("LABELTRAIL_METRICS_PORT", str(settings.metrics_port))
    proc = start_faust(f"{__name__}:echo", settings, tmp_path)
    try:
        got = _until(
            lambda: (
                faust_status(tmp_path).get("caught_up")
                and (s := _try_read(url))
                and s["consumed"] == 5
                and s
            ),
            "the faust worker to catch up",
            timeout=120,
        )
    finally:
        stop_faust(proc, tmp_path)
    assert (got["consumed"], got["processed"]) == (5, 2)
    assert got["rejected"] == {"undecodable": 1, "wrong_topic": 1, "fold_error": 1}
    assert got["emitted"] == {"IaaWindowClosed": 2}
    assert got["health"]["healthy"] is True, got["health"]
    assert got["state_entries"] == 2


# the alert rules ------------------------------------------------------------------------------

_PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "delta", "deriv",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "time", "changes", "histogram_quantile", "max_over_time",
    "min_over_time", "avg_over_time", "absent", "clamp_min", "predict_linear", "resets",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: its identifiers, less label matchers,
    grouping label lists, strings, durations and PromQL's own words."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {n for n in names if n not in _PROMQL_WORDS and not re.fullmatch(r"\d+[smhdw]", n)}


def test_the_alert_rules_name_only_metrics_the_services_export(
    fed: tuple[Settings, str, str],
) -> None:
    settings, url, _ = fed
    runner = StageRunner(Echo(), settings)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_seconds": 0.3})
    thread.start()
    try:
        _until(runner.caught_up.is_set, "the stage to catch up")
        text = _scrape(url)
    finally:
        stop.set()
        thread.join(60)
    exported = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    alerts = {r["alert"] for r in rules}
    assert {
        "StageLagGrowing",
        "DeadLettersGrowing",
        "StageNotCommitting",
        "BlindSpotFlagged",
        "AnnotatorSuspended",
        "ModelRefused",
    } <= alerts
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]
