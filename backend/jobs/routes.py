"""HTTP routes for jobs: thin wrappers that call the service and shape responses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from backend.accounts.deps import JobCallerDep, UploaderDep, UploadLimitsDep, VisibleJobDep
from backend.deps import JobQueueDep, MetricsDep, SessionDep, SettingsDep, StorageDep, UnitOfWorkRoute
from backend.errors import error_responses
from backend.jobs.schemas import ArtifactFile, ArtifactList, JobCreated, JobError, JobLinks, JobList, JobPublic
from backend.jobs.upload import declared_size, ensure_min_side, receive_upload
from core.accounts import service as accounts_service
from core.accounts.security import new_job_token
from core.errors import NotFound, from_analysis_error
from core.jobs import service
from core.jobs.models import Job, JobState
from core.jobs.service import AcceptedMedia
from core.jobs.storage import REPORT_NAME, Storage
from core.retention import quota
from core.settings import AuthMode
from ml.contracts import (
    RESULT_SCHEMA_VERSION,
    AnalysisError,
    AnalysisResult,
    ErrorCode,
    MediaInfo,
    MediaKind,
    Stage,
)
from ml.media import probe

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["jobs"], route_class=UnitOfWorkRoute)

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
_UPLOAD_ERRORS = error_responses({
    400: "Malformed multipart body.",
    413: "The file is larger than MAX_UPLOAD_BYTES.",
    415: "Not an accepted image or video type; details.accepted lists them.",
    422: "Empty, truncated or corrupt media, or over a media limit named in details.limit.",
    429: "Too many requests or uploads today; Retry-After says when to try again.",
    507: "The storage quota is reached or the disk is nearly full; try again later.",
})
_NO_JOB = error_responses({404: "No such job, or not yours to see."})


async def accept_upload(
    request: Request, settings: SettingsDep, storage: StorageDep, _admitted: UploaderDep, limits: UploadLimitsDep,
    session: SessionDep,
) -> AsyncIterator[AcceptedMedia]:
    """Stream, sniff and probe the upload within the caller's tier limits (after the rate limit and a
    quota look); its temporary file is removed however the request ends."""
    # End the admission checks' read-only transaction so no pooled database connection is held
    # while the body streams: each upload pinned one, and 200 concurrent uploads exhausted the
    # pool (500s after its 30 s timeout). The route's own work opens a new transaction. Its own
    # thread limiter, as FastAPI does for dependency exits: waiting for a shared worker thread
    # while holding a connection deadlocks once every thread waits for a connection.
    await to_thread.run_sync(session.commit, limiter=CapacityLimiter(1))
    await to_thread.run_sync(quota.ensure_room, storage.root, settings, declared_size(request, settings))
    upload = await receive_upload(
        request, storage, max_bytes=limits.max_upload_bytes, flush_bytes=settings.UPLOAD_CHUNK_BYTES
    )
    try:
        try:
            info = await to_thread.run_sync(probe, upload.path, limits.media_limits)
        except AnalysisError as exc:
            raise from_analysis_error(exc) from exc
        ensure_min_side(info, settings.MIN_MEDIA_SIDE)
        yield AcceptedMedia(
            temp_path=upload.path, size=upload.size, sha256=upload.sha256, info=info, filename=upload.filename
        )
    finally:
        upload.path.unlink(missing_ok=True)


AcceptedMediaDep = Annotated[AcceptedMedia, Depends(accept_upload, scope="function")]


def links(job_id: str) -> JobLinks:
    base = f"/api/jobs/{job_id}"
    return JobLinks(
        self=base, artifacts=f"{base}/artifacts", report=f"{base}/artifacts/{REPORT_NAME}", shares=f"{base}/shares"
    )


def artifact_list(job: Job, storage: Storage, base_url: str) -> ArtifactList:
    """The result's artifacts that are on disk, with their sizes; none before the job has a result."""
    result = stored_result(job)
    items = []
    for artifact in result.artifacts if result else []:
        path = storage.artifact_path(job.id, artifact.name)
        if path is None:
            continue
        items.append(ArtifactFile(
            name=artifact.name, kind=artifact.kind, url=f"{base_url}/{artifact.name}", size_bytes=path.stat().st_size,
            face_rank=artifact.face_rank, track_id=artifact.track_id, timestamp_seconds=artifact.timestamp_seconds,
        ))
    return ArtifactList(items=items)


def artifact_file(job: Job, name: str, storage: Storage) -> FileResponse:
    path = storage.artifact_path(job.id, name)
    if path is None:
        raise NotFound("No such artifact.", details={"name": name})
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})


def stored_result(job: Job) -> AnalysisResult | None:
    """The job's result; None for one stored under an older, incompatible result schema (logged), so
    one old row never turns a listing into a 500."""
    if not job.result:
        return None
    try:
        return AnalysisResult.model_validate(job.result)
    except ValidationError:
        logger.warning("stored result does not match result schema %s", RESULT_SCHEMA_VERSION,
                       extra={"job_id": job.id, "schema_version": job.result.get("schema_version")})
        return None


def stored_error(job: Job) -> JobError | None:
    if not job.error_code:
        return None
    try:
        code = ErrorCode(job.error_code)
    except ValueError:  # a code no release writes any more (migrations convert the known ones)
        logger.warning("stored job error code is unknown", extra={"job_id": job.id, "error_code": job.error_code})
        code = ErrorCode.internal
    return JobError(code=code, message=job.error_message or "", details=job.error_details or {})


def view_fields(job: Job) -> dict[str, Any]:
    """The `JobView` part of a job, shared by the owner's view and a share link's."""
    return {
        "id": job.id, "state": JobState(job.state), "stage": Stage(job.stage) if job.stage else None,
        "progress": job.progress, "kind": MediaKind(job.kind), "media_format": job.media_format,
        "original_filename": job.original_filename, "size_bytes": job.size_bytes, "sha256": job.sha256,
        "media": MediaInfo.model_validate(job.media_info) if job.media_info else None,
        "error": stored_error(job), "result": stored_result(job), "created_at": job.created_at,
        "started_at": job.started_at, "finished_at": job.finished_at, "updated_at": job.updated_at,
    }


def to_public(session: Session, job: Job) -> JobPublic:
    return JobPublic(
        **view_fields(job), queue_position=service.queue_position(session, job), attempts=job.attempts,
        reused_from=job.visible_reused_from, links=links(job.id),
    )


ForceQuery = Annotated[
    bool, Query(description="Analyse again even if this file was analysed before by the same model.")
]


@router.post(
    "/jobs", status_code=status.HTTP_202_ACCEPTED, response_model=JobCreated,
    openapi_extra=_UPLOAD_BODY, responses=_UPLOAD_ERRORS,
)
def create_job(
    response: Response, session: SessionDep, media: AcceptedMediaDep, settings: SettingsDep,
    storage: StorageDep, queue: JobQueueDep, metrics: MetricsDep, caller: JobCallerDep, limits: UploadLimitsDep,
    force: ForceQuery = False,
) -> JobCreated:
    """Submit an image or video (multipart field `file`) for analysis; the kind is detected from its bytes.

    The response's `access_token` (shown only here) is needed to read the job without an account."""
    accounts_service.take_upload_slot(session, caller, limits)
    token, token_hash = (None, None) if settings.AUTH_MODE is AuthMode.required else new_job_token()
    job = service.submit(
        session, media=media, force=force, settings=settings, storage=storage, queue=queue,
        owner_id=caller.user_id, access_token_hash=token_hash,
    )
    metrics.jobs_submitted.labels(job.kind, str(job.reused_from is not None).lower()).inc()
    response.headers["Location"] = f"/api/jobs/{job.id}"
    return JobCreated(
        id=job.id, state=JobState(job.state), reused_from=job.visible_reused_from, links=links(job.id),
        access_token=token,
    )


# Aliases kept for clients of other deepfake-screening APIs; the kind still comes from the bytes.
for _alias in ("/analyze-image", "/analyze-video"):
    router.add_api_route(
        _alias, create_job, methods=["POST"], status_code=status.HTTP_202_ACCEPTED, response_model=JobCreated,
        openapi_extra=_UPLOAD_BODY, responses=_UPLOAD_ERRORS, operation_id=_alias[1:].replace("-", "_"),
        summary=f"POST /api{_alias}: alias of POST /api/jobs",
        description="Same as POST /api/jobs, kept for clients of other deepfake-screening APIs.",
    )


@router.get("/jobs", response_model=JobList)
def list_jobs(
    session: SessionDep,
    caller: JobCallerDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    """List the caller's jobs (signed in: their own; plus those whose tokens are sent in X-Job-Token), newest first."""
    items, total = service.list_page(
        session, limit=limit, offset=offset, owner_id=caller.user_id,
        token_hashes=accounts_service.token_hashes(caller, settings.AUTH_MODE),
    )
    return JobList(items=[to_public(session, job) for job in items], total=total, limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=JobPublic, responses=_NO_JOB)
def get_job(job: VisibleJobDep, session: SessionDep) -> JobPublic:
    """A job's state, stage, progress, queue position, error and result."""
    return to_public(session, job)


# Kept for clients of DeepShield-style APIs, which read results here.
router.add_api_route(
    "/results/{job_id}", get_job, methods=["GET"], response_model=JobPublic, responses=_NO_JOB,
    operation_id="get_result", summary="GET /api/results/{job_id}: alias of GET /api/jobs/{job_id}",
    description="Same as GET /api/jobs/{job_id}, kept for clients of other deepfake-screening APIs.",
)


@router.delete(
    "/jobs/{job_id}", response_model=JobPublic,
    responses={
        204: {"description": "The finished job and its files were deleted."},
        **_NO_JOB,
    },
)
def delete_job(visible: VisibleJobDep, session: SessionDep, storage: StorageDep) -> JobPublic | Response:
    """Cancel a queued or running job (200, the canceled job), or delete a finished one with its files (204)."""
    job = service.cancel_or_delete(session, visible.id, storage=storage)
    if job is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return to_public(session, job)


@router.get("/jobs/{job_id}/artifacts", response_model=ArtifactList, responses=_NO_JOB)
def list_artifacts(job: VisibleJobDep, storage: StorageDep) -> ArtifactList:
    """A job's overlays, frames and report: kind, name, URL and size of each."""
    return artifact_list(job, storage, links(job.id).artifacts)


_ARTIFACT_FILE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "application/json": {}}},
    **error_responses({404: "No such job or artifact."}),
}


@router.get("/jobs/{job_id}/artifacts/{name}", response_class=FileResponse, responses=_ARTIFACT_FILE)
def get_artifact(job: VisibleJobDep, name: str, storage: StorageDep) -> FileResponse:
    """An overlay image, frame or the JSON report (report.json) of a job."""
    return artifact_file(job, name, storage)
