"""Token-bucket rate limits, one bucket per key (annotator, client address or credential)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``rate`` tokens per second up to ``burst``; ``take(key)`` spends one.

    Buckets of keys not seen for a while are dropped so that memory stays bounded.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - stamp) * self.rate)

    def peek(self, *keys: str) -> float:
        """Spend nothing: 0.0 if every key has a token left, else the longest wait."""
        now = self._clock()
        with self._lock:
            return max(
                (max(0.0, 1.0 - self._tokens(k, now)) / self.rate for k in keys), default=0.0
            )

    def take(self, key: str) -> float:
        """Spend a token: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self._buckets) > self._max_keys:
                self._evict(now)
        return wait

    def _evict(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key, (_, stamp) in list(self._buckets.items()):
            if now - stamp > full_after:
                del self._buckets[key]
