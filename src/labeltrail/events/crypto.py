"""Crypto-shredding of comment text: seal a field under its comment's data key, reveal it again.

A sealed field is an opaque string, ``lt-sealed:1:<key id>:<base64url(nonce | ciphertext |
tag)>``, AES-256-GCM under the data key of one comment (the key id names it; the key itself
lives on the compacted key topic, :mod:`labeltrail.kafka.keys`). Erasing a comment destroys its
key: every copy of the sealed string, on every topic, then reads as :data:`ERASED`.

The nonce is derived, not random (HMAC-SHA256 of the key over the field name and plaintext, its
first 12 bytes): sealing the same field of the same comment again gives the same bytes, so a
re-run ingest writes the records it wrote before. A nonce repeats only for an identical
plaintext under the same key, which gives the identical ciphertext and nothing more.

Pure: the key ring is any object with ``key(key_id) -> bytes | None`` (:class:`Keyring`);
``cryptography`` is a library, not a client. ``docs/erasure.md`` has the whole design.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from labeltrail.events.base import Event
from labeltrail.events.ids import derive_id
from labeltrail.events.models import CommentPosted, TaskAssigned

__all__ = [
    "ERASED",
    "SEALED_FIELDS",
    "SEALED_PREFIX",
    "ForgettingKeyring",
    "Keyring",
    "erased",
    "is_sealed",
    "key_id_for",
    "key_id_of",
    "new_data_key",
    "reveal",
    "reveal_event",
    "seal",
    "seal_comment",
]

SEALED_PREFIX = "lt-sealed:1:"
"""How a sealed field starts (version 1: AES-256-GCM, derived nonce, the key id as AAD)."""

ERASED = "[erased]"
"""What a sealed field reads as once its key is destroyed (or was never found)."""

SEALED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "CommentPosted": ("text", "author_hash"),
    "TaskAssigned": ("text", "context"),
}
"""The fields that carry a comment's text or its author, per event type: sealed in
CommentPosted, copied sealed (by tasking) into TaskAssigned's text and thread context."""

_NONCE = 12
E = TypeVar("E", bound=Event)


class Keyring(Protocol):
    """Where data keys are found: None for a key that is erased (or unknown)."""

    def key(self, key_id: str) -> bytes | None: ...


class ForgettingKeyring(Keyring, Protocol):
    """A key ring told of an erasure read from the log, before it sees the keys' tombstones."""

    def forget(self, key_ids: Iterable[str]) -> None: ...


def new_data_key() -> bytes:
    """A fresh random AES-256 key."""
    return AESGCM.generate_key(bit_length=256)


def key_id_for(comment_id: str) -> str:
    """The id of a comment's data key (one key per comment, so one comment can be erased)."""
    return derive_id("CommentKey", comment_id)


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


def key_id_of(value: str) -> str | None:
    """The key id a sealed value names (None for a plain one)."""
    if not is_sealed(value):
        return None
    return value[len(SEALED_PREFIX) :].split(":", 1)[0]


def seal(plaintext: str, key_id: str, key: bytes, *, field: str) -> str:
    """``plaintext`` sealed under ``key``; the same arguments always give the same string."""
    data = plaintext.encode()
    nonce = hmac.new(key, field.encode() + b"\x1f" + data, hashlib.sha256).digest()[:_NONCE]
    body = nonce + AESGCM(key).encrypt(nonce, data, key_id.encode())
    return f"{SEALED_PREFIX}{key_id}:{base64.urlsafe_b64encode(body).decode()}"


def reveal(value: str, keyring: Keyring) -> str:
    """The plaintext of a sealed value, :data:`ERASED` when its key is gone (or the value does
    not open under the key found: a key made again after an erasure); a plain value as is."""
    if not is_sealed(value):
        return value
    key_id, _, encoded = value[len(SEALED_PREFIX) :].partition(":")
    key = keyring.key(key_id)
    if key is None:
        return ERASED
    try:
        body = base64.urlsafe_b64decode(encoded)
        plain = AESGCM(key).decrypt(body[:_NONCE], body[_NONCE:], key_id.encode())
    except (InvalidTag, ValueError):
        return ERASED
    return plain.decode()


def seal_comment(event: CommentPosted, key_id: str, key: bytes) -> CommentPosted:
    """The comment with its text and author sealed (its id, derived from the plaintext, kept)."""
    update = {
        name: value if is_sealed(value) else seal(value, key_id, key, field=name)
        for name in SEALED_FIELDS["CommentPosted"]
        for value in (getattr(event, name),)
    }
    return event.model_copy(update=update)


def _fields(event: Event) -> tuple[str, ...]:
    return SEALED_FIELDS.get(type(event).__name__, ())


def reveal_event(event: E, keyring: Keyring) -> E:
    """``event`` with every sealed field revealed (itself when it has none)."""
    update: dict[str, object] = {}
    for name in _fields(event):
        value = getattr(event, name)
        if isinstance(value, str):
            if is_sealed(value):
                update[name] = reveal(value, keyring)
        elif any(is_sealed(v) for v in value):
            update[name] = [reveal(v, keyring) for v in value]
    return event.model_copy(update=update) if update else event


def erased(event: E, comment_ids: Iterable[str], texts: Iterable[str]) -> E:
    """``event`` as it reads once ``comment_ids`` are erased: their comment's text and author
    (and a task's own text) :data:`ERASED`, and any thread context equal to one of ``texts``
    (their plaintexts) too. Itself when nothing changes."""
    ids, gone = set(comment_ids), set(texts)
    update: dict[str, object] = {}
    if isinstance(event, CommentPosted) and event.comment_id in ids:
        update = {"text": ERASED, "author_hash": ERASED}
    elif isinstance(event, TaskAssigned):
        if event.comment_id in ids:
            update["text"] = ERASED
        if gone.intersection(event.context):
            update["context"] = [ERASED if c in gone else c for c in event.context]
    changed = {k: v for k, v in update.items() if getattr(event, k) != v}
    return event.model_copy(update=changed) if changed else event
