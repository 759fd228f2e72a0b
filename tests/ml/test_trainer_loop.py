"""The closed loop on the real broker, as separate processes: labels -> trainer -> scorer.

``services/trainer.py`` and ``services/scorer.py`` run as their own processes. The day-30 world's
day-0 log (comments, the gold set, votes, adjudications, labels) is produced; the trainer
exports what it read after as many labels as day 0 holds and publishes v1, which the running
scorer hot-swaps in. The trainer is then killed with SIGKILL and started again: it rebuilds its
state from the log without publishing again. The experts' relabel of the blind-spot slice and an
export of the whole log (as ``labeltrail export create`` makes one, rebuilt from the log here
instead of from ClickHouse) follow; the trainer publishes v2 and the same scorer process, never
restarted, scores new comments with it. The day-30 figure comes from the gold metrics in the two
ModelPublished events.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from labeltrail.config import Settings
from labeltrail.events import Event, decode
from labeltrail.events.base import utc_now
from labeltrail.events.models import (
    CommentPosted,
    CommentScored,
    ExportCreated,
    LabelCommitted,
    ModelPublished,
)
from labeltrail.events.topics import topic_name
from labeltrail.export.build import EXPORT_TOPICS, rebuild_rows
from labeltrail.folds.export_rows import AGGREGATOR, AGGREGATOR_PARAMS, content_hash
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import consumer_config
from labeltrail.kafka.log import end_positions
from labeltrail.kafka.producer import EventProducer
from labeltrail.sim import PlatformConfig
from labeltrail.sim.platform import CODED
from tests.learning.fixtures import require_model_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORLD = PlatformConfig.day30(1_000, 250)
PATIENCE_S = 400.0
"""Starting torch, training and exporting on two loaded cores takes minutes, not seconds."""


class Tail:
    """Reads one topic from the start and keeps what it has read."""

    def __init__(self, settings: Settings, suffix: str) -> None:
        group = f"{settings.topic_prefix}.tail-{suffix}-{uuid.uuid4().hex[:6]}"
        self.consumer = Consumer(consumer_config(settings, group))
        self.consumer.subscribe([topic_name(settings.topic_prefix, suffix)])
        self.events: list[Event] = []

    def until(
        self, done: Callable[[list[Event]], bool], *, what: str, still: Callable[[], None]
    ) -> None:
        deadline = time.monotonic() + PATIENCE_S
        while not done(self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            still()
            for msg in self.consumer.consume(500, timeout=0.5):
                if msg.error() is None:
                    self.events.append(decode(msg.value() or b""))

    def close(self) -> None:
        self.consumer.close()


def _env(settings: Settings, models_dir: Path, every: int) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_LEARNING_MODELS_DIR": str(models_dir),
        "LABELTRAIL_TRAINER_EVERY_LABELS": str(every),
        "LABELTRAIL_TRAINER_EPOCHS": "8",
        "LABELTRAIL_TRAINER_MIN_ROWS": "50",
    }


def _start(name: str, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, f"services/{name}.py"], cwd=ROOT, env=env, stdout=log, stderr=log
        )


def _probe(i: int, text: str) -> CommentPosted:
    now = utc_now()
    return CommentPosted.create(
        producer="test",
        occurred_at=now,
        id_parts=("trainer-loop-probe", i),
        comment_id=f"probe-{i:04d}",
        video_id="v-probe",
        author_hash="a",
        text=text,
        posted_at=now,
        source="product_log",
    )


def _export_of_the_log(settings: Settings) -> ExportCreated:
    """An export of everything on the labels, votes and adjudications topics right now."""
    topics = [topic_name(settings.topic_prefix, s) for s in EXPORT_TOPICS]
    positions = end_positions(settings, topics)
    as_of = utc_now()
    draft = ExportCreated.create(
        producer="test.export",
        id_parts=("trainer-loop", settings.topic_prefix, as_of),
        export_id=f"export-{uuid.uuid4().hex[:8]}",
        schema_version="v3",
        as_of=as_of,
        log_positions=positions,
        aggregator=AGGREGATOR,
        aggregator_params=AGGREGATOR_PARAMS,
        content_hash="",
        row_count=0,
        uri="",
    )
    rows = rebuild_rows(settings, draft)
    return draft.model_copy(update={"content_hash": content_hash(rows), "row_count": len(rows)})


def _models(events: Sequence[Event]) -> list[ModelPublished]:
    return [e for e in events if isinstance(e, ModelPublished)]


def test_labels_to_trainer_to_a_running_scorer_and_the_day30_figure(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    require_model_stack()
    from labeltrail.sim.scenario import Day30Config, day30_log

    settings = pipeline_settings
    world = day30_log(Day30Config(platform=WORLD))
    assert world.flagged == [CODED]
    day0_labels = sum(isinstance(e, LabelCommitted) for e in world.day0)
    ensure_topics(settings)
    models_dir = tmp_path / "models"
    env = _env(settings, models_dir, every=day0_labels)
    procs = {name: _start(name, env, tmp_path) for name in ("scorer", "trainer")}
    scorer_pid = procs["scorer"].pid
    producer = EventProducer(settings)
    models, scores = Tail(settings, "models"), Tail(settings, "scores")

    def still_alive() -> None:
        for name, proc in procs.items():
            log = (tmp_path / f"{name}.log").read_text()[-3000:]
            assert proc.poll() is None, f"{name} died: {log}"

    try:
        for event in world.day0:
            producer.send(event)
        producer.flush()
        models.until(lambda e: len(_models(e)) >= 1, what="v1", still=still_alive)
        v1 = _models(models.events)[0]
        day0_comments = {e.comment_id for e in world.day0 if isinstance(e, CommentPosted)}

        def scored_by(version: str, ids: set[str]) -> Callable[[list[Event]], bool]:
            def done(events: list[Event]) -> bool:
                got = {
                    e.comment_id
                    for e in events
                    if isinstance(e, CommentScored) and e.model_version == version
                }
                return ids <= got

            return done

        # Comments posted before any model were held and are scored by v1.
        scores.until(
            scored_by(v1.model_version, day0_comments), what="v1 scores", still=still_alive
        )

        # kill -9 the trainer and start it again: it restores from the log, publishes nothing.
        procs["trainer"].send_signal(signal.SIGKILL)
        procs["trainer"].wait(30)
        procs["trainer"] = _start("trainer", env, tmp_path)
        trainer_log = tmp_path / "trainer.log"
        deadline = time.monotonic() + PATIENCE_S
        while not re.search(r"restored \d+ records; now live", trainer_log.read_text()):
            assert time.monotonic() < deadline, "the restarted trainer never went live"
            still_alive()
            time.sleep(0.5)

        for event in world.later:
            producer.send(event)
        producer.flush()
        export = _export_of_the_log(settings)
        producer.send(export)
        producer.flush()
        models.until(lambda e: len(_models(e)) >= 2, what="v2", still=still_alive)
        v2 = _models(models.events)[-1]
        assert v2.export_id == export.export_id and v2.export_hash == export.content_hash

        # New comments reach the same scorer process, which now scores with v2.
        probes: list[CommentPosted] = []
        deadline = time.monotonic() + PATIENCE_S
        while not any(
            isinstance(e, CommentScored)
            and e.comment_id.startswith("probe-")
            and e.model_version == v2.model_version
            for e in scores.events
        ):
            assert time.monotonic() < deadline, "the scorer never scored with v2"
            probes.append(_probe(len(probes), "nobody wants you here, your kind never learns"))
            producer.send(probes[-1])
            producer.flush()
            scores.until(scored_by_any(probes[-1].comment_id), what="a probe", still=still_alive)
        for i in range(5):
            probes.append(_probe(len(probes), f"thanks for the video, subscribed {i}"))
            producer.send(probes[-1])
        producer.flush()
        last = {p.comment_id for p in probes[-5:]}
        scores.until(scored_by(v2.model_version, last), what="v2 probes", still=still_alive)
        assert procs["scorer"].pid == scorer_pid and procs["scorer"].poll() is None
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(30)
        models.close()
        scores.close()

    published = _models(models.events)
    assert len(published) == len({m.event_id for m in published}) == 2, "restart republished"
    assert v1.model_version != v2.model_version
    assert "restored" in (tmp_path / "trainer.log").read_text()
    for model in (v1, v2):
        assert (models_dir / model.artifact_uri).is_file()
        assert model.metrics["parity.max_abs_diff"] <= 1e-5
        # Every gold item is evaluated and none trains, however the partitions interleaved.
        assert model.metrics["gold.all.n"] == WORLD.n_gold
    key = f"gold.{CODED}.recall.harassment"
    before, after = v1.metrics[key], v2.metrics[key]
    print(
        f"day30 through processes: coded recall {before:.2f} -> {after:.2f}, "
        f"gold accuracy {v1.metrics['gold.all.accuracy']:.3f} -> "
        f"{v2.metrics['gold.all.accuracy']:.3f}"
    )
    assert after - before >= 0.3, (before, after)


def scored_by_any(comment_id: str) -> Callable[[list[Event]], bool]:
    def done(events: list[Event]) -> bool:
        return any(isinstance(e, CommentScored) and e.comment_id == comment_id for e in events)

    return done
