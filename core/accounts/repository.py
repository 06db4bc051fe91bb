"""All SQL about users, sessions, API keys and upload counters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from core.accounts.models import ApiKey, AuthSession, UploadQuota, User
from core.db import upsert


def add(session: Session, row: User | AuthSession | ApiKey) -> None:
    session.add(row)
    session.flush()


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).first()


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def live_session(session: Session, session_id: str, *, now: datetime) -> tuple[AuthSession, User] | None:
    """The session and its user when the session is neither revoked nor expired and the user is active."""
    row = session.execute(
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(
            AuthSession.id == session_id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now,
            User.is_active.is_(True),
        )
    ).first()
    return (row[0], row[1]) if row else None


def revoke_session(session: Session, session_id: str, *, now: datetime) -> None:
    session.execute(
        update(AuthSession).where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None)).values(revoked_at=now)
    )


def live_api_key(session: Session, key_hash: str) -> tuple[ApiKey, User] | None:
    row = session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None), User.is_active.is_(True))
    ).first()
    return (row[0], row[1]) if row else None


def touch_api_key(session: Session, key_id: str, *, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))


def api_keys_of(session: Session, user_id: str) -> Sequence[ApiKey]:
    return session.scalars(
        select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)).order_by(ApiKey.created_at.desc())
    ).all()


def revoke_api_key(session: Session, key_id: str, *, user_id: str, now: datetime) -> bool:
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def take_upload(session: Session, subject: str, day: date, *, limit: int) -> bool:
    """Take one upload slot atomically; False when `limit` slots are already taken today.

    The counter row is created if missing (a no-op when a concurrent request created it), then
    one conditional UPDATE takes the slot: PostgreSQL re-checks `used < limit` after waiting for
    a concurrent writer's row lock, and SQLite serialises writers, so the last slot goes once.
    """
    session.execute(upsert(session, UploadQuota).values(subject=subject, day=day, used=0).on_conflict_do_nothing())
    result = session.execute(
        update(UploadQuota)
        .where(UploadQuota.subject == subject, UploadQuota.day == day, UploadQuota.used < limit)
        .values(used=UploadQuota.used + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def uploads_used(session: Session, subject: str, day: date) -> int:
    used = session.scalar(select(UploadQuota.used).where(UploadQuota.subject == subject, UploadQuota.day == day))
    return used or 0


def delete_ended_sessions(session: Session, *, before: datetime) -> int:
    """Sessions that expired or were revoked before `before`: nothing can use them any more."""
    result = session.execute(
        delete(AuthSession).where(or_(AuthSession.expires_at < before, AuthSession.revoked_at < before))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_quota_days(session: Session, *, before: date) -> int:
    result = session.execute(delete(UploadQuota).where(UploadQuota.day < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_user(session: Session, email: str, **values: object) -> bool:
    result = session.execute(update(User).where(User.email == email).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]
