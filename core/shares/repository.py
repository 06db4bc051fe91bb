"""SQL for share links."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.shares.models import JobShare


def add(session: Session, share: JobShare) -> None:
    session.add(share)
    session.flush()


def by_token_hash(session: Session, token_hash: str) -> JobShare | None:
    return session.scalars(select(JobShare).where(JobShare.token_hash == token_hash)).first()


def for_job(session: Session, job_id: str) -> Sequence[JobShare]:
    return session.scalars(
        select(JobShare).where(JobShare.job_id == job_id).order_by(JobShare.created_at.desc(), JobShare.id)
    ).all()


def revoke(session: Session, job_id: str, share_id: str, *, now: datetime) -> bool:
    """Revoke a link of this job; False when it has no such link. Revoking twice keeps the first time."""
    share = session.get(JobShare, share_id)
    if share is None or share.job_id != job_id:
        return False
    session.execute(
        update(JobShare).where(JobShare.id == share_id, JobShare.revoked_at.is_(None)).values(revoked_at=now)
    )
    return True
