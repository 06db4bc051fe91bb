"""Publishing job events over Redis pub/sub, from the worker (progress, outcome) and the API.

One `EventPublisher` per process, chosen once on first use from REDIS_URL (`configure` sets it
explicitly): `RedisPublisher`, or `NullPublisher` without Redis, where the API watches the row.
Publishing is best effort: a lost event only delays the browser until the API's next look at
the job row, so a Redis failure is logged, never raised into the pipeline's progress callback.
The Redis client is made lazily per process id (Celery forks workers, so a connection must not be
inherited from the parent).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Protocol

import redis
from sqlalchemy.orm import Session

from core.db import run_after_commit
from core.live.schemas import JobEvent, channel_for
from core.settings import get_settings

logger = logging.getLogger(__name__)


class EventPublisher(Protocol):
    enabled: bool

    def publish(self, event: JobEvent) -> bool:
        """Publish now; True when the event was taken."""


class NullPublisher:
    """No Redis: nobody listens (streams read the row), so nothing is sent."""

    enabled = False

    def publish(self, event: JobEvent) -> bool:
        return False


class RedisPublisher:
    enabled = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._clients: dict[int, redis.Redis] = {}

    def _client(self) -> redis.Redis:
        with self._lock:
            client = self._clients.get(os.getpid())
            if client is None:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=2)
                self._clients[os.getpid()] = client
            return client

    def publish(self, event: JobEvent) -> bool:
        try:
            self._client().publish(channel_for(event.job_id), event.model_dump_json())
        except redis.RedisError as exc:
            logger.warning("live event not published: %s", exc, extra={"job_id": event.job_id})
            return False
        return True


_publisher: EventPublisher | None = None


def publisher_for(redis_url: str) -> EventPublisher:
    return RedisPublisher(redis_url) if redis_url else NullPublisher()


def configure(redis_url: str | None) -> None:
    """Choose the publisher explicitly (tests, or a process that builds its own Settings); None goes
    back to the process settings' REDIS_URL. An empty URL disables publishing."""
    global _publisher
    _publisher = None if redis_url is None else publisher_for(redis_url)


def current() -> EventPublisher:
    global _publisher
    if _publisher is None:
        _publisher = publisher_for(get_settings().REDIS_URL)
    return _publisher


def publish_job_event(event: JobEvent) -> bool:
    """Publish now; True when Redis took it. A no-op (False) without REDIS_URL."""
    return current().publish(event)


def publish_after_commit(session: Session, event: JobEvent) -> None:
    """Publish once the session's transaction commits, so subscribers never see uncommitted state."""
    publisher = current()
    if publisher.enabled:
        run_after_commit(session, lambda: publisher.publish(event))
