"""Fixed-window rate limits: one `RateLimiter` per app over a `WindowCounter` chosen once at
start-up (`rate_limiter`): in this process (the embedded default, one API process), or shared
across API replicas through Redis when REDIS_URL is set.

If Redis fails, the Redis counter falls back to in-process counts and logs it, rather than
refusing every request or letting every request through.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Protocol

import redis

from core.settings import Settings

logger = logging.getLogger(__name__)

_KEY_PREFIX = "deepscreen:ratelimit:"


class WindowCounter(Protocol):
    def increment(self, key: str, window_start: float, window_seconds: int) -> int:
        """Count one event for `key` in the window starting at `window_start`; returns the window's count."""

    def close(self) -> None: ...


class MemoryCounter:
    """Counts in this process; enough for one API process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}

    def increment(self, key: str, window_start: float, window_seconds: int) -> int:
        with self._lock:
            start, count = self._counts.get(key, (window_start, 0))
            count = count + 1 if start == window_start else 1
            self._counts[key] = (window_start, count)
            if len(self._counts) > 100_000:  # drop windows that have ended
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window_start}
            return count

    def close(self) -> None:
        return None


class RedisCounter:
    """Counts in Redis (INCR + EXPIRE per window), shared by every replica; in-process while Redis fails."""

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._fallback = MemoryCounter()

    def increment(self, key: str, window_start: float, window_seconds: int) -> int:
        name = f"{_KEY_PREFIX}{key}:{int(window_start)}"
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, window_seconds + 1)
            count, _ = pipe.execute()
            return int(count)
        except redis.RedisError as exc:
            logger.warning("rate limits fall back to this process: %s", exc)
            return self._fallback.increment(key, window_start, window_seconds)

    def close(self) -> None:
        self._redis.close()


def rate_limiter(settings: Settings) -> RateLimiter:
    """The app's limiter, its counter chosen once from REDIS_URL."""
    return RateLimiter(RedisCounter(settings.REDIS_URL) if settings.REDIS_URL else MemoryCounter())


class RateLimiter:
    def __init__(self, counter: WindowCounter) -> None:
        self.counter = counter

    def hit(self, key: str, *, limit: int, window_seconds: int) -> float | None:
        """Count one event for `key`; None when within `limit`, else seconds until the window resets."""
        if limit <= 0:
            return None
        now = time.time()
        window_start = math.floor(now / window_seconds) * window_seconds
        retry_after = window_start + window_seconds - now
        count = self.counter.increment(key, window_start, window_seconds)
        return None if count <= limit else max(retry_after, 1.0)

    def close(self) -> None:
        self.counter.close()
