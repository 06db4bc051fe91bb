"""What clients send and receive about jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.jobs.models import JobState
from ml.contracts import AnalysisResult, ArtifactKind, ErrorCode, MediaInfo, MediaKind, Stage


class JobError(BaseModel):
    code: ErrorCode = Field(description="Why the job failed; the media's fault unless `timeout` or `internal`.")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class JobLinks(BaseModel):
    self: str
    artifacts: str = Field(description="The list of the job's artifacts; `<artifacts>/<name>` is one of them.")
    report: str = Field(description="The signed JSON report, once the job has a result.")
    shares: str = Field(description="The job's read-only share links (POST to make one).")


class ArtifactFile(BaseModel):
    """One stored file of a job: an overlay, a frame or the report."""

    name: str
    kind: ArtifactKind
    url: str
    size_bytes: int
    face_rank: int | None = Field(default=None, description="1 = most suspicious face.")
    track_id: int | None = None
    timestamp_seconds: float | None = None


class ArtifactList(BaseModel):
    items: list[ArtifactFile]


class JobView(BaseModel):
    """What anyone allowed to see a job sees, through a share link too."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    state: JobState
    stage: Stage | None
    progress: float = Field(description="Percent, 0-100.")
    kind: MediaKind = Field(description="Detected from the file's bytes, never from its name.")
    media_format: str
    original_filename: str | None
    size_bytes: int
    sha256: str
    media: MediaInfo | None
    error: JobError | None
    result: AnalysisResult | None = Field(description="What the analysis found, once it ran.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class JobPublic(JobView):
    """A job as its owner (or the holder of its access token) sees it."""

    queue_position: int | None = Field(description="1 = next to run; only while queued.")
    attempts: int
    reused_from: str | None = Field(description="Id of the job whose stored result was reused, if any.")
    links: JobLinks


class SharedJobLinks(BaseModel):
    self: str
    artifacts: str = Field(description="The list of the job's artifacts, readable with the link.")
    report: str


class SharedJob(JobView):
    """A job seen through a read-only share link: no queue, attempt or reuse details, no way to change it."""

    share_expires_at: datetime = Field(description="When the link stops working (unless revoked sooner).")
    links: SharedJobLinks


class JobCreated(BaseModel):
    id: str
    state: JobState
    reused_from: str | None
    links: JobLinks
    access_token: str | None = Field(
        description="Shown only here: send it as X-Job-Token (or ?token=) to read this job without an account. "
        "None when AUTH_MODE=required (only the owner may read it)."
    )


class JobList(BaseModel):
    items: list[JobPublic]
    total: int
    limit: int
    offset: int
