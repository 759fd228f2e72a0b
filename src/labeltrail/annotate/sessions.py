"""Server-side sign-in sessions: the cookie holds only a random session id.

Signing in with an annotator's token creates a session (``secrets.token_urlsafe(32)``) bound to
that annotator and to the hash of the token it was made with. The server keeps only the
SHA-256 of the id, so its memory holds no usable cookie. A session ends when the annotator
signs out (the entry is deleted, so the old cookie stops working), after ``max_age`` seconds,
after ``idle`` seconds without a request, or as soon as its token is revoked, replaced or
expired in the :class:`~labeltrail.annotate.auth.TokenStore`.

Sessions live in this process's memory: a restart signs everyone out, and several replicas
need sticky routing (they also keep their own serving times, see ``queue.py``).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from labeltrail.annotate.auth import TokenStore, require_text

__all__ = ["SessionStore"]


@dataclass
class _Session:
    annotator: str
    token_digest: str
    created: float
    last_seen: float


def _key(session_id: str) -> str:
    return hashlib.sha256(require_text(session_id, "session cookie").encode()).hexdigest()


class SessionStore:
    """Live sessions by hashed id; bounded to ``max_sessions`` (the oldest go first)."""

    def __init__(
        self,
        *,
        max_age: float = 12 * 3600.0,
        idle: float = 3600.0,
        max_sessions: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age <= 0 or idle <= 0 or max_sessions < 1:
            raise ValueError("max_age and idle must be > 0, max_sessions >= 1")
        self.max_age = max_age
        self.idle = idle
        self._max_sessions = max_sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _live(self, session: _Session, now: float) -> bool:
        return now - session.created <= self.max_age and now - session.last_seen <= self.idle

    def create(self, annotator: str, token_digest: str) -> str:
        """A new session for a verified annotator; returns the id to put in the cookie."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            if len(self._sessions) >= self._max_sessions:
                for key, old in list(self._sessions.items()):
                    if not self._live(old, now):
                        del self._sessions[key]
                while len(self._sessions) >= self._max_sessions:
                    del self._sessions[next(iter(self._sessions))]
            self._sessions[_key(session_id)] = _Session(annotator, token_digest, now, now)
        return session_id

    def authenticate(self, session_id: str, tokens: TokenStore) -> str | None:
        """The annotator a session id belongs to, or None (unknown, expired, token revoked)."""
        key = _key(session_id)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if not self._live(session, now):
                del self._sessions[key]
                return None
        if not tokens.check_digest(session.annotator, session.token_digest):
            self.delete(session_id)
            return None
        session.last_seen = now
        return session.annotator

    def delete(self, session_id: str) -> None:
        """End a session (sign-out); unknown ids are ignored."""
        key = _key(session_id)
        with self._lock:
            self._sessions.pop(key, None)
