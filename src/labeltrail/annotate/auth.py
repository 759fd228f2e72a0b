"""Per-annotator tokens: only their hashes are stored, and every check is constant-time.

A token is a random secret (32 bytes, URL-safe base64). The frontend keeps
``annotator_id -> sha256(token)`` and checks a presented ``(annotator_id, token)`` pair by
hashing the token and comparing digests with :func:`hmac.compare_digest`; an unknown annotator
is compared against a dummy digest so that the answer takes the same time. The credential a
browser or API client presents is ``annotator_id:token`` (cookie ``lt_session`` or
``Authorization: Bearer``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from labeltrail.exceptions import ConfigurationError

__all__ = [
    "ANNOTATOR_ID_PATTERN",
    "TokenStore",
    "format_credential",
    "hash_token",
    "new_token",
    "parse_credential",
]

ANNOTATOR_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
"""Annotator ids the frontend accepts (the task topic key)."""

_HASH_PREFIX = "sha256:"
_DUMMY = hashlib.sha256(b"labeltrail-annotate-dummy").hexdigest()


def new_token() -> str:
    """A fresh random token (shown once to its annotator, never stored)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: ``sha256:<hex>``.

    A plain hash is enough because tokens are 256-bit random secrets, not passwords.
    """
    return _HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def format_credential(annotator_id: str, token: str) -> str:
    """The cookie or bearer value for an annotator."""
    return f"{annotator_id}:{token}"


def parse_credential(value: str) -> tuple[str, str] | None:
    """Split ``annotator_id:token``; None when malformed."""
    annotator, sep, token = value.strip().rpartition(":")
    if not sep or not token or not ANNOTATOR_ID_PATTERN.match(annotator):
        return None
    return annotator, token


class TokenStore:
    """``annotator_id -> token hash``, checked in constant time."""

    def __init__(self, hashes: dict[str, str]) -> None:
        for annotator, digest in hashes.items():
            if not ANNOTATOR_ID_PATTERN.match(annotator):
                raise ConfigurationError(f"invalid annotator id {annotator!r} in token list")
            if not digest.startswith(_HASH_PREFIX) or len(digest) != len(_HASH_PREFIX) + 64:
                raise ConfigurationError(f"token of {annotator!r} is not a sha256:<hex> hash")
        self._hashes = {a: d[len(_HASH_PREFIX) :] for a, d in hashes.items()}

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TokenStore:
        """From ``annotator_id sha256:<hex>`` entries (``=`` also separates; ``#`` comments)."""
        hashes: dict[str, str] = {}
        for raw in entries:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.replace("=", " ").split()
            if len(parts) != 2:
                raise ConfigurationError(f"token entry {line!r}: want 'annotator sha256:<hex>'")
            hashes[parts[0]] = parts[1]
        return cls(hashes)

    @classmethod
    def load(cls, path: str | None, inline: str = "") -> TokenStore:
        """From a file of entries and/or a comma-separated inline list."""
        entries: list[str] = inline.split(",") if inline else []
        if path:
            try:
                entries += Path(path).read_text().splitlines()
            except OSError as exc:
                raise ConfigurationError(f"cannot read tokens file {path}: {exc}") from exc
        return cls.parse(entries)

    def __len__(self) -> int:
        return len(self._hashes)

    def check(self, annotator_id: str, token: str) -> bool:
        """True when the token is the annotator's; same work whether or not they exist."""
        expected = self._hashes.get(annotator_id, _DUMMY)
        given = hashlib.sha256(token.encode()).hexdigest()
        return hmac.compare_digest(expected, given) and annotator_id in self._hashes

    def check_credential(self, value: str | None) -> str | None:
        """The annotator id a credential proves, or None."""
        if not value:
            return None
        parsed = parse_credential(value)
        if parsed is None:
            return None
        return parsed[0] if self.check(*parsed) else None
