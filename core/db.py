"""Engine, sessions and the declarative base.

One session per request (or per worker task step): it commits when the unit of work succeeds
and rolls back when it raises. Services and repositories never commit. Work that must only
happen once the data is durable (sending a Celery message) is registered with
`run_after_commit` and runs right after the commit, never after a rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from core.settings import Settings

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
_AFTER_COMMIT_KEY = "deepscreen_after_commit"
_AFTER_ROLLBACK_KEY = "deepscreen_after_rollback"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite returns naive ones otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Naive datetimes are ambiguous; pass an aware UTC datetime.")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def upsert(session: Session, model: type[Base]) -> Any:
    """`INSERT ... ON CONFLICT` for the session's database: PostgreSQL's and SQLite's `insert`
    constructs share `on_conflict_do_nothing` / `on_conflict_do_update`, but SQLAlchemy's generic
    `insert` has neither. The one place a repository picks the dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(model)
    return sqlite_insert(model)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Database:
    """An engine and its session factory; the API keeps one on `app.state`, a worker one per process."""

    def __init__(self, url: str, *, echo: bool = False, connect_timeout_seconds: int = 10) -> None:
        self.url = url
        self.engine = _create_engine(url, echo=echo, connect_timeout_seconds=connect_timeout_seconds)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        if not settings.DATABASE_URL:
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        return cls(settings.database_url, connect_timeout_seconds=settings.DATABASE_CONNECT_TIMEOUT_SECONDS)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on any exception, then run after-commit hooks."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def run_after_commit(session: Session, action: Callable[[], Any]) -> None:
    """Run `action` once the session's current transaction commits; dropped on rollback."""
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(action)


def run_after_rollback(session: Session, action: Callable[[], Any]) -> None:
    """Run `action` if the session's current transaction rolls back (undo files written for it)."""
    session.info.setdefault(_AFTER_ROLLBACK_KEY, []).append(action)


@event.listens_for(Session, "after_commit")
def _run_after_commit_actions(session: Session) -> None:
    session.info.pop(_AFTER_ROLLBACK_KEY, None)
    _run_actions(session.info.pop(_AFTER_COMMIT_KEY, []), "after-commit")


@event.listens_for(Session, "after_rollback")
def _run_after_rollback_actions(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT_KEY, None)
    _run_actions(session.info.pop(_AFTER_ROLLBACK_KEY, []), "after-rollback")


def _run_actions(actions: list[Callable[[], Any]], when: str) -> None:
    for action in actions:
        try:
            action()
        except Exception:
            # The transaction is already decided; a lost message is recovered by the reaper.
            logger.exception("%s action failed", when)


def _create_engine(url: str, *, echo: bool, connect_timeout_seconds: int) -> Engine:
    # hide_parameters: a database error's text (logged, e.g. "database unavailable: ...") carried the
    # bound values, an API key's hash among them; the SQL alone is enough to debug.
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, hide_parameters=True, connect_args={"timeout": 30, "check_same_thread": False}
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    # Without a bound libpq waits forever for a server that accepts but never answers, and for
    # minutes (TCP retries) for an unreachable one; bounded, the request becomes a 503.
    return create_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True,
        connect_args={"connect_timeout": connect_timeout_seconds},
    )


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; the busy timeout waits out short write locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
