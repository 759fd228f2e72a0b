"""The scorer fold on the real broker: onnxruntime scores, a new model hot-swaps in."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from labeltrail.config import Settings
from labeltrail.events import decode
from labeltrail.events.models import CommentPosted, CommentScored, ModelPublished
from labeltrail.events.topics import topic_name
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.consumer import consumer_config
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from labeltrail.ml.train_job import onnx_scorer
from labeltrail.ontology.schema import MODERATION_CLASSES
from tests.learning.fixtures import require_model_stack, toy_corpus

pytestmark = pytest.mark.integration


def _comment(i: int, text: str) -> CommentPosted:
    when = dt.datetime(2024, 9, 2, 10, i, tzinfo=dt.UTC)
    return CommentPosted.create(
        producer="test",
        occurred_at=when,
        id_parts=("scorer-it", i),
        comment_id=f"c-{i:04d}",
        video_id="v-3201",
        author_hash="a",
        text=text,
        posted_at=when,
        source="product_log",
    )


def _publish(models_dir: Path, version: str, seed: int) -> ModelPublished:
    from labeltrail.learning.features import HashingFeaturizer
    from labeltrail.learning.publish import artifact_path, model_published
    from labeltrail.ml.training import SoftLabelTrainer

    texts, targets = toy_corpus(repeat=4, seed=seed)
    trainer = SoftLabelTrainer(
        MODERATION_CLASSES,
        featurizer=HashingFeaturizer(n_buckets=2**10, max_features=48),
        dim=8,
        hidden=8,
        epochs=3,
        batch_size=16,
        seed=seed,
    ).fit(texts, targets)
    trainer.export_onnx(artifact_path(models_dir, version))
    return model_published(
        models_dir, version, MODERATION_CLASSES, export_id="e", export_hash="h", metrics={}
    )


def _scores(settings: Settings, expected: int, timeout: float = 60.0) -> list[CommentScored]:
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.reader-{expected}"))
    consumer.subscribe([topic_name(settings.topic_prefix, "scores")])
    out: list[CommentScored] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(100, timeout=0.3):
                if msg.error() is None:
                    event = decode(msg.value() or b"")
                    assert isinstance(event, CommentScored)
                    out.append(event)
    finally:
        consumer.close()
    return sorted(out, key=lambda s: s.comment_id)


def test_scorer_scores_and_hot_swaps_without_restart(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    require_model_stack()
    from labeltrail.folds.scorer import ScorerFold

    settings = pipeline_settings
    ensure_topics(settings)
    v1, v2 = _publish(tmp_path, "m-v1", 0), _publish(tmp_path, "m-v2", 1)
    producer = EventProducer(settings)
    producer.send(v1)
    for i, text in enumerate(["great video thanks", "log off you clown", "i know where you live"]):
        producer.send(_comment(i, text))
    producer.flush()

    fold = ScorerFold(load=onnx_scorer, models_dir=tmp_path, threshold=0.1)
    runner = StageRunner(fold, settings)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        first = _scores(settings, 3)
        assert [s.model_version for s in first] == ["m-v1"] * 3
        for s in first:
            assert abs(sum(s.probabilities) - 1) < 1e-5 and 0 <= s.margin <= 1
            assert s.route == ("annotate" if s.margin < 0.1 else "none")
        producer.send(v2)
        producer.flush()
        deadline = time.monotonic() + 60
        while fold.model_version != "m-v2" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fold.model_version == "m-v2", "the new model was not picked up"
        for i in range(3, 6):
            producer.send(_comment(i, "nobody wants you here loser"))
        producer.flush()
        scores = _scores(settings, 6)
    finally:
        stop.set()
        thread.join(30)
    assert [s.model_version for s in scores[3:]] == ["m-v2"] * 3
    assert runner.stats.rejected == 0
    assert fold.swaps == 2
