"""Fixed-window rate limits, shared across API replicas through Redis when REDIS_URL is set.

Without Redis (the embedded default, one API process) counters live in the process. If Redis
fails, the limiter falls back to in-process counters and logs it, rather than refusing every
request or letting every request through.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import redis

logger = logging.getLogger(__name__)

_KEY_PREFIX = "deepscreen:ratelimit:"


class RateLimiter:
    def __init__(self, redis_url: str = "") -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2) if redis_url else None
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}

    def hit(self, key: str, *, limit: int, window_seconds: int) -> float | None:
        """Count one event for `key`; None when within `limit`, else seconds until the window resets."""
        if limit <= 0:
            return None
        now = time.time()
        window_start = math.floor(now / window_seconds) * window_seconds
        retry_after = window_start + window_seconds - now
        count = self._hit_redis(key, window_start, window_seconds) if self._redis is not None else None
        if count is None:
            count = self._hit_memory(key, window_start)
        return None if count <= limit else max(retry_after, 1.0)

    def _hit_redis(self, key: str, window_start: float, window_seconds: int) -> int | None:
        assert self._redis is not None
        name = f"{_KEY_PREFIX}{key}:{int(window_start)}"
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, window_seconds + 1)
            count, _ = pipe.execute()
            return int(count)
        except redis.RedisError as exc:
            logger.warning("rate limits fall back to this process: %s", exc)
            return None

    def _hit_memory(self, key: str, window_start: float) -> int:
        with self._lock:
            start, count = self._counts.get(key, (window_start, 0))
            count = count + 1 if start == window_start else 1
            self._counts[key] = (window_start, count)
            if len(self._counts) > 100_000:  # drop windows that have ended
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window_start}
            return count

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
