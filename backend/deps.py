"""`Annotated` dependency aliases, so a route's signature says what it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend.live.feed import EventFeed
from backend.metrics import Metrics
from core.db import Database
from core.jobs.storage import Storage
from core.queue import JobQueue
from core.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises."""
    with get_database(request).session() as session:
        yield session


def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


def get_job_queue(request: Request) -> JobQueue:
    return request.app.state.job_queue  # type: ignore[no-any-return]


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


def get_event_feed(request: Request) -> EventFeed:
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
