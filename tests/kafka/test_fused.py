"""The fused stages against the separate services, on the real broker.

The same simulated platform runs twice, on two topic prefixes: once with tasking, consensus,
labels, reliability and iaa as five StageRunners, once as one FusedRunner; the simulated
scorer and annotators run beside either as their own stages. Every topic must end with the
same events, ids and contents included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from labeltrail.config import Settings
from labeltrail.events import decode
from labeltrail.events.base import Event
from labeltrail.events.models import CommentPosted, LabelCommitted
from labeltrail.events.topics import topic_name
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.fused import FusedRunner, GroupFusedRunner
from labeltrail.kafka.log import end_positions, read_records
from labeltrail.kafka.producer import EventProducer
from labeltrail.kafka.runner import StageRunner
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer
from labeltrail.sim.demo import seed_platform
from labeltrail.stages import FUSED, STAGES, fused, make
from tests.folds.helpers import final_labels, suffix_topic
from tests.probes import read_topic, wait_for_progress

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N, SEED = 120, 23
REPO = Path(__file__).resolve().parents[2]
TOPICS = (
    "tasks",
    "tasks.crowd",
    "tasks.expert",
    "votes",
    "adjudications",
    "scores",
    "consensus",
    "quality",
    "annotators.status",
    "labels",
    "iaa",
    "deadletter",
)


def _world(settings: Settings, platform: Platform) -> Settings:
    """Tasking waits for the whole simulated crowd and knows the gold set (as the demo does)."""
    tasking = settings.tasking.model_copy(
        update={
            "min_crowd_pool": len(platform.crowd_ids),
            "min_expert_pool": len(platform.expert_ids),
            "gold_set_size": platform.config.n_gold,
        }
    )
    return settings.model_copy(update={"tasking": tasking})


def _outside(settings: Settings, platform: Platform) -> list[StageRunner]:
    """The simulated scorer and annotators: stages outside the fused set."""
    return [
        StageRunner(SimulatedScorer(platform, threshold=settings.low_margin_threshold), settings),
        StageRunner(SimulatedAnnotators(platform), settings),
    ]


def _seed(settings: Settings, platform: Platform, *copies: Settings) -> None:
    """The platform's inputs on ``settings``' topics, and the very same records on each of
    ``copies``' (comment texts are sealed with a random nonce: sealing twice differs)."""
    for target in (settings, *copies):
        ensure_topics(target)
    seed_platform(settings, platform)
    for target in copies:
        _copy(settings, target, platform)


def _copy(
    source: Settings,
    target: Settings,
    platform: Platform,
    keep: Callable[[Event], bool] = lambda _event: True,
) -> None:
    """The platform's input records on ``source`` that ``keep`` takes, onto ``target``."""
    suffixes = {suffix_topic(e) for e in platform.inputs()} | {"gold"}
    topics = [topic_name(source.topic_prefix, s) for s in sorted(suffixes)]
    producer = EventProducer(target)
    for values, positions in read_records(source, end_positions(source, topics)):
        for value, (topic, _, _) in zip(values, positions, strict=True):
            event = decode(value)
            if keep(event):
                suffix = topic.removeprefix(f"{source.topic_prefix}.")
                producer.send_raw(
                    topic_name(target.topic_prefix, suffix), event.key.encode(), value
                )
    producer.flush()


def _run(settings: Settings, runners: Sequence[StageRunner]) -> None:
    """Run until every runner is caught up and nothing moved for two seconds."""
    with _running(runners):
        _settle(runners)


@contextmanager
def _running(runners: Sequence[StageRunner]) -> Iterator[list[threading.Thread]]:
    """The runners in threads while the block runs; stopped (and joined) after it."""
    stop = threading.Event()
    threads = [threading.Thread(target=r.run, args=(stop,)) for r in runners]
    for t in threads:
        t.start()
    try:
        yield threads
    finally:
        stop.set()
        for t in threads:
            t.join(60)


def _settle(runners: Sequence[StageRunner], timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    before = -1
    while time.monotonic() < deadline:
        time.sleep(2.0)
        total = sum(r.stats.consumed + r.stats.emitted for r in runners)
        if all(r.caught_up.is_set() for r in runners) and total == before:
            return
        before = total
    raise AssertionError("the pipeline did not settle")


def _contents(settings: Settings) -> dict[str, Counter[str]]:
    """Every topic's events, as JSON with the event id, counted (a duplicate shows)."""
    return {
        suffix: Counter(_canonical(e, settings.topic_prefix) for e in read_topic(settings, suffix))
        for suffix in TOPICS
    }


def _canonical(event: Event, prefix: str) -> str:
    """The event but its ``recorded_at`` (the wall clock when it was made, in any runner), its
    topic prefix (a label's source position names the consensus topic), and two fields that
    race in any live pipeline: the reliability weights a consensus reports (see the test) and
    an adjudicated label's classes."""
    dumped = event.model_dump(mode="json", exclude={"envelope": {"recorded_at"}})
    if dumped.get("route") == "adjudication":
        # The labels fold gives an adjudication the schema's classes if it has read the
        # schema, else the label's alone: for the gold answers seeded beside the schema, which
        # topic a consumer fetches first decides, in any runner.
        dumped.pop("classes")
        dumped.pop("distribution")
    params = dumped.get("method_params")
    if isinstance(params, dict) and "weights" in params:
        params["weights"] = ",".join(w.split("=")[0] for w in params["weights"].split(","))
        params.pop("estimates", None)
    text = json.dumps(dumped, sort_keys=True)
    return type(event).__name__ + " " + text.replace('"' + prefix + ".", '"')


def test_fused_stages_write_what_the_separate_services_write(
    pipeline_settings: Settings,
) -> None:
    platform = Platform(PlatformConfig.sized(N, seed=SEED))
    # One partition per topic: a separate service then reads each topic in one order too (with
    # several, reliability's estimate stream follows the interleaving of the partitions of
    # honeypot results it happens to fetch, in any runner).
    # Majority vote, and the reliability weights a consensus reports compared by annotator
    # only: a consensus stage weighs a vote by the estimate it holds when the vote arrives,
    # and that estimate, made by reliability from an earlier honeypot, races the vote in any
    # live pipeline (between separate services, the reliability process against the
    # annotators'). Every id, and every other field, must be equal.
    one = {"topic_partitions": 1, "consensus_method": "mv"}
    separate = _world(pipeline_settings.model_copy(update=one), platform)
    together = separate.model_copy(update={"topic_prefix": f"{separate.topic_prefix}f"})

    _seed(separate, platform, together)
    _run(
        separate,
        [*_outside(separate, platform), *(StageRunner(make(s, separate), separate) for s in FUSED)],
    )
    runner = FusedRunner(fused(together), together)
    _run(together, [*_outside(together, platform), runner])

    a, b = _contents(separate), _contents(together)
    for suffix in TOPICS:
        assert a[suffix] == b[suffix], f"{suffix}: {_diff(a[suffix], b[suffix])}"
    assert sum(a["labels"].values()) > 0
    # Only the external inputs were read from Kafka; the rest was handed over in memory.
    read = set(runner.topics)
    assert {f"{together.topic_prefix}.{s}" for s in ("consensus", "tasks", "labels")}.isdisjoint(
        read
    )
    assert runner.member_stats["labels"].consumed > 0


def _diff(a: Counter[str], b: Counter[str]) -> str:
    only_a, only_b = a - b, b - a
    return (
        f"{sum(only_a.values())} only separate, e.g. {list(only_a)[:2]}; "
        f"{sum(only_b.values())} only fused, e.g. {list(only_b)[:2]}"
    )


def _labels(settings: Settings) -> list[LabelCommitted]:
    return [e for e in read_topic(settings, "labels") if isinstance(e, LabelCommitted)]


def _start_fused(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """``services/fused.py`` as its own process, configured like ``_world``'s settings."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LABELTRAIL_MIN_CROWD_POOL": str(settings.tasking.min_crowd_pool),
        "LABELTRAIL_MIN_EXPERT_POOL": str(settings.tasking.min_expert_pool),
        "LABELTRAIL_GOLD_SET_SIZE": str(settings.tasking.gold_set_size),
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, str(REPO / "services" / "fused.py")],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_for_labels(
    settings: Settings, at_least: int, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 180
    while len({e.envelope.event_id for e in _labels(settings)}) < at_least:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"fewer than {at_least} labels"
        time.sleep(0.5)


def test_the_fused_process_killed_and_restarted_loses_and_duplicates_no_label(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    platform = Platform(PlatformConfig.sized(N, seed=SEED))
    settings = _world(pipeline_settings, platform)
    reference = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}r"})
    _seed(reference, platform)
    ensure_topics(settings)
    later = {c.event.comment_id for c in platform.comments[len(platform.comments) // 2 :]}

    def first_half(event: Event) -> bool:
        return not (isinstance(event, CommentPosted) and event.comment_id in later)

    _copy(reference, settings, platform, first_half)
    _run(reference, [*_outside(reference, platform), FusedRunner(fused(reference), reference)])
    expected = _labels(reference)
    ids = {e.envelope.event_id for e in expected}
    assert len(ids) > 20

    log = tmp_path / "fused.log"
    with _running(_outside(settings, platform)):
        first = _start_fused(settings, log)
        try:
            _wait_for_labels(settings, 10, first, log)
        finally:
            first.kill()  # kill -9, mid-stream: outputs sent, offsets perhaps not committed
            first.wait(30)
        _copy(reference, settings, platform, lambda event: not first_half(event))
        again = _start_fused(settings, log)
        try:
            _wait_for_labels(settings, len(ids), again, log)
            time.sleep(3)  # anything more it would write
        finally:
            again.send_signal(signal.SIGTERM)
            code = again.wait(60)
    assert code == 0, log.read_text()[-3000:]
    written = _labels(settings)
    assert {e.envelope.event_id for e in written} == ids
    assert final_labels(list(written)) == final_labels(list(expected))


def test_two_fused_workers_through_a_rebalance_give_the_labels_of_one(
    pipeline_settings: Settings,
) -> None:
    platform = Platform(PlatformConfig.sized(N, seed=SEED))
    settings = _world(pipeline_settings, platform)  # three partitions per topic
    one = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}one"})
    _seed(settings, platform, one)
    scalable = [n for n in FUSED if STAGES[n].scalable]

    def make(config: Settings) -> GroupFusedRunner:
        return GroupFusedRunner(lambda: fused(config, scalable), config)

    _run(one, [*_outside(one, platform), make(one)])
    first = make(settings)
    runners: list[StageRunner] = [*_outside(settings, platform), first]
    with _running(runners):
        wait_for_progress(settings, "fused", ["votes"], timeout=120)
        second = make(settings)  # joins mid-run: the group rebalances
        runners.append(second)
        more = threading.Thread(target=second.run, args=(stop := threading.Event(),))
        more.start()
        try:
            _settle(runners)
        finally:
            stop.set()
            more.join(60)
    assert first.rebalances >= 2 and second.rebalances >= 1
    assert second.stats.consumed > 0, "the second worker got no work"
    labels = _labels(settings)
    assert labels
    assert final_labels(list(labels)) == final_labels(list(_labels(one)))
    assert {e.envelope.event_id for e in labels} == {e.envelope.event_id for e in _labels(one)}


def test_the_handover_producer_hands_over_the_very_event_it_encoded(
    pipeline_settings: Settings,
) -> None:
    """What a fused stage reads of another's output is the event object itself, with the
    record the broker acknowledged (its real position), and equal to a decode of its bytes."""
    from labeltrail.kafka.fused import HandoverProducer
    from tests.events.samples import sample_event

    ensure_topics(pipeline_settings)
    tasks = topic_name(pipeline_settings.topic_prefix, "tasks")
    producer = HandoverProducer(pipeline_settings, frozenset({tasks}))
    task, comment = sample_event("TaskCreated"), sample_event("CommentPosted")
    try:
        producer.send_all([task, comment])  # only the task's topic is handed over
        producer.flush()
        assert len(producer.delivered_records) == 1
        cause, msg, event = producer.delivered_records[0]
        assert (cause, msg.topic(), event) == (0, tasks, task)
        assert event is task
        assert decode(msg.value()) == event
        assert producer.unhanded == {0: 1}
    finally:
        producer.close()
