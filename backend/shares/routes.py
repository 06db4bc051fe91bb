"""Share links: the owner makes and revokes them under the job; anyone with one reads under /api/shared."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from fastapi.responses import FileResponse

from backend.accounts.deps import JobCallerDep, VisibleJobDep
from backend.deps import SessionDep, StorageDep, UnitOfWorkRoute
from backend.errors import error_responses
from backend.jobs.routes import artifact_file, artifact_list, view_fields
from backend.jobs.schemas import ArtifactList, SharedJob, SharedJobLinks
from backend.shares.schemas import ShareCreate, ShareCreated, ShareList, SharePublic
from core.db import utcnow
from core.jobs.models import Job
from core.jobs.storage import REPORT_NAME
from core.shares import service
from core.shares.models import JobShare

router = APIRouter(prefix="/api", tags=["shares"], route_class=UnitOfWorkRoute)

_NO_JOB = error_responses({404: "No such job, or not yours to see."})
_SHARED = error_responses({404: "No such share link.", 410: "The link expired or was revoked."})
WEB_PAGE = "/shared/{token}"
"""The web app's page for a link (what `url` points at)."""

TokenPath = Annotated[str, Path(min_length=16, max_length=128, description="The share link's token.")]


def _public(share: JobShare) -> SharePublic:
    return SharePublic(id=share.id, created_at=share.created_at, expires_at=share.expires_at,
                       revoked_at=share.revoked_at, active=service.is_active(share, utcnow()))


@router.post("/jobs/{job_id}/shares", status_code=status.HTTP_201_CREATED, response_model=ShareCreated,
             responses=_NO_JOB)
def create_share(job: VisibleJobDep, body: ShareCreate, session: SessionDep, caller: JobCallerDep) -> ShareCreated:
    """Make a read-only link to this job's result and files that works without an account until it expires."""
    share, token = service.create(session, job, expires_in_seconds=body.expires_in_seconds,
                                  created_by=caller.user_id)
    public = _public(share)
    return ShareCreated(**public.model_dump(), token=token, url=WEB_PAGE.format(token=token),
                        api_url=f"/api/shared/{token}")


@router.get("/jobs/{job_id}/shares", response_model=ShareList, responses=_NO_JOB)
def list_shares(job: VisibleJobDep, session: SessionDep) -> ShareList:
    """The job's share links, newest first, active or not (their tokens are not kept, so not shown)."""
    return ShareList(items=[_public(share) for share in service.list_for_job(session, job)])


@router.delete("/jobs/{job_id}/shares/{share_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=error_responses({404: "No such job or share link."}))
def revoke_share(job: VisibleJobDep, share_id: str, session: SessionDep) -> Response:
    """Revoke a share link at once: it answers 410 from then on."""
    service.revoke(session, job, share_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def shared(token: TokenPath, session: SessionDep) -> tuple[Job, JobShare]:
    return service.shared_job(session, token)


SharedDep = Annotated[tuple[Job, JobShare], Depends(shared)]


def _shared_links(token: str) -> SharedJobLinks:
    base = f"/api/shared/{token}"
    return SharedJobLinks(self=base, artifacts=f"{base}/artifacts", report=f"{base}/artifacts/{REPORT_NAME}")


@router.get("/shared/{token}", response_model=SharedJob, responses=_SHARED)
def get_shared_job(token: TokenPath, found: SharedDep) -> SharedJob:
    """The job a share link opens, read-only, without an account."""
    job, share = found
    return SharedJob(**view_fields(job), share_expires_at=share.expires_at, links=_shared_links(token))


@router.get("/shared/{token}/artifacts", response_model=ArtifactList, responses=_SHARED)
def list_shared_artifacts(token: TokenPath, found: SharedDep, storage: StorageDep) -> ArtifactList:
    """The shared job's overlays, frames and report."""
    return artifact_list(found[0], storage, _shared_links(token).artifacts)


@router.get("/shared/{token}/artifacts/{name}", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "application/json": {}}}, **_SHARED})
def get_shared_artifact(found: SharedDep, name: str, storage: StorageDep) -> FileResponse:
    """One file of the shared job."""
    return artifact_file(found[0], name, storage)

