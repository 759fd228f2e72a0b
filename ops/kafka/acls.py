#!/usr/bin/env python3
"""labeltrail's least-privilege ACLs on a secured Kafka cluster, derived from the code.

One principal per service, ``User:<service>`` (its SASL user, or its certificate's CN):

- each stage of :data:`labeltrail.stages.STAGES` reads its fold's inputs, writes its declared
  outputs and the dead-letter topic, and uses the consumer groups ``<prefix>.<stage>*``;
- a service that opens sealed comment text (a stage with ``Stage.opens_text``, the frontend:
  :data:`FRONTEND_OPENS_TEXT`) also reads the key topic ``<prefix>.keys`` (docs/erasure.md);
  its key store assigns partitions and commits nothing, so it needs no group of its own;
- the projector reads every topic of the prefix and writes dead letters (group
  ``<prefix>.projector``);
- the annotation frontend (``User:frontend``) reads its feed's topics
  (:data:`labeltrail.annotate.feed.FEED_TOPICS`: its task topics, the schemas, votes and
  adjudications it shows) and writes votes and adjudications only: it cannot write labels;
- every principal may DESCRIBE the prefix's topics, so a service checks that they exist
  without trying to create them.

Operators (``labeltrail topics create``, ``schema publish``, ``gold publish``, ``ingest``,
``import votes``, ``model publish``, ``erase``, the demo) run as a super user of the cluster: the
commands that seal comments create the key topic and write keys, ``erase`` writes
``<prefix>.erasures`` and the keys' tombstones. docs/security.md shows the table (``table``) and
how to rotate.

Usage (connects with the ``LABELTRAIL_KAFKA_*`` settings of a super user)::

    python ops/kafka/acls.py table [--prefix labeltrail]   # the Markdown table
    python ops/kafka/acls.py apply [--prefix labeltrail]   # create the ACLs (idempotent)
    python ops/kafka/acls.py password USER                 # set USER's SCRAM-SHA-512
                                                           # password (read from stdin)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from labeltrail.annotate.feed import FEED_TOPICS
from labeltrail.config import Settings
from labeltrail.events.topics import TOPICS, topic_for, topic_name
from labeltrail.exceptions import LabeltrailError
from labeltrail.kafka.admin import admin_client
from labeltrail.kafka.keys import KEY_TOPIC
from labeltrail.kafka.security import refusal
from labeltrail.stages import STAGES

DEADLETTER = "deadletter"
FRONTEND_EVENTS = ("VoteCast", "AdjudicationRecorded")
"""What the annotation frontend publishes (``annotate.views``): the topics it may write."""
FRONTEND_OPENS_TEXT = True
"""The frontend opens a task's sealed text and context when it shows it (``annotate.server``
builds it with the key store), so it reads the key topic."""
EVERY_TOPIC = "*"
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True)
class Grant:
    """One service's rights: topic suffixes it reads and writes, its consumer groups."""

    service: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    group: str
    """Its consumer groups: every group id that starts with ``<prefix>.<group>``."""
    opens_text: bool = False
    """It opens sealed comment text: it reads the key topic too (:meth:`reading`)."""

    @property
    def principal(self) -> str:
        return f"User:{self.service}"

    @property
    def reading(self) -> tuple[str, ...]:
        """The topics it reads: ``reads``, and the key topic if it opens text (unless it reads
        every topic anyway)."""
        if not self.opens_text or EVERY_TOPIC in self.reads or KEY_TOPIC in self.reads:
            return self.reads
        return (*self.reads, KEY_TOPIC)


def _suffix(event_type: str) -> str:
    return topic_for(event_type, "_").removeprefix("_.")


def grants() -> list[Grant]:
    """Every service's grant, from the stage registry, the frontend's feed and the topics."""
    out = [
        Grant(name, stage.reads, (*stage.writes, DEADLETTER), name, stage.opens_text)
        for name, stage in STAGES.items()
    ]
    # the projector opens text too (docs/erasure.md); reading every topic, it reads the keys
    out.append(Grant("projector", (EVERY_TOPIC,), (DEADLETTER,), "projector", True))
    frontend_writes = tuple(dict.fromkeys(_suffix(e) for e in FRONTEND_EVENTS))
    out.append(Grant("frontend", FEED_TOPICS, frontend_writes, "annotate", FRONTEND_OPENS_TEXT))
    known = {spec.suffix for spec in TOPICS} | {EVERY_TOPIC, KEY_TOPIC}
    for grant in out:
        unknown = set(grant.reading + grant.writes) - known
        if unknown:
            raise LabeltrailError(f"{grant.service}: no such topics {sorted(unknown)}")
    return out


def bindings(prefix: str) -> list[AclBinding]:
    """The ACL bindings of every grant on the topics of ``prefix``."""
    allow = AclPermissionType.ALLOW
    out = []

    def add(kind: ResourceType, name: str, pattern: ResourcePatternType, who: str, op: Any) -> None:
        out.append(AclBinding(kind, name, pattern, who, "*", op, allow))

    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    for grant in grants():
        who = grant.principal
        add(topic, f"{prefix}.", prefixed, who, AclOperation.DESCRIBE)
        for suffix in grant.reading:
            if suffix == EVERY_TOPIC:
                add(topic, f"{prefix}.", prefixed, who, AclOperation.READ)
            else:
                add(topic, topic_name(prefix, suffix), literal, who, AclOperation.READ)
        for suffix in grant.writes:
            add(topic, topic_name(prefix, suffix), literal, who, AclOperation.WRITE)
        add(group, f"{prefix}.{grant.group}", prefixed, who, AclOperation.READ)
    return out


def table(prefix: str = "labeltrail") -> str:
    """The grants as the Markdown table of docs/security.md."""

    def topics(suffixes: tuple[str, ...]) -> str:
        return ", ".join(f"every `{prefix}.*`" if s == EVERY_TOPIC else f"`{s}`" for s in suffixes)

    lines = [
        "| principal | reads (READ) | writes (WRITE) | consumer groups (READ) |",
        "|---|---|---|---|",
    ]
    for grant in grants():
        lines.append(
            f"| `{grant.principal}` | {topics(grant.reading)} | {topics(grant.writes)} "
            f"| `{prefix}.{grant.group}*` |"
        )
    return "\n".join(lines) + "\n"


def apply(settings: Settings, prefix: str | None = None, *, timeout: float = 30.0) -> int:
    """Create every binding (creating one that exists changes nothing); returns how many."""
    wanted = bindings(prefix or settings.topic_prefix)
    admin = admin_client(settings)
    for binding, future in admin.create_acls(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            refused = refusal(settings, exc.args[0], doing="alter", resource="ACLs")
            raise (refused or LabeltrailError(f"cannot create {binding}: {exc}")) from exc
    _await(admin, wanted, timeout)
    return len(wanted)


def _await(admin: Any, wanted: list[AclBinding], timeout: float) -> None:
    """Until the broker's authorizer has them: the controller commits ACLs first, brokers
    apply them from the metadata log a moment later."""
    anything: Any = None  # a filter's None matches every name, principal and host
    every = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    deadline = time.monotonic() + timeout
    while True:
        have = set(admin.describe_acls(every, request_timeout=timeout).result(timeout=timeout))
        missing = [b for b in wanted if b not in have]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise LabeltrailError(f"{len(missing)} ACLs not in force after {timeout:g} s")
        time.sleep(0.2)


def set_password(settings: Settings, user: str, password: str, *, timeout: float = 30.0) -> None:
    """Create or replace ``user``'s SCRAM-SHA-512 credential (a password rotation)."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    change = UserScramCredentialUpsertion(user, info, password.encode())
    admin = admin_client(settings)
    for name, future in admin.alter_user_scram_credentials([change]).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            refused = refusal(settings, exc.args[0], doing="alter", resource="credentials")
            raise (refused or LabeltrailError(f"cannot set {name}'s password: {exc}")) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, doc in (("table", "print the ACL table"), ("apply", "create the ACLs")):
        cmd = sub.add_parser(name, help=doc)
        cmd.add_argument("--prefix", default=None, help="topic prefix (LABELTRAIL_TOPIC_PREFIX)")
    password = sub.add_parser("password", help="set a user's SCRAM password (from stdin)")
    password.add_argument("user")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        if args.command == "table":
            print(table(args.prefix or settings.topic_prefix), end="")
        elif args.command == "apply":
            count = apply(settings, args.prefix)
            print(f"{count} ACLs in place for prefix {args.prefix or settings.topic_prefix}")
        else:
            secret = sys.stdin.readline().rstrip("\n")
            if not secret:
                raise LabeltrailError("no password on stdin")
            set_password(settings, args.user, secret)
            print(f"SCRAM-SHA-512 password of {args.user} set")
    except LabeltrailError as exc:
        print(f"acls: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
