"""``labeltrail replay labels`` on the real broker: a simulated history run through the live
stages is reproduced by a batch replay of its log (exit 0); a tampered labels topic is not
(exit 4, the difference named)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.config import Settings
from labeltrail.events import LabelCommitted
from labeltrail.folds.base import Fold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from labeltrail.ontology.schema import MODERATION_CLASSES
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer
from labeltrail.sim.demo import replay_settings, seed_platform
from labeltrail.stages import make
from tests.probes import read_topic, wait_until_settled

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N, SEED = 150, 29


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The platform's inputs produced, and the live stages run over them until settled."""
    root: Path = tmp_path_factory.mktemp("replay")
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=3,
        clickhouse_dsn=f"chdb://{root / 'clickhouse'}",
    )
    platform = Platform(PlatformConfig.sized(N, seed=SEED))
    staged = replay_settings(settings, platform)
    folds: list[Fold] = [
        SimulatedScorer(platform, threshold=settings.low_margin_threshold),
        make("tasking", staged),
        SimulatedAnnotators(platform),
        *(make(stage, staged) for stage in ("consensus", "labels", "reliability")),
    ]
    ensure_topics(settings)
    stop = threading.Event()
    runners = [StageRunner(fold, settings) for fold in folds]
    threads = [threading.Thread(target=r.run, args=(stop,)) for r in runners]
    for t in threads:
        t.start()
    try:
        seed_platform(settings, platform)
        wait_until_settled(settings, {f.name: f.inputs for f in folds}, timeout=300)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    yield settings


def _replay(settings: Settings) -> tuple[int, dict[str, Any], str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
    }
    runner = CliRunner()
    as_json = runner.invoke(app, ["replay", "labels", "--json"], env=env)
    text = runner.invoke(app, ["replay", "labels", "--limit", "3"], env=env)
    assert as_json.exit_code == text.exit_code, text.output
    return as_json.exit_code, json.loads(as_json.stdout), " ".join(text.output.split())


def test_the_live_labels_are_reproduced_then_a_tampered_log_is_not(live: Settings) -> None:
    labels = [e for e in read_topic(live, "labels") if isinstance(e, LabelCommitted)]
    routes = {e.route for e in labels}
    assert routes == {"consensus", "adjudication"}, routes

    code, body, text = _replay(live)
    assert code == 0, text
    assert body["agree"] is True and body["differences"] == []
    assert body["read"] == body["recomputed"] == body["equal"] == len(labels)
    assert body["votes"] > 0
    assert "the labels on the log are reproduced by their inputs" in text

    # A forger appends a second version of one label, with another class.
    # (An adjudicated label may carry no class list of its own: take the schema's classes.)
    first = labels[0]
    other = next(c for c in MODERATION_CLASSES if c != first.label)
    producer = EventProducer(live)
    producer.send(first.model_copy(update={"label": other}))
    producer.flush()

    code, body, text = _replay(live)
    assert code == 4, text
    assert body["agree"] is False
    assert (body["differing"], body["missing"], body["extra"]) == (1, 0, 0)
    assert body["equal"] == len(labels) - 1
    (diff,) = body["differences"]
    assert diff["kind"] == "differing" and diff["label_id"] == first.label_id
    assert [v["label"] for v in diff["logged"]] == [first.label, other]
    assert diff["recomputed"]["label"] == first.label
    assert f"differing {first.label_id}" in text
