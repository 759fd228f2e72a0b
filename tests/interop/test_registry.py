"""The schema registry wire format against a real registry (Apicurio Registry, in memory,
through its Confluent-compatible API) with confluent-kafka's own client and Avro serdes.

Every event type round-trips in the Confluent framing under a subject per topic and event
type; BACKWARD compatibility is enforced, so a contract change that would break readers fails
here; a whole pipeline runs in the registry format; an unknown schema id and a registry that
cannot be reached are dead-lettered with their reasons while the stage goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryError

from labeltrail.config import Settings
from labeltrail.events import EVENT_TYPES, DeadLettered, Event, decode, encode
from labeltrail.events.avro import schema_dir, writer_schemas
from labeltrail.events.serde import read_framed_with
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import RegistryUnavailableError, UnknownEventTypeError
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventEncoder, EventProducer
from labeltrail.kafka.registry import RegistryCodec, codec_for, require_backward, subject_of
from labeltrail.sim import Platform, PlatformConfig
from labeltrail.sim.demo import DEMO_DAYS, run_demo
from tests.events.samples import sample_event
from tests.folds.helpers import final_labels, run_in_memory
from tests.interop.java import Java
from tests.interop.test_codec import _records
from tests.kafka.runners import run_stage
from tests.probes import read_topic
from tests.sim.test_demo import _labels_from_clickhouse

pytestmark = pytest.mark.integration


@pytest.fixture
def codec(registry_url: str) -> Iterator[RegistryCodec]:
    codec = RegistryCodec(registry_url)
    yield codec
    read_framed_with(None)
    codec.close()


def test_every_event_type_round_trips_under_its_own_subject(codec: RegistryCodec) -> None:
    read_framed_with(codec)
    encoder = EventEncoder(Settings(topic_prefix="rt1"))
    subjects = set()
    for name in sorted(EVENT_TYPES):
        event = sample_event(name)
        topic = encoder.topic_of(event)
        data = codec.encode(event, topic)
        assert data[:1] == b"\x00" and data[5:] == encode(event)[10:]  # same Avro body
        assert decode(data) == event
        subjects.add(subject_of(topic, name))
    assert subjects <= set(codec.client.get_subjects())
    assert codec.client.get_latest_version(subject_of("rt1.comments", "CommentPosted"))


def test_java_and_labeltrail_read_each_others_registry_format(
    codec: RegistryCodec, java: Java
) -> None:
    """For every event type and a simulated history: Java (writing the framing by hand, as any
    client of the registry API may) registers its schema under the same subject, and each side
    decodes what the other wrote (the writer schema fetched by id)."""
    read_framed_with(codec)
    encoder = EventEncoder(Settings(topic_prefix="java"))
    events = _records()
    records = [(encoder.topic_of(e), e) for e in events]
    theirs = java.encode_registry(codec.url, records)
    ours = [codec.encode(e, topic) for topic, e in records]
    for event, their, our in zip(events, theirs, ours, strict=True):
        assert their[:1] == our[:1] == b"\x00", type(event).__name__
        assert decode(their) == event
    assert java.decode_registry(codec.url, ours) == list(events)


def test_a_breaking_contract_change_is_refused(codec: RegistryCodec) -> None:
    """BACKWARD: a new version must read what the last one wrote. Adding a field without a
    default breaks that, and the registry refuses it; adding one with a default is fine."""
    subject = subject_of("compat.comments", "CommentPosted")
    require_backward(codec, subject)
    current = json.loads((schema_dir() / "CommentPosted.avsc").read_text())
    codec.client.register_schema(subject, Schema(json.dumps(current), "AVRO"))

    def grown(field: dict[str, object]) -> Schema:
        return Schema(json.dumps({**current, "fields": [*current["fields"], field]}), "AVRO")

    with pytest.raises(SchemaRegistryError) as refused:
        codec.client.register_schema(subject, grown({"name": "region", "type": "string"}))
    assert refused.value.http_status_code == 409
    optional = {"name": "region", "type": ["null", "string"], "default": None}
    assert codec.client.register_schema(subject, grown(optional)) > 0


def test_the_committed_history_of_every_contract_is_backward_compatible(
    codec: RegistryCodec,
) -> None:
    """Each contract's versions (schemas/avro/history, then the current one) registered in
    order under BACKWARD: a committed change that would break readers fails here."""
    versions: dict[str, list[tuple[int, str]]] = {}
    for path in sorted((schema_dir() / "history").glob("*.avsc")):
        name, _, number = path.stem.partition(".v")
        versions.setdefault(name, []).append((int(number), path.read_text()))
    current = {w.name: w.version for w in writer_schemas().values()}
    for name in sorted(current):
        history = sorted(versions.get(name, []))
        history.append((current[name], (schema_dir() / f"{name}.avsc").read_text()))
        subject = subject_of("history", name)
        require_backward(codec, subject)
        for number, text in history:
            try:
                codec.client.register_schema(subject, Schema(text, "AVRO"))
            except SchemaRegistryError as exc:
                pytest.fail(f"{name} v{number} breaks readers of v{number - 1}: {exc}")


def test_unknown_schema_ids_and_a_registry_that_cannot_be_reached(codec: RegistryCodec) -> None:
    read_framed_with(codec)
    body = encode(sample_event("CommentPosted"))[10:]
    with pytest.raises(UnknownEventTypeError, match="schema id 987654"):
        decode(b"\x00" + (987654).to_bytes(4, "big") + body)
    with closing(RegistryCodec("http://127.0.0.1:9/apis/ccompat/v7", retries=0)) as down:
        read_framed_with(down)
        with pytest.raises(RegistryUnavailableError, match=r"127\.0\.0\.1:9"):
            decode(b"\x00" + (1).to_bytes(4, "big") + body)
    read_framed_with(None)
    with pytest.raises(RegistryUnavailableError, match="no schema registry"):
        decode(b"\x00" + (1).to_bytes(4, "big") + body)


CONFIG = PlatformConfig.sized(80, seed=4, days=DEMO_DAYS)


@pytest.mark.slow
def test_the_pipeline_runs_in_the_registry_format(
    pipeline_settings: Settings, registry_url: str
) -> None:
    settings = pipeline_settings.model_copy(
        update={"wire_format": "registry", "schema_registry_url": registry_url}
    )
    try:
        result = run_demo(settings, config=CONFIG, timeout=300)
        assert result.dead_letters == 0
        reference = final_labels(run_in_memory(Platform(CONFIG)).log["labels"])
        assert _labels_from_clickhouse(settings) == reference
        labels = read_topic(settings, "labels")
        assert labels
        prefix = settings.topic_prefix
        assert (
            subject_of(f"{prefix}.labels", "LabelCommitted")
            in codec_for(settings).client.get_subjects()
        )
    finally:
        read_framed_with(None)


def _tasking(settings: Settings, tmp: Path, records: list[bytes]) -> dict[str, object]:
    """Run the tasking stage over ``records`` on the comments topic; its stats."""
    ensure_topics(settings)
    comments = topic_name(settings.topic_prefix, "comments")
    producer = EventProducer(settings.model_copy(update={"wire_format": "single-object"}))
    for value in records:
        producer.send_raw(comments, b"c-1", value)
    producer.flush()
    try:
        outcome = run_stage(
            "confluent", "labeltrail.stages:make_tasking", settings, tmp, consumed=len(records)
        )
    finally:
        read_framed_with(None)
    assert outcome.code == 0, outcome.log[-3000:]
    return outcome.stats


def _dead(settings: Settings) -> dict[int, DeadLettered]:
    return {
        e.source_offset: e
        for e in read_topic(settings, "deadletter")
        if isinstance(e, DeadLettered) and e.stage == "tasking"
    }


def test_an_unknown_schema_id_is_dead_lettered_and_the_stage_goes_on(
    pipeline_settings: Settings, codec: RegistryCodec, tmp_path: Path
) -> None:
    settings = pipeline_settings.model_copy(
        update={"topic_partitions": 1, "wire_format": "registry", "schema_registry_url": codec.url}
    )
    comments = topic_name(settings.topic_prefix, "comments")
    first, second = (_comment(f"c-{i}") for i in (1, 2))
    framed = [codec.encode(e, comments) for e in (first, second)]
    unknown = b"\x00" + (987654).to_bytes(4, "big") + framed[0][5:]
    stats = _tasking(settings, tmp_path, [framed[0], unknown, framed[1]])
    assert (stats["processed"], stats["reasons"]) == (2, {"unknown_event_type": 1})
    dead = _dead(settings)
    assert sorted(dead) == [1] and "987654" in dead[1].reason and dead[1].payload == unknown


def test_a_registry_that_cannot_be_reached_is_dead_lettered_and_the_stage_goes_on(
    pipeline_settings: Settings, codec: RegistryCodec, tmp_path: Path
) -> None:
    """labeltrail writes single-object; a foreign producer wrote one comment in the registry
    format; the registry is down for the stage (it never saw that schema id)."""
    settings = pipeline_settings.model_copy(
        update={"topic_partitions": 1, "schema_registry_url": "http://127.0.0.1:9/apis/ccompat/v7"}
    )
    comments = topic_name(settings.topic_prefix, "comments")
    foreign = codec.encode(_comment("c-2"), comments)
    records = [encode(_comment("c-1")), foreign, encode(_comment("c-3"))]
    stats = _tasking(settings, tmp_path, records)
    assert (stats["processed"], stats["reasons"]) == (2, {"registry_unavailable": 1})
    dead = _dead(settings)
    assert sorted(dead) == [1] and dead[1].payload == foreign
    assert "127.0.0.1:9" in dead[1].reason


def _comment(comment_id: str) -> Event:
    sample = sample_event("CommentPosted")
    envelope = sample.envelope.model_copy(update={"event_id": f"e-{comment_id}"})
    return sample.model_copy(update={"comment_id": comment_id, "envelope": envelope})
