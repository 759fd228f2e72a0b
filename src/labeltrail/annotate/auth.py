"""Per-annotator tokens: hashes only, constant-time checks, expiry, and revocation by file.

A token is a random secret (32 bytes, URL-safe base64). The frontend keeps
``annotator_id -> sha256(token)`` and checks a presented ``(annotator_id, token)`` pair by
hashing the token and comparing digests with :func:`hmac.compare_digest`; an unknown annotator
is compared against a dummy digest so that the answer takes the same time. API clients present
``annotator_id:token`` as ``Authorization: Bearer``; browsers present it once, to sign in, and
then carry a server-side session (:mod:`labeltrail.annotate.sessions`).

Tokens expire ``max_age`` seconds after the issue time their entry carries (``labeltrail
annotate token`` writes it); an entry without one expires ``max_age`` after this process first
read it. The tokens file is read again whenever it changes (mtime, size or inode), so removing
a line revokes that token at the next request, without a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from labeltrail.exceptions import ConfigurationError, LabeltrailError

__all__ = [
    "ANNOTATOR_ID_PATTERN",
    "TokenStore",
    "UndecodableCredential",
    "format_credential",
    "hash_token",
    "new_token",
    "parse_credential",
    "require_text",
    "token_digest",
]

log = logging.getLogger(__name__)

ANNOTATOR_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
"""Annotator ids the frontend accepts (the task topic key)."""

_HASH_PREFIX = "sha256:"
_DUMMY = hashlib.sha256(b"labeltrail-annotate-dummy").hexdigest()
_RACY_S = 2.0
"""A file modified this recently may change again within its timestamp's granularity."""


class UndecodableCredential(LabeltrailError):
    """A credential (header, cookie or form field) whose bytes are not UTF-8 text."""


def require_text(value: str, where: str) -> str:
    """``value`` if it is valid text; aiohttp keeps undecodable bytes as lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UndecodableCredential(f"{where} is not UTF-8 text") from exc
    return value


def new_token() -> str:
    """A fresh random token (shown once to its annotator, never stored)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token; raises :class:`UndecodableCredential` for non-text."""
    return hashlib.sha256(require_text(token, "token").encode()).hexdigest()


def hash_token(token: str) -> str:
    """The stored form of a token: ``sha256:<hex>``.

    A plain hash is enough because tokens are 256-bit random secrets, not passwords.
    """
    return _HASH_PREFIX + token_digest(token)


def format_credential(annotator_id: str, token: str) -> str:
    """The bearer value for an annotator."""
    return f"{annotator_id}:{token}"


def parse_credential(value: str) -> tuple[str, str] | None:
    """Split ``annotator_id:token``; None when malformed."""
    annotator, sep, token = value.strip().rpartition(":")
    if not sep or not token or not ANNOTATOR_ID_PATTERN.match(annotator):
        return None
    return annotator, token


@dataclass(frozen=True)
class _Entry:
    digest: str
    issued: float | None  # epoch seconds; None: the entry carries no issue time


def _issued(raw: str, annotator: str) -> float:
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ConfigurationError(
            f"token of {annotator!r}: issue time {raw[:40]!r} is not ISO 8601"
        ) from exc
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _parse(entries: Iterable[str]) -> dict[str, _Entry]:
    """``annotator_id sha256:<hex> [issued ISO-8601]`` lines (``=`` also separates)."""
    parsed: dict[str, _Entry] = {}
    for raw in entries:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace("=", " ").split()
        if len(parts) not in (2, 3):
            raise ConfigurationError(
                f"token entry {line[:80]!r}: want 'annotator sha256:<hex> [issued-at]'"
            )
        annotator, digest = parts[0], parts[1]
        if not ANNOTATOR_ID_PATTERN.match(annotator):
            raise ConfigurationError(f"invalid annotator id {annotator!r} in token list")
        if not digest.startswith(_HASH_PREFIX) or len(digest) != len(_HASH_PREFIX) + 64:
            raise ConfigurationError(f"token of {annotator!r} is not a sha256:<hex> hash")
        issued = _issued(parts[2], annotator) if len(parts) == 3 else None
        parsed[annotator] = _Entry(digest[len(_HASH_PREFIX) :], issued)
    return parsed


class TokenStore:
    """``annotator_id -> token hash``, checked in constant time, re-read when its file changes.

    ``max_age`` (seconds) retires tokens that old; None keeps them until they are removed.
    ``clock`` is wall-clock time (issue times are dates).
    """

    def __init__(
        self,
        hashes: Mapping[str, str] | None = None,
        *,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._stamp: object = None
        self._text: str | None = None
        self._racy = False
        self._file: dict[str, _Entry] = {}
        self._first_seen: dict[tuple[str, str], float] = {}
        self._entries: dict[str, _Entry] = {}
        self._set_static(_parse(f"{a} {d}" for a, d in (hashes or {}).items()))

    @classmethod
    def parse(cls, entries: Iterable[str], *, max_age: float | None = None) -> TokenStore:
        """From ``annotator_id sha256:<hex> [issued]`` entries (``=`` also separates)."""
        store = cls(max_age=max_age)
        store._set_static(_parse(entries))
        return store

    @classmethod
    def load(
        cls,
        path: str | None,
        inline: str = "",
        *,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> TokenStore:
        """From a (watched) file of entries and/or a comma-separated inline list.

        The file must be readable and valid now; later a broken file turns its tokens off
        (fail closed, logged) until it is fixed.
        """
        store = cls(max_age=max_age, clock=clock)
        store._set_static(_parse(inline.split(",") if inline else []))
        if path:
            store._path = Path(path)
            try:
                store._read_file(store._path, strict=True)
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"cannot read tokens file {path}: {exc}") from exc
        return store

    def _set_static(self, entries: dict[str, _Entry]) -> None:
        self._static = entries
        self._merge()

    def _merge(self) -> None:
        self._entries = {**self._static, **self._file}
        now = self._clock()
        for annotator, entry in self._entries.items():
            if entry.issued is None:
                self._first_seen.setdefault((annotator, entry.digest), now)

    def _read_file(self, path: Path, *, strict: bool) -> None:
        try:
            stat = path.stat()
            stamp: object = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError as exc:
            if strict:
                raise
            stamp = f"unreadable: {exc}"
        if stamp == self._stamp and not self._racy:
            return
        self._stamp = stamp
        try:
            text = path.read_text()
            self._racy = time.time() - path.stat().st_mtime < _RACY_S
            if text == self._text:
                return
            self._file, self._text = _parse(text.splitlines()), text
            log.info("tokens file %s read: %d entries", path, len(self._file))
        except (OSError, UnicodeDecodeError, ConfigurationError) as exc:
            if strict:
                raise
            self._file, self._text, self._racy = {}, None, False
            log.error("tokens file %s refused, its tokens are off until fixed: %s", path, exc)
        self._merge()

    def _current(self) -> dict[str, _Entry]:
        with self._lock:
            if self._path is not None:
                self._read_file(self._path, strict=False)
            return self._entries

    def __len__(self) -> int:
        return len(self._current())

    def _expired(self, annotator: str, entry: _Entry) -> bool:
        if self._max_age is None:
            return False
        issued = entry.issued
        if issued is None:
            issued = self._first_seen.get((annotator, entry.digest), self._clock())
        return self._clock() - issued > self._max_age

    def check_digest(self, annotator_id: str, digest: str) -> bool:
        """True when ``digest`` is the annotator's current, unexpired token hash."""
        entry = self._current().get(annotator_id)
        expected = entry.digest if entry is not None else _DUMMY
        same = hmac.compare_digest(expected, digest)
        return same and entry is not None and not self._expired(annotator_id, entry)

    def check(self, annotator_id: str, token: str) -> bool:
        """True when the token is the annotator's; same work whether or not they exist."""
        return self.check_digest(annotator_id, token_digest(token))

    def check_credential(self, value: str | None) -> str | None:
        """The annotator id an ``annotator_id:token`` credential proves, or None."""
        if not value:
            return None
        parsed = parse_credential(require_text(value, "credential"))
        if parsed is None:
            return None
        return parsed[0] if self.check(*parsed) else None
