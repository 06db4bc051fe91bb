"""API-side stream of one job's events, relayed from Redis or read from the job row."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import anyio
import redis.asyncio as aioredis
from anyio import to_thread
from redis.exceptions import RedisError

from core.db import Database
from core.jobs import repository, service
from core.jobs.models import JobState
from core.live.schemas import JobEvent, channel_for
from ml.contracts import Stage

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
"""Embedded default (no Redis): how often the job row is read."""
RECHECK_SECONDS = 5.0
"""With Redis: how long to wait for an event before reading the row anyway (missed events, the reaper)."""
MAX_STREAM_SECONDS = 3600.0
"""A stream ends after this long; the browser then polls or reconnects."""


def read_event(database: Database, job_id: str) -> JobEvent | None:
    """The job row as an event; None once the job is gone (deleted)."""
    with database.session() as session:
        job = repository.get(session, job_id)
        if job is None:
            return None
        return JobEvent(
            job_id=job.id,
            state=JobState(job.state),
            stage=Stage(job.stage) if job.stage else None,
            progress=job.progress,
            queue_position=service.queue_position(session, job),
            error_code=job.error_code,
        )


class _Subscription:
    """One job's Redis channel; any failure turns it off and the stream falls back to the row."""

    def __init__(self, url: str, job_id: str) -> None:
        self.channel = channel_for(job_id)
        self.client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.active = False

    async def open(self) -> bool:
        try:
            await self.pubsub.subscribe(self.channel)
            self.active = True
        except (RedisError, OSError) as exc:
            logger.warning("live updates fall back to polling: %s", exc)
        return self.active

    async def next_event(self, timeout: float) -> JobEvent | None:
        """The next event on the channel, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.active:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
            except (RedisError, OSError) as exc:
                logger.warning("live updates fall back to polling: %s", exc)
                self.active = False
                return None
            if message is None or message.get("type") != "message":
                continue
            try:
                return JobEvent.model_validate_json(message["data"])
            except ValueError:
                logger.warning("ignoring a malformed live event on %s", self.channel)
        return None

    async def close(self) -> None:
        try:
            await self.pubsub.aclose()
            await self.client.aclose()
        except (RedisError, OSError):
            pass


async def job_events(database: Database, job_id: str, *, redis_url: str = "") -> AsyncIterator[JobEvent]:
    """Yield the job's state now, then every change, and stop after a final state.

    With Redis the subscription is opened before the row is read, so no event published in
    between can be missed; events are relayed as they come and the row is re-read only on a
    final event or after RECHECK_SECONDS of silence.
    """
    subscription = _Subscription(redis_url, job_id) if redis_url else None
    if subscription is not None and not await subscription.open():
        await subscription.close()
        subscription = None
    try:
        deadline = time.monotonic() + MAX_STREAM_SECONDS
        last: JobEvent | None = None
        event: JobEvent | None = None
        read_row = True
        while time.monotonic() < deadline:
            if read_row:
                event = await to_thread.run_sync(read_event, database, job_id)
            if event is None:
                return
            if event != last:
                yield event
                last = event
            if event.is_final:
                return
            if subscription is not None and subscription.active:
                relayed = await subscription.next_event(RECHECK_SECONDS)
                # A final event (or silence) is confirmed against the row; progress is relayed as is.
                read_row = relayed is None or relayed.is_final
                if relayed is not None and not read_row:
                    event = relayed
            else:
                await anyio.sleep(POLL_SECONDS)
                read_row = True
    finally:
        if subscription is not None:
            await subscription.close()
