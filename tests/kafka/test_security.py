"""A secured cluster: the right principal works, the wrong one is refused with its cause.

A broker of its own (ops/kafka/local_kafka.py, ``Secured``: SASL_SSL with SCRAM-SHA-512, mutual
TLS, the StandardAuthorizer), certificates made here, ACLs applied by ops/kafka/acls.py as the
admin; then each service principal connects with nothing but the ``settings.kafka`` section.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from labeltrail.config import KafkaSecuritySettings, Settings
from labeltrail.events.crypto import key_id_of, reveal_event
from labeltrail.events.models import CommentPosted, LabelCommitted, VoteCast
from labeltrail.kafka.admin import end_offset, ensure_topics, require_kafka
from labeltrail.kafka.keys import KafkaKeyStore, seal_comments
from labeltrail.kafka.producer import EventProducer, ProduceError
from labeltrail.kafka.runner import StageRunner
from labeltrail.kafka.security import KafkaAuthenticationError, KafkaAuthorizationError
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory
from tests.kafka import histories
from tests.kafka.runners import run_stage
from tests.kafka.secure_broker import Authority, Identity, free_ports
from tests.kafka_fixture import REPO_ROOT, load_local_kafka, load_ops_script
from tests.unavailable import unavailable

pytestmark = pytest.mark.integration

PASSWORDS = {"consensus": "consensus-secret", "frontend": "frontend-secret"}
ADMIN = ("admin", "admin-secret")


@dataclass(frozen=True)
class Cluster:
    """The secured broker: its two listeners, its CA, and identities made for the tests."""

    sasl: str
    tls: str
    authority: Authority
    identities: dict[str, Identity]

    def scram(self, user: str, password: str, prefix: str) -> Settings:
        """A client of the SASL_SSL listener as SCRAM user ``user``."""
        return self._client(
            self.sasl,
            prefix,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=user,
            sasl_password=password,
        )

    def mtls(self, identity: str, prefix: str) -> Settings:
        """A client of the mutual TLS listener with ``identity``'s certificate."""
        me = self.identities[identity]
        return self._client(
            self.tls, prefix, security_protocol="SSL", ssl_cert_file=me.cert, ssl_key_file=me.key
        )

    def _client(self, bootstrap: str, prefix: str, **section: Any) -> Settings:
        return Settings(
            kafka_bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            topic_partitions=3,
            kafka=KafkaSecuritySettings(ssl_ca_file=self.authority.file, **section),
        )


@pytest.fixture(scope="module")
def local_kafka() -> ModuleType:
    return load_local_kafka()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, local_kafka: ModuleType) -> Iterator[Cluster]:
    """A secured broker of this module's own (other ports and state dir than the shared one)."""
    root = tmp_path_factory.mktemp("secure-kafka")
    authority = Authority.create(root / "certs")
    broker = authority.issue("broker", server=True)
    identities = {
        "consensus": authority.issue("consensus"),
        "frontend": authority.issue("frontend"),
        "expired": authority.issue("consensus", expired=True),
    }
    sasl_port, tls_port, controller_port = free_ports(3)
    secured = local_kafka.Secured(
        ssl_port=tls_port,
        keystore=authority.keystore(broker),
        truststore=authority.file,
        admin=ADMIN,
        users=tuple(PASSWORDS.items()),
        lib_dir=local_kafka.default_state_dir() / "lib",
    )
    state = root / "state"
    try:
        local_kafka.fetch(local_kafka.default_state_dir(), quiet=True)
        local_kafka.start_broker(
            state, port=sasl_port, controller_port=controller_port, secure=secured, timeout=180
        )
    except local_kafka.LocalKafkaError as exc:
        unavailable(f"no secured local broker: {exc}")
    try:
        yield Cluster(f"127.0.0.1:{sasl_port}", f"127.0.0.1:{tls_port}", authority, identities)
    finally:
        local_kafka.stop_broker(state, quiet=True)


@pytest.fixture(scope="module")
def acls() -> ModuleType:
    return load_ops_script(REPO_ROOT / "ops" / "kafka" / "acls.py", "labeltrail_ops_acls")


@pytest.fixture
def prefix(cluster: Cluster, acls: ModuleType) -> str:
    """A fresh topic prefix with its topics created and every service's ACLs applied."""
    name = f"s{uuid.uuid4().hex[:8]}"
    admin = cluster.scram(*ADMIN, name)
    ensure_topics(admin)
    assert acls.apply(admin) == len(acls.bindings(name))
    return name


@pytest.fixture
def admin(cluster: Cluster, prefix: str) -> Settings:
    return cluster.scram(*ADMIN, prefix)


def _consensus_as(
    settings: Settings, admin: Settings, tmp: Path, runner: str = "confluent"
) -> None:
    """The consensus stage as ``settings``' principal over the history of tests/kafka/histories
    (produced by the admin), read to its end; its outputs are on the broker."""
    records = histories.inputs()
    histories.produce(admin, records)
    outcome = run_stage(
        runner, "tests.kafka.histories:make_consensus", settings, tmp, consumed=len(records)
    )
    assert outcome.code == 0, (outcome.error, outcome.log[-2000:])
    assert outcome.stats["consumed"] == len(records)
    assert end_offset(admin, "consensus") > 0
    assert end_offset(admin, "deadletter") > 0  # the history's bad records: dead letters


def test_a_stage_reads_and_writes_over_sasl_scram_as_its_own_principal(
    cluster: Cluster, prefix: str, admin: Settings, tmp_path: Path
) -> None:
    _consensus_as(cluster.scram("consensus", PASSWORDS["consensus"], prefix), admin, tmp_path)


def test_a_stage_reads_and_writes_over_mutual_tls_with_its_certificate(
    cluster: Cluster, prefix: str, admin: Settings, tmp_path: Path
) -> None:
    _consensus_as(cluster.mtls("consensus", prefix), admin, tmp_path)


def test_the_faust_runner_authenticates_from_the_same_settings(
    cluster: Cluster, prefix: str, admin: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """faust (aiokafka) gets the section as an SSL context: mutual TLS, as User:consensus."""
    settings = cluster.mtls("consensus", prefix)
    me = cluster.identities["consensus"]
    for name, value in {
        "SECURITY_PROTOCOL": "SSL",
        "SSL_CA_FILE": str(cluster.authority.file),
        "SSL_CERT_FILE": str(me.cert),
        "SSL_KEY_FILE": str(me.key),
    }.items():
        monkeypatch.setenv(f"LABELTRAIL_KAFKA_{name}", value)
    _consensus_as(settings, admin, tmp_path, runner="faust")


def test_a_wrong_password_is_refused_naming_the_user_and_the_cause(
    cluster: Cluster, prefix: str
) -> None:
    wrong = cluster.scram("consensus", "not-the-password", prefix)
    with pytest.raises(KafkaAuthenticationError) as refused:
        require_kafka(wrong)
    message = str(refused.value)
    assert "User:consensus" in message and "wrong password or unknown user" in message
    assert "not-the-password" not in message


def test_an_expired_certificate_is_refused_naming_its_expiry(cluster: Cluster, prefix: str) -> None:
    expired = cluster.mtls("expired", prefix)
    with pytest.raises(KafkaAuthenticationError) as refused:
        require_kafka(expired)
    message = str(refused.value)
    assert "User:consensus" in message
    assert re.search(r"client certificate .*consensus-expired\.pem .* expired on 20", message)


def test_a_client_without_a_certificate_is_told_the_broker_wants_one(
    cluster: Cluster, prefix: str
) -> None:
    settings = cluster.mtls("frontend", prefix)
    anonymous = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"ssl_cert_file": None, "ssl_key_file": None})
        }
    )
    with pytest.raises(KafkaAuthenticationError, match="requires a client certificate"):
        require_kafka(anonymous)


def test_the_frontend_writes_votes_but_is_refused_labels_and_nothing_is_written(
    cluster: Cluster, prefix: str, admin: Settings
) -> None:
    log = run_in_memory(Platform(PlatformConfig.sized(60))).log
    vote, label = log["votes"][0], log["labels"][0]
    assert isinstance(vote, VoteCast) and isinstance(label, LabelCommitted)
    frontend = EventProducer(cluster.scram("frontend", PASSWORDS["frontend"], prefix))
    frontend.send(vote)
    frontend.flush(30)  # its own kind of event: allowed
    frontend.send(label)
    try:
        with pytest.raises(ProduceError) as refused:
            frontend.flush(30)
    finally:
        frontend.close()
    message = str(refused.value)
    assert f"Kafka refused User:frontend to write to topic {prefix}.labels" in message
    assert "no ACL allows it" in message and "KafkaError{" not in message
    assert end_offset(admin, "votes") == 1
    assert end_offset(admin, "labels") == 0


def test_the_frontend_opens_sealed_text_but_cannot_destroy_its_key(
    cluster: Cluster, prefix: str, admin: Settings
) -> None:
    """A service that opens text reads the key topic (``opens_text``); only an operator writes
    it: the frontend's tombstone is refused and the key still opens the text."""
    log = run_in_memory(Platform(PlatformConfig.sized(60))).log
    comment = log["comments"][0]
    assert isinstance(comment, CommentPosted)
    (sealed,) = seal_comments(admin, [comment])  # as an operator (ingest): makes the key
    key_id = key_id_of(sealed.text)
    assert key_id is not None
    with closing(KafkaKeyStore(cluster.scram("frontend", PASSWORDS["frontend"], prefix))) as keys:
        assert reveal_event(sealed, keys).text == comment.text
        with pytest.raises(ProduceError, match="not acknowledged"):
            keys.destroy([key_id])
    with closing(KafkaKeyStore(admin)) as keys:
        assert reveal_event(sealed, keys).text == comment.text


def test_the_documented_acl_table_is_the_one_the_script_applies(acls: ModuleType) -> None:
    doc = (REPO_ROOT / "docs" / "security.md").read_text()
    assert acls.table("labeltrail") in doc


def test_a_rotated_password_replaces_the_old_one(
    cluster: Cluster, prefix: str, admin: Settings, acls: ModuleType
) -> None:
    """docs/security.md's rotation: ``acls.py password`` as the admin; the next connection
    with the old password is refused, the new one works."""
    user = f"rotated{uuid.uuid4().hex[:6]}"
    acls.set_password(admin, user, "first-secret")
    _connects(cluster.scram(user, "first-secret", prefix))
    acls.set_password(admin, user, "second-secret")
    _connects(cluster.scram(user, "second-secret", prefix))
    with pytest.raises(KafkaAuthenticationError, match="wrong password"):
        require_kafka(cluster.scram(user, "first-secret", prefix))


def _connects(settings: Settings, within: float = 20.0) -> None:
    """It authenticates, once the broker has applied the credential (a metadata record)."""
    deadline = time.monotonic() + within
    while True:
        try:
            require_kafka(settings, timeout=2)
            return
        except KafkaAuthenticationError:
            if time.monotonic() > deadline:
                raise


def test_a_stage_run_by_a_principal_without_read_on_an_input_stops_naming_it(
    cluster: Cluster, prefix: str, admin: Settings
) -> None:
    """The frontend's principal, in its own consumer group, may read votes and schemas but not
    the consensus stage's other inputs: the runner stops naming the topic, once, instead of
    logging librdkafka's error forever, and writes nothing."""
    histories.produce(admin, histories.inputs())
    as_frontend = cluster.scram("frontend", PASSWORDS["frontend"], prefix)
    runner = StageRunner(
        histories.make_consensus(as_frontend), as_frontend, group=f"{prefix}.annotate"
    )
    with pytest.raises(KafkaAuthorizationError) as refused:
        runner.run(threading.Event(), idle_seconds=0.5)
    message = str(refused.value)
    assert re.match(
        rf"Kafka refused User:frontend to read topic {prefix}\.(quality|tasks):", message
    )
    assert end_offset(admin, "consensus") == 0
