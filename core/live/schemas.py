"""What a live-update stream sends: a snapshot of a job's progress, never its result."""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.jobs.models import FINAL_STATES, JobState
from ml.contracts import Stage


class JobEvent(BaseModel):
    """One progress snapshot. On a final state, read `GET /api/jobs/{id}` for the result."""

    job_id: str
    state: JobState
    stage: Stage | None = None
    progress: float = Field(default=0.0, description="Percent, 0-100.")
    queue_position: int | None = Field(default=None, description="1 = next to run; only while queued.")
    error_code: str | None = None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


def channel_for(job_id: str) -> str:
    """The Redis pub/sub channel of one job; subscribers only ever hear their own job."""
    return f"deepscreen:job:{job_id}:events"
