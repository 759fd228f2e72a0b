"""The data keys of sealed comments, on a compacted Kafka topic: ``<prefix>.keys``.

One record per comment's data key, keyed by its key id (:func:`~labeltrail.events.crypto.
key_id_for`), valued ``{"comment_id", "author_tag", "key"}`` (JSON, the key base64; the
author's tag is an HMAC of the author id under the key itself, so the topic never names an
author and :meth:`KafkaKeyStore.keys_of_author` still finds their keys); destroying a key is a
tombstone (a null value). The topic is compacted with a bounded lag
(:data:`KEY_TOPIC_CONFIG`), so the log cleaner removes a destroyed key's record within hours;
until then it is on the brokers' disks (``docs/erasure.md``, "What it does not do").

:class:`KafkaKeyStore` is the :class:`~labeltrail.events.crypto.Keyring` of every process that
reads or writes comment text: it reads the topic to its end, keeps the keys in memory, reads
on whenever a key is not known (a key is always on the topic before the comment it seals) and
at most every ``max_age`` seconds otherwise, so a key destroyed elsewhere stops opening text
here within that time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from labeltrail.config import Settings
from labeltrail.events.base import Event
from labeltrail.events.crypto import key_id_for, new_data_key, seal_comment
from labeltrail.events.ids import derive_id
from labeltrail.events.models import CommentPosted, CommentsErased
from labeltrail.events.topics import topic_name
from labeltrail.exceptions import ConfigurationError, LabeltrailError
from labeltrail.kafka.consumer import high_watermark, make_consumer
from labeltrail.kafka.producer import EventProducer, ProduceError, producer_config

__all__ = [
    "KEY_TOPIC",
    "KEY_TOPIC_CONFIG",
    "DataKey",
    "KafkaKeyStore",
    "NothingToEraseError",
    "erase",
    "key_topic",
    "seal_comments",
]

KEY_TOPIC = "keys"
"""The key topic's suffix: ``<prefix>.keys``."""

_HOUR_MS = str(60 * 60 * 1000)

KEY_TOPIC_CONFIG: dict[str, str] = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.01",
    "segment.ms": _HOUR_MS,
    "max.compaction.lag.ms": _HOUR_MS,
    "delete.retention.ms": str(24 * 60 * 60 * 1000),
}
"""Compacted, a segment rolled and cleaned at least hourly: a destroyed key's record leaves
the brokers within about two hours; its tombstone is kept a day (for readers catching up)."""


def key_topic(settings: Settings) -> str:
    return topic_name(settings.topic_prefix, KEY_TOPIC)


def _author_tag(key: bytes, author: str) -> str:
    return hmac.new(key, b"author\x1f" + author.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DataKey:
    """One comment's data key, and a tag of its author (:func:`_author_tag`)."""

    key_id: str
    comment_id: str
    author_tag: str
    key: bytes

    @classmethod
    def made(cls, comment: CommentPosted) -> DataKey:
        key = new_data_key()
        key_id = key_id_for(comment.comment_id)
        return cls(key_id, comment.comment_id, _author_tag(key, comment.author_hash), key)

    def of(self, author: str) -> bool:
        return hmac.compare_digest(self.author_tag, _author_tag(self.key, author))

    def record(self) -> bytes:
        body = {
            "comment_id": self.comment_id,
            "author_tag": self.author_tag,
            "key": base64.b64encode(self.key).decode(),
        }
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_record(cls, key_id: str, value: bytes) -> DataKey:
        body = json.loads(value)
        return cls(key_id, body["comment_id"], body["author_tag"], base64.b64decode(body["key"]))


class KafkaKeyStore:
    """The key topic, read into memory: a :class:`~labeltrail.events.crypto.Keyring`, and
    where keys are made (:meth:`seal`) and destroyed (:meth:`destroy`)."""

    def __init__(self, settings: Settings, *, max_age: float = 5.0) -> None:
        self.settings = settings
        self.topic = key_topic(settings)
        self.max_age = max_age
        self._keys: dict[str, DataKey] = {}
        self._destroyed: set[str] = set()
        self._missing: set[str] = set()
        self._read_to: dict[int, int] = {}
        self._refreshed = float("-inf")
        self._lock = threading.RLock()
        self._consumer: Any = None
        self._producer: Producer | None = None

    # reading ---------------------------------------------------------------------------

    def key(self, key_id: str) -> bytes | None:
        """The key, or None when it is destroyed or not on the topic."""
        with self._lock:
            stale = time.monotonic() - self._refreshed > self.max_age
            known = key_id in self._keys or key_id in self._destroyed or key_id in self._missing
            if stale or not known:
                self.refresh()
            found = self._keys.get(key_id)
            if found is None:
                if key_id not in self._destroyed:
                    self._missing.add(key_id)
                return None
            return found.key

    def refresh(self) -> None:
        """Read the key topic to its current end."""
        with self._lock:
            self._refreshed = time.monotonic()
            consumer = self._assigned()
            if consumer is None:
                return
            ends = {
                p: high_watermark(consumer, TopicPartition(self.topic, p)) for p in self._read_to
            }
            open_parts = {p for p, end in ends.items() if self._read_to[p] < end}
            deadline = time.monotonic() + 60
            while open_parts:
                if time.monotonic() > deadline:
                    raise LabeltrailError(f"{self.topic} not readable to its end: {open_parts}")
                messages = consumer.consume(1000, timeout=0.5)
                if not messages:
                    positions = consumer.position(
                        [TopicPartition(self.topic, p) for p in open_parts]
                    )
                    for tp in positions:
                        if tp.offset >= ends[tp.partition]:
                            open_parts.discard(tp.partition)
                    continue
                for msg in messages:
                    if msg.error() is not None:
                        continue
                    partition, offset = msg.partition() or 0, msg.offset() or 0
                    self._read_to[partition] = offset + 1
                    if offset + 1 >= ends[partition]:
                        open_parts.discard(partition)
                    self._apply((msg.key() or b"").decode(), msg.value())

    def _apply(self, key_id: str, value: bytes | None) -> None:
        self._missing.discard(key_id)
        if value is None:
            self._keys.pop(key_id, None)
            self._destroyed.add(key_id)
            return
        try:
            self._keys[key_id] = DataKey.from_record(key_id, value)
        except (ValueError, KeyError, TypeError):
            return  # not a key record: nothing it could open
        self._destroyed.discard(key_id)

    def _assigned(self) -> Any:
        if self._consumer is None:
            self._consumer = make_consumer(self.settings, f"{self.settings.topic_prefix}.keyring")
        if not self._read_to:
            meta = self._consumer.list_topics(self.topic, timeout=30)
            topic = meta.topics.get(self.topic)
            if topic is None or topic.error is not None or not topic.partitions:
                return None
            self._read_to = dict.fromkeys(sorted(topic.partitions), 0)
            self._consumer.assign([TopicPartition(self.topic, p, 0) for p in self._read_to])
        return self._consumer

    def keys_of_author(self, author: str) -> list[DataKey]:
        """Every live key of ``author``'s comments (read to the topic's end first)."""
        self.refresh()
        return sorted((k for k in self._keys.values() if k.of(author)), key=_by_comment)

    def key_of_comment(self, comment_id: str) -> DataKey | None:
        """The live key of one comment (read to the topic's end first)."""
        self.refresh()
        return self._keys.get(key_id_for(comment_id))

    def forget(self, key_ids: Iterable[str]) -> None:
        """Drop keys from memory now (an erasure read from the log: do not wait to see the
        tombstones)."""
        with self._lock:
            for key_id in key_ids:
                self._keys.pop(key_id, None)
                self._missing.discard(key_id)
                self._destroyed.add(key_id)

    # writing ---------------------------------------------------------------------------

    def ensure_topic(self, *, timeout: float = 30.0) -> None:
        """Create the key topic if it is missing."""
        admin = AdminClient(self.settings.kafka_config())
        if self.topic in admin.list_topics(timeout=timeout).topics:
            return
        new = NewTopic(
            self.topic,
            num_partitions=self.settings.topic_partitions,
            replication_factor=self.settings.topic_replication,
            config=KEY_TOPIC_CONFIG,
        )
        try:
            admin.create_topics([new], operation_timeout=timeout)[self.topic].result()
        except KafkaException as exc:
            if not (exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS"):
                raise LabeltrailError(f"cannot create topic {self.topic}: {exc}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            meta = admin.list_topics(self.topic, timeout=timeout).topics.get(self.topic)
            if (
                meta is not None
                and meta.partitions
                and all(p.leader >= 0 for p in meta.partitions.values())
            ):
                return
            time.sleep(0.1)

    def seal(self, events: Sequence[Event]) -> list[Event]:
        """``events`` with every comment sealed under its own key; the keys of comments that
        have none yet are made and acknowledged on the key topic before this returns, so no
        reader can see a comment before its key."""
        comments = [e for e in events if isinstance(e, CommentPosted)]
        if not comments:
            return list(events)
        self.ensure_topic()
        self.refresh()
        made: list[DataKey] = []
        keys: dict[str, DataKey] = {}
        for comment in comments:
            key_id = key_id_for(comment.comment_id)
            data_key = self._keys.get(key_id) or keys.get(key_id)
            if data_key is None:
                data_key = DataKey.made(comment)
                made.append(data_key)
            keys[key_id] = data_key
        self._produce((k.key_id, k.record()) for k in made)
        with self._lock:
            for data_key in made:
                self._keys[data_key.key_id] = data_key
                self._destroyed.discard(data_key.key_id)
        return [
            seal_comment(e, key_id_for(e.comment_id), keys[key_id_for(e.comment_id)].key)
            if isinstance(e, CommentPosted)
            else e
            for e in events
        ]

    def destroy(self, key_ids: Sequence[str]) -> None:
        """Tombstone ``key_ids`` on the key topic (acknowledged before this returns)."""
        self._produce((key_id, None) for key_id in key_ids)
        self.forget(key_ids)

    def _produce(self, records: Iterable[tuple[str, bytes | None]]) -> None:
        if self._producer is None:
            self._producer = Producer(producer_config(self.settings))
        errors: list[str] = []

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(f"{msg.topic()}: {err}")

        for key_id, value in records:
            while True:
                try:
                    self._producer.produce(
                        self.topic, key=key_id.encode(), value=value, on_delivery=delivered
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
        remaining = self._producer.flush(60)
        if remaining or errors:
            raise ProduceError(
                f"key records not acknowledged on {self.topic}: "
                + (errors[0] if errors else f"{remaining} pending")
            )

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None


def _by_comment(key: DataKey) -> str:
    return key.comment_id


def seal_comments(settings: Settings, events: Sequence[Event]) -> list[Event]:
    """``events`` sealed for production when erasure is on (``settings.erasure.enabled``),
    as they are otherwise."""
    if not settings.erasure.enabled:
        return list(events)
    store = KafkaKeyStore(settings)
    try:
        return store.seal(events)
    finally:
        store.close()


class NothingToEraseError(LabeltrailError):
    """An erasure named an author or comment with no live key: unknown, or erased already."""


def erase(
    settings: Settings,
    *,
    author: str | None = None,
    comment: str | None = None,
    actor: str,
    reason: str = "",
) -> CommentsErased:
    """Destroy the data keys of an author's comments (or of one comment) and record the
    erasure: the ``CommentsErased`` first, acknowledged, then the keys' tombstones. Nothing is
    written when nothing matches (:class:`NothingToEraseError`). Run again after a failure in
    between, it writes the same erasure (same ids) and finishes the tombstones."""
    if (author is None) == (comment is None):
        raise ConfigurationError("name either an author or a comment to erase")
    store = KafkaKeyStore(settings)
    try:
        if author is not None:
            keys, subject, named = store.keys_of_author(author), "author", f"author {author!r}"
        else:
            found = store.key_of_comment(str(comment))
            keys, subject, named = [found] if found else [], "comment", f"comment {comment!r}"
        if not keys:
            raise NothingToEraseError(
                f"no sealed comment of {named} on {store.topic}: unknown, posted before "
                "erasure was on, or erased already; nothing written"
            )
        key_ids = sorted(k.key_id for k in keys)
        erasure_id = derive_id("Erasure", subject, key_ids)
        event = CommentsErased.create(
            producer="erase",
            id_parts=("erase", erasure_id),
            erasure_id=erasure_id,
            subject=subject,
            comment_ids=sorted(k.comment_id for k in keys),
            key_ids=key_ids,
            actor=actor,
            reason=reason,
        )
        producer = EventProducer(settings)
        producer.send(event)
        producer.flush()
        store.destroy(key_ids)
        return event
    finally:
        store.close()
