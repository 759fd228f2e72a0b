"""The reference Java clients (``ops/interop``): Apache Avro 1.12 and kafka-clients, compiled and
run as a foreign producer or frontend would be. Records cross to and from Java in Avro's JSON
encoding, one per line, so the Java side knows nothing of labeltrail but ``schemas/avro``.

A missing Java, javac or Maven is :func:`tests.unavailable.unavailable`: a failure under CI=true.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastavro import json_reader, json_writer

from labeltrail.events import EVENT_TYPES, Event
from labeltrail.events.avro import committed_schemas, schema_dir
from tests.kafka_fixture import load_ops_script
from tests.unavailable import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "ops" / "interop" / "interop.py"


def load_interop() -> ModuleType:
    """Import ops/interop/interop.py."""
    return load_ops_script(SCRIPT, "labeltrail_ops_interop")


class Java:
    """The compiled harness (``labeltrail.interop.Interop``), one JVM per call."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module
        self.schemas = str(schema_dir())

    def run(self, *args: str, lines: Iterable[str] = (), timeout: float = 120.0) -> list[str]:
        stdin = "".join(f"{line}\n" for line in lines)
        out: str = self._module.run(*args, stdin=stdin, timeout=timeout)
        return out.splitlines()

    def fingerprints(self) -> dict[tuple[str, int], int]:
        """(name, version) -> Java's ``SchemaNormalization.parsingFingerprint64``."""
        out = {}
        for line in self.run("fingerprint", self.schemas):
            name, version, fp = line.split("\t")
            out[(name, int(version))] = int.from_bytes(bytes.fromhex(fp), "big", signed=True)
        return out

    def encode(self, events: Iterable[Event]) -> list[bytes]:
        """Java's ``BinaryMessageEncoder`` bytes of each event, built from its Avro JSON."""
        return self.encode_json([(type(e).__name__, to_json(e)) for e in events])

    def encode_json(self, records: Iterable[tuple[str, str]], schemas: str = "") -> list[bytes]:
        """Java's bytes of (record name, Avro JSON) records, with the contracts in ``schemas``
        (ours unless given)."""
        lines = [f"{name}\t{record}" for name, record in records]
        out = self.run("encode", schemas or self.schemas, lines=lines)
        return [bytes.fromhex(h) for h in out]

    def decode(self, messages: Iterable[bytes]) -> list[tuple[str, str, bytes]]:
        """(name, Avro JSON of the decoded record, Java's own re-encoding) per message."""
        out = []
        for line in self.run("decode", self.schemas, lines=[m.hex() for m in messages]):
            name, record, again = line.split("\t")
            out.append((name, record, bytes.fromhex(again)))
        return out

    def produce(self, bootstrap: str, topic: str, events: Iterable[Event]) -> list[int]:
        """A Java ``KafkaProducer`` sends each event (keyed as labeltrail keys it), encoded by
        Java; the partition of each."""
        lines = [f"{e.key}\t{type(e).__name__}\t{to_json(e)}" for e in events]
        out = self.run("produce", bootstrap, topic, self.schemas, lines=lines)
        return [int(line.split("\t")[0]) for line in out]

    def produce_raw(self, bootstrap: str, topic: str, records: Iterable[tuple[str, bytes]]) -> None:
        """A Java ``KafkaProducer`` sends (key, value) records as they are."""
        lines = [f"{key}\t{value.hex()}" for key, value in records]
        self.run("produce-raw", bootstrap, topic, lines=lines)

    def consume(self, bootstrap: str, topic: str, count: int) -> list[tuple[int, str, Event]]:
        """A Java ``KafkaConsumer`` reads ``count`` records of a topic from the beginning and
        decodes them; (partition, key, event) of each, via Avro JSON."""
        out = []
        for line in self.run("consume", bootstrap, topic, self.schemas, str(count), "60000"):
            partition, _, key, name, record = line.split("\t")
            out.append((int(partition), key, from_json(name, record)))
        return out

    def encode_registry(self, url: str, records: Iterable[tuple[str, Event]]) -> list[bytes]:
        """Java's Confluent-framed bytes of (topic, event) records, registered under the
        subject ``<topic>-<record full name>`` in the registry at ``url``."""
        lines = [f"{topic}\t{type(e).__name__}\t{to_json(e)}" for topic, e in records]
        out = self.run("encode-registry", url, self.schemas, lines=lines)
        return [bytes.fromhex(h) for h in out]

    def decode_registry(self, url: str, messages: Iterable[bytes]) -> list[Event]:
        """Java's reading of Confluent-framed messages (writer schema fetched by id)."""
        lines = [m.hex() for m in messages]
        out = self.run("decode-registry", url, self.schemas, lines=lines)
        return [from_json(*line.split("\t")) for line in out]


def to_json(event: Event) -> str:
    """The event in Avro's JSON encoding (unions tagged by branch), as Java's JsonDecoder reads."""
    buf = io.StringIO()
    json_writer(buf, committed_schemas()[type(event).__name__], [event.model_dump()])
    return buf.getvalue().strip()


def from_json(name: str, record: str) -> Event:
    """An event from a record in Avro's JSON encoding (what the harness prints)."""
    rows: list[Any] = list(json_reader(io.StringIO(record), committed_schemas()[name]))
    assert len(rows) == 1
    return EVENT_TYPES[name].model_validate(rows[0])


@pytest.fixture(scope="session")
def java() -> Java:
    """The harness, fetched and compiled once (``ops/interop/interop.py build`` in setup)."""
    module = load_interop()
    try:
        module.harness()
    except RuntimeError as exc:  # no java, javac or mvn; a fetch or compile that failed
        unavailable(f"the Java interop harness is not available: {exc}")
    return Java(module)


@pytest.fixture(scope="session")
def registry_url() -> Iterator[str]:
    """A fresh Apicurio Registry (in memory) for this test session: its Confluent-compatible
    URL. Started from Maven Central's distribution (``ops/interop/interop.py``), stopped after."""
    module = load_interop()
    try:
        module.fetch_registry()
    except RuntimeError as exc:
        unavailable(f"no schema registry to test against: {exc}")
    with module.registry() as url:
        yield url
