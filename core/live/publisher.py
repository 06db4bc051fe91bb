"""Worker-side publishing of job events over Redis pub/sub.

Publishing is best effort: a lost event only delays the browser until the API's next look at
the job row, so a Redis failure is logged, never raised into the pipeline's progress callback.
The client is created lazily, once per process and URL (Celery forks workers, so a connection
must not be inherited from the parent: the pool is keyed by process id).
"""

from __future__ import annotations

import logging
import os
import threading

import redis
from sqlalchemy.orm import Session

from core.db import run_after_commit
from core.live.schemas import JobEvent, channel_for
from core.settings import get_settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_clients: dict[tuple[int, str], redis.Redis] = {}
_override: str | None = None


def configure(redis_url: str | None) -> None:
    """Set the Redis URL explicitly (tests, or a process that builds its own Settings).

    Without it the URL is the process settings' REDIS_URL; an empty URL disables publishing.
    """
    global _override
    _override = redis_url


def _redis_url() -> str:
    return _override if _override is not None else get_settings().REDIS_URL


def _client(url: str) -> redis.Redis:
    key = (os.getpid(), url)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            _clients[key] = client
        return client


def publish_job_event(event: JobEvent) -> bool:
    """Publish now; True when Redis took it. A no-op (False) without REDIS_URL."""
    url = _redis_url()
    if not url:
        return False
    try:
        _client(url).publish(channel_for(event.job_id), event.model_dump_json())
    except redis.RedisError as exc:
        logger.warning("live event not published: %s", exc, extra={"job_id": event.job_id})
        return False
    return True


def publish_after_commit(session: Session, event: JobEvent) -> None:
    """Publish once the session's transaction commits, so subscribers never see uncommitted state."""
    if _redis_url():
        run_after_commit(session, lambda: publish_job_event(event))
