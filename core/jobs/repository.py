"""All SQL about jobs. State changes are conditional updates, so racing processes cannot undo
each other: only one worker claims a queued job, a canceled job never turns succeeded, and two
reapers cannot both re-queue the same job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.jobs.models import Job, JobState


def add(session: Session, job: Job) -> Job:
    session.add(job)
    session.flush()
    return job


def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id, populate_existing=True)


def list_page(
    session: Session, *, limit: int, offset: int, owner_id: str | None = None, token_hashes: Sequence[str] = ()
) -> tuple[Sequence[Job], int]:
    """Jobs owned by `owner_id` or whose access-token hash is in `token_hashes`; nothing without either."""
    conditions: list[Any] = []
    if owner_id is not None:
        conditions.append(Job.owner_id == owner_id)
    if token_hashes:
        conditions.append(Job.access_token_hash.in_(list(token_hashes)))
    if not conditions:
        return [], 0
    visible = or_(*conditions)
    items = session.scalars(
        select(Job).where(visible).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)
    )
    total = session.scalar(select(func.count()).select_from(Job).where(visible)) or 0
    return items.all(), total


def queue_position(session: Session, job: Job) -> int:
    ahead = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.state == JobState.queued, Job.kind == job.kind, Job.created_at < job.created_at)
    )
    return (ahead or 0) + 1


def find_reusable(session: Session, *, sha256: str, model_sha256: str, owner_id: str | None = None) -> Job | None:
    """The newest succeeded job with these bytes and model, among `owner_id`'s jobs (anonymous ones if None)."""
    return session.scalars(
        select(Job)
        .where(
            Job.sha256 == sha256,
            Job.model_sha256 == model_sha256,
            Job.owner_id == owner_id if owner_id is not None else Job.owner_id.is_(None),
            Job.state == JobState.succeeded,
            Job.result.is_not(None),
        )
        .order_by(Job.created_at.desc())
        .limit(1)
    ).first()


def _transition(session: Session, job_id: str, condition: Any, values: dict[str, Any]) -> bool:
    """Apply `values` when the row still matches `condition`; True if it did."""
    result = session.execute(
        update(Job).where(Job.id == job_id, condition).values(**values).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, job_id: str, *, worker: str, now: datetime) -> bool:
    return _transition(
        session, job_id, Job.state == JobState.queued,
        {"state": JobState.running, "attempts": Job.attempts + 1, "worker": worker, "heartbeat_at": now,
         "started_at": now, "stage": None, "progress": 0.0, "updated_at": now},
    )


def touch_running(session: Session, job_id: str, *, now: datetime, **values: Any) -> bool:
    """Heartbeat (and optionally progress) for a running job; False once it is no longer running."""
    running = Job.state == JobState.running
    return _transition(session, job_id, running, {"heartbeat_at": now, "updated_at": now, **values})


def finish_running(session: Session, job_id: str, *, now: datetime, **values: Any) -> bool:
    running = Job.state == JobState.running
    return _transition(session, job_id, running, {"finished_at": now, "updated_at": now, **values})


def requeue_running(session: Session, job_id: str, *, now: datetime, stale_before: datetime | None = None) -> bool:
    condition: Any = Job.state == JobState.running
    if stale_before is not None:
        condition = and_(condition, _is_stale(stale_before))
    return _transition(
        session, job_id, condition,
        {"state": JobState.queued, "stage": None, "progress": 0.0, "worker": None, "enqueued_at": now,
         "updated_at": now},
    )


def fail_stale(session: Session, job_id: str, *, now: datetime, stale_before: datetime, **values: Any) -> bool:
    return _transition(
        session, job_id, and_(Job.state == JobState.running, _is_stale(stale_before)),
        {"state": JobState.failed, "finished_at": now, "updated_at": now, **values},
    )


def cancel(session: Session, job_id: str, *, now: datetime) -> bool:
    return _transition(
        session, job_id, Job.state.in_([JobState.queued, JobState.running]),
        {"state": JobState.canceled, "finished_at": now, "updated_at": now},
    )


def mark_enqueued(session: Session, job_id: str, *, now: datetime, before: datetime) -> bool:
    return _transition(
        session, job_id, and_(Job.state == JobState.queued, Job.enqueued_at < before),
        {"enqueued_at": now, "updated_at": now},
    )


def stale_running(session: Session, *, stale_before: datetime) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.state == JobState.running, _is_stale(stale_before))).all()


def unsent_queued(session: Session, *, before: datetime) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.state == JobState.queued, Job.enqueued_at < before)).all()


def remove(session: Session, job_id: str) -> None:
    session.execute(delete(Job).where(Job.id == job_id))


def count_by_state(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(select(Job.state, Job.kind, func.count()).group_by(Job.state, Job.kind))
    return [(state, kind, count) for state, kind, count in rows]


def _is_stale(stale_before: datetime) -> Any:
    return or_(Job.heartbeat_at < stale_before, Job.heartbeat_at.is_(None))


def oldest_queued_by_kind(session: Session) -> list[tuple[str, datetime]]:
    """When the longest-waiting queued job of each kind was created (queue age, for alerts)."""
    rows = session.execute(
        select(Job.kind, func.min(Job.created_at)).where(Job.state == JobState.queued).group_by(Job.kind)
    )
    return [(kind, created) for kind, created in rows if created is not None]
