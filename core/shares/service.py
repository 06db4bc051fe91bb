"""The rules about share links: who may make one, how long it lives, what it opens.

Whoever may read a job (its owner, or the holder of its access token) may share it; the link opens
that one job's result and files, read-only, to anyone who has it, without an account (even with
AUTH_MODE=required: that is what a link is for). A link that expired or was revoked answers 410
`gone`, an unknown one 404, so a colleague learns the link ended rather than that it never was.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core.accounts.security import new_job_token, sha256_hex
from core.db import utcnow
from core.errors import Gone, NotFound
from core.jobs import service as job_service
from core.jobs.models import Job
from core.shares import repository
from core.shares.models import JobShare

logger = logging.getLogger(__name__)


def is_active(share: JobShare, now: datetime) -> bool:
    return share.revoked_at is None and share.expires_at > now


def create(session: Session, job: Job, *, expires_in_seconds: int, created_by: str | None) -> tuple[JobShare, str]:
    """A new link to `job` and its token (returned once; only its hash is kept)."""
    token, token_hash = new_job_token()
    now = utcnow()
    share = JobShare(
        id=uuid.uuid4().hex, job_id=job.id, token_hash=token_hash, created_by=created_by, created_at=now,
        expires_at=now + timedelta(seconds=expires_in_seconds),
    )
    repository.add(session, share)
    logger.info("share link created", extra={"job_id": job.id, "share_id": share.id})
    return share, token


def list_for_job(session: Session, job: Job) -> list[JobShare]:
    return list(repository.for_job(session, job.id))


def revoke(session: Session, job: Job, share_id: str) -> None:
    if not repository.revoke(session, job.id, share_id, now=utcnow()):
        raise NotFound("No such share link.", details={"share_id": share_id})
    logger.info("share link revoked", extra={"job_id": job.id, "share_id": share_id})


def shared_job(session: Session, token: str) -> tuple[Job, JobShare]:
    """The job a link opens; 404 for an unknown link, 410 for one that expired or was revoked."""
    share = repository.by_token_hash(session, sha256_hex(token))
    if share is None:
        raise NotFound("No such share link.")
    if share.revoked_at is not None:
        raise Gone("This share link was revoked by the person who made it.", details={"reason": "revoked"})
    if share.expires_at <= utcnow():
        raise Gone("This share link has expired.", details={"reason": "expired", "expired_at": share.expires_at})
    return job_service.get(session, share.job_id), share
