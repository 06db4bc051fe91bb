"""`GET /api/jobs/{job_id}/events`: a job's live progress as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse

from backend.accounts.deps import VisibleJobDep
from backend.deps import DatabaseDep, EventFeedDep, UnitOfWorkRoute
from backend.errors import error_responses
from backend.live.stream import job_events
from core.live.schemas import JobEvent

router = APIRouter(prefix="/api", tags=["jobs"], route_class=UnitOfWorkRoute)


def visible_job_id(job: VisibleJobDep) -> str:
    """The same lookup and access check (and 404) as `GET /api/jobs/{job_id}`, done before the stream starts.

    It must run as a dependency: inside the stream the 200 status would already be sent. Each
    stream carries only its own job's channel, so nothing of one job reaches another's listener.
    """
    return job.id


VisibleJobId = Annotated[str, Depends(visible_job_id)]


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses=error_responses({404: "No such job, or not yours to see."}),
)
async def stream_job_events(job_id: VisibleJobId, database: DatabaseDep, feed: EventFeedDep) -> AsyncIterable[JobEvent]:
    """Live progress of a job as Server-Sent Events until it is final; poll GET /api/jobs/{job_id} as a fallback."""
    async for event in job_events(database, job_id, feed=feed):
        yield event
