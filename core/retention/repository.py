"""SQL for retention: which finished jobs still hold an upload, which have expired."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.jobs.models import FINAL_STATES, Job


def finished_with_upload(session: Session, *, limit: int) -> Sequence[Job]:
    return session.scalars(
        select(Job).where(Job.state.in_(FINAL_STATES), Job.upload_name.is_not(None)).limit(limit)
    ).all()


def forget_upload(session: Session, job_id: str) -> str | None:
    """Clear a finished job's upload name; returns the name it had (None: not finished or no upload)."""
    job = session.scalars(
        select(Job).where(Job.id == job_id, Job.state.in_(FINAL_STATES), Job.upload_name.is_not(None))
    ).first()
    if job is None:
        return None
    name = job.upload_name
    session.execute(
        update(Job).where(Job.id == job_id, Job.upload_name == name).values(upload_name=None)
        .execution_options(synchronize_session=False)
    )
    return name


def expired(session: Session, *, finished_before: datetime, limit: int) -> Sequence[Job]:
    finished = func.coalesce(Job.finished_at, Job.updated_at)
    return session.scalars(
        select(Job).where(Job.state.in_(FINAL_STATES), finished < finished_before).order_by(finished).limit(limit)
    ).all()


def remove(session: Session, job_ids: Sequence[str]) -> None:
    session.execute(delete(Job).where(Job.id.in_(job_ids)).execution_options(synchronize_session=False))


def existing_ids(session: Session, job_ids: Iterable[str]) -> set[str]:
    ids = list(job_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(session.scalars(select(Job.id).where(Job.id.in_(ids[start : start + 500]))))
    return found
