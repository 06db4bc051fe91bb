"""API-side stream of one job's events, relayed from the process's `EventFeed` or read from the job row."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from anyio import to_thread

from backend.live.feed import EventFeed
from core.db import Database
from core.jobs import repository, service
from core.jobs.models import JobState
from core.live.schemas import JobEvent
from ml.contracts import Stage

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


async def job_events(database: Database, job_id: str, *, feed: EventFeed) -> AsyncIterator[JobEvent]:
    """Yield the job's state now, then every change, and stop after a final state.

    The watch is registered before the row is read, so no event the feed delivers in between is
    missed; events are relayed as they come and the row is re-read on a final event, after
    RECHECK_SECONDS of silence, and whenever the feed (re)connects. Without events (no Redis, or
    Redis down) the row is read every POLL_SECONDS.
    """
    async with feed.watch(job_id) as watch:
        deadline = time.monotonic() + MAX_STREAM_SECONDS
        last: JobEvent | None = None
        event: JobEvent | None = None
        read_row = True
        listening = watch is not None and watch.active
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
            if watch is not None and watch.active:
                if not listening:  # the feed came back: what happened while it was down is in the row
                    listening, read_row = True, True
                    continue
                relayed = await watch.next_event(RECHECK_SECONDS)
                # A final event (or silence) is confirmed against the row; progress is relayed as is.
                read_row = relayed is None or relayed.is_final
                if relayed is not None and not read_row:
                    event = relayed
            else:
                listening = False
                await anyio.sleep(POLL_SECONDS)
                read_row = True
