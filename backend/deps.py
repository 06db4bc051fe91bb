"""`Annotated` dependency aliases, so a route's signature says what it needs.

The ones that only read `app.state` are `async def`: FastAPI runs every plain `def` dependency on
a thread-pool thread, and with the CPUs busy (workers beside the API) each of those hand-offs
(about 18 per upload) waited for the scheduler: the submit p95 at 50 uploads/s fell from 0.6-0.8 s
to about 0.1 s once they went (docs/reliability.md, capacity). A dependency doing blocking I/O stays `def`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from backend.live.feed import EventFeed
from backend.metrics import Metrics
from core.db import Database
from core.jobs.storage import Storage
from core.queue import JobQueue
from core.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns (by `UnitOfWorkRoute`, on the
    route's own thread), rolled back when it raises; this exit commits what is left (async routes)."""
    with request.app.state.database.session() as session:
        yield session


class UnitOfWorkRoute(APIRoute):
    """Every router's route class: a sync route's session is committed on the route's own thread,
    as soon as the route returns, before FastAPI validates the response.

    FastAPI validates a sync route's response on another pool thread and only then exits the
    session dependency. A route that wrote (the upload counter, a cancel) held its write lock
    across that hop: once every pool thread waited for that lock, nothing could validate a
    response, and a crowd of uploads or cancels deadlocked (tests/reliability/test_load_regressions.py).
    Committing here ends every unit of work, reads included, before the hop: one place, no route
    commits by hand.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _committing(endpoint), **kwargs)


def _committing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    plain_sync = inspect.isfunction(endpoint) and not (
        inspect.iscoroutinefunction(endpoint) or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    )
    if not plain_sync:
        return endpoint

    @functools.wraps(endpoint)  # FastAPI reads the signature and annotations through __wrapped__
    def run_and_commit(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session):
                value.commit()
        return result

    return run_and_commit


async def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


async def get_job_queue(request: Request) -> JobQueue:
    return request.app.state.job_queue  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def get_event_feed(request: Request) -> EventFeed:
    return request.app.state.event_feed  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": the commit happens before the response is sent, so a client never gets a
# 202 for a row that was not committed, and a failed commit becomes an error response.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
StorageDep = Annotated[Storage, Depends(get_storage)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EventFeedDep = Annotated[EventFeed, Depends(get_event_feed)]
