"""`Annotated` dependency aliases, so a route's signature says what it needs.

The ones that only read `app.state` are `async def`: FastAPI runs every plain `def` dependency on
a thread-pool thread, and with the CPUs busy (workers beside the API) each of those hand-offs
(about 18 per upload) waited for the scheduler: the submit p95 at 50 uploads/s fell from 0.6-0.8 s
to about 0.1 s once they went (docs/reliability.md, capacity). A dependency doing blocking I/O stays `def`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend.db import Database
from backend.jobs.storage import Storage
from backend.metrics import Metrics
from backend.queue import JobQueue
from backend.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises."""
    with request.app.state.database.session() as session:
        yield session


async def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


async def get_job_queue(request: Request) -> JobQueue:
    return request.app.state.job_queue  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": the commit happens before the response is sent, so a client never gets a
# 202 for a row that was not committed, and a failed commit becomes an error response.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
StorageDep = Annotated[Storage, Depends(get_storage)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
