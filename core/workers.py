"""Worker liveness: each worker pool process that has loaded its model upserts its row in
`worker_beats` every HEARTBEAT_SECONDS, and deletes it on a clean stop.

Why the database: every API and worker process already reaches it, in the embedded default
(SQLite) as in the distributed one (PostgreSQL), so liveness needs no shared file system between
hosts (it used to be JSON files under STORAGE_DIR/workers/) and no second implementation for
Redis. A beat is one small row; reading the live ones is one indexed query, cheap enough for
every readiness probe and scrape. Celery's `inspect ping` would need a broadcast-capable broker
and a one-second wait per probe.

The API reads the beats for readiness (at least one recent beat), result reuse (the model every
live worker of a queue serves), `deepscreen_workers`, the model info metric and GPU memory. A
worker killed with SIGKILL leaves its row behind: it stops counting after STALE_AFTER_SECONDS and
the retention sweep deletes it after a day. Times are Unix seconds by the writer's clock, as
before (hosts are expected to run NTP).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import JSON, Float, Index, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, upsert

PRUNE_AFTER_SECONDS = 24 * 3600.0


class WorkerBeat(BaseModel):
    """What one worker pool process reports about itself."""

    worker: str
    """`<celery hostname>:<pid>`, unique among running processes."""
    hostname: str
    pid: int
    queues: list[str]
    device: str
    backend: str
    model_id: str
    model_version: str
    model_sha256: str
    onnx_sha256: str | None = None
    """The ONNX export the process scores with (None on PyTorch), built ahead of time beside the checkpoint."""
    started_at: float
    beat_at: float
    """Unix time of the last beat, by the worker's clock."""
    jobs_done: int = 0
    gpu_memory_allocated_bytes: int | None = None
    gpu_memory_reserved_bytes: int | None = None
    gpu_memory_total_bytes: int | None = None


class WorkerBeatRow(Base):
    """The `worker_beats` table: the latest `WorkerBeat` of each worker pool process."""

    __tablename__ = "worker_beats"
    __table_args__ = (Index("ix_worker_beats_beat_at", "beat_at"),)

    worker: Mapped[str] = mapped_column(String(255), primary_key=True)
    beat_at: Mapped[float] = mapped_column(Float)
    beat: Mapped[dict[str, Any]] = mapped_column(JSON)


def write(session: Session, beat: WorkerBeat) -> None:
    """Insert or refresh this worker's row, in one statement."""
    document = beat.model_dump(mode="json")
    statement = upsert(session, WorkerBeatRow).values(worker=beat.worker, beat_at=beat.beat_at, beat=document)
    session.execute(statement.on_conflict_do_update(
        index_elements=[WorkerBeatRow.worker], set_={"beat_at": beat.beat_at, "beat": document},
    ))


def remove(session: Session, worker: str) -> None:
    session.execute(delete(WorkerBeatRow).where(WorkerBeatRow.worker == worker))


def all_beats(session: Session) -> list[WorkerBeat]:
    """Every stored beat, stale ones included."""
    return _parse(session.scalars(select(WorkerBeatRow.beat)))


def live(session: Session, *, stale_after: float, now: float | None = None) -> list[WorkerBeat]:
    """Workers whose last beat is at most `stale_after` seconds old."""
    now = time.time() if now is None else now
    return _parse(session.scalars(select(WorkerBeatRow.beat).where(WorkerBeatRow.beat_at >= now - stale_after)))


def _parse(documents: Iterable[dict[str, Any]]) -> list[WorkerBeat]:
    beats = []
    for document in documents:
        try:
            beats.append(WorkerBeat.model_validate(document))
        except ValidationError:
            continue  # written by another version: not a live worker of this one
    return beats


def prune(session: Session, *, older_than: float = PRUNE_AFTER_SECONDS, now: float | None = None) -> int:
    """Delete rows of workers silent for `older_than` seconds (killed, never cleaned up)."""
    now = time.time() if now is None else now
    result = session.execute(delete(WorkerBeatRow).where(WorkerBeatRow.beat_at < now - older_than))
    return int(result.rowcount)  # type: ignore[attr-defined]
