"""Where an API process hears of job changes: one `EventFeed` per app, chosen once from settings.

- `PollingFeed` (embedded default, no REDIS_URL): there is nothing to hear; every stream reads
  its job row every POLL_SECONDS.
- `RedisFeed` (REDIS_URL set): ONE Redis pub/sub connection per API process, pattern-subscribed
  to every job's channel, fans each event out to the streams watching that job. A Redis
  connection per open stream (what this replaced) made a thousand watching browsers a thousand
  Redis clients. While the connection is down, streams fall back to reading the row; the feed
  reconnects by itself.

The feed only says "something happened"; the row stays the truth (backend/live/stream.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.live.schemas import JobEvent, channel_for
from core.settings import Settings

logger = logging.getLogger(__name__)

QUEUE_SIZE = 64
"""Events buffered per watching stream; a stream that falls further behind re-reads its row instead."""
RECONNECT_SECONDS = 1.0
CHANNEL_PATTERN = channel_for("*")


class JobWatch(Protocol):
    """One stream's view of its job's events."""

    @property
    def active(self) -> bool:
        """False while events cannot arrive (no feed, Redis down): the stream then polls the row."""

    async def next_event(self, timeout: float) -> JobEvent | None:
        """The next event, or None after `timeout` seconds (or when some were dropped: read the row)."""


class EventFeed(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def watch(self, job_id: str) -> contextlib.AbstractAsyncContextManager[JobWatch | None]:
        """Watch one job; yields None when this feed never delivers events (poll the row)."""


def event_feed(settings: Settings) -> EventFeed:
    """The feed for this deployment, chosen once at start-up."""
    return RedisFeed(settings.REDIS_URL) if settings.REDIS_URL else PollingFeed()


class PollingFeed:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[JobWatch | None]:
        yield None


class _Watch:
    def __init__(self, feed: RedisFeed) -> None:
        self._feed = feed
        self.queue: asyncio.Queue[JobEvent] = asyncio.Queue(QUEUE_SIZE)
        self.lagged = False

    @property
    def active(self) -> bool:
        return self._feed.connected

    def deliver(self, event: JobEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True

    async def next_event(self, timeout: float) -> JobEvent | None:
        if self.lagged:
            self.lagged = False
            while not self.queue.empty():
                self.queue.get_nowait()
            return None
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class RedisFeed:
    """One pattern subscription for the whole process, fanned out to the watching streams."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connected = False
        self._watches: dict[str, set[_Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Start listening; waits briefly for the subscription so the first streams need not poll."""
        self._task = asyncio.create_task(self._listen(), name="live-feed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 2.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[JobWatch | None]:
        channel = channel_for(job_id)
        watch = _Watch(self)
        self._watches.setdefault(channel, set()).add(watch)
        try:
            yield watch
        finally:
            watchers = self._watches.get(channel)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watches[channel]

    async def _listen(self) -> None:
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(CHANNEL_PATTERN)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":  # confirmed: from now on no event is missed
                        self.connected = True
                        self._ready.set()
                    elif message["type"] == "pmessage":
                        self._dispatch(message["channel"], message["data"])
            except (RedisError, OSError) as exc:
                if self.connected:
                    logger.warning("live updates fall back to polling until Redis is back: %s", exc)
            finally:
                self.connected = False
                self._ready.set()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(RECONNECT_SECONDS)

    def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        watchers = self._watches.get(name)
        if not watchers:
            return
        try:
            event = JobEvent.model_validate_json(data)
        except ValueError:
            logger.warning("ignoring a malformed live event on %s", name)
            return
        for watch in watchers:
            watch.deliver(event)
