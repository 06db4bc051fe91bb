"""The `jobs` table: the durable record of every analysis and of its progress.

There is no Celery result backend: this row is the only place progress, results and failures
live, so API replicas and workers on any machine agree on a job's state.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

import core.accounts.models  # noqa: F401  (the users table, target of owner_id)
import core.shares.models  # noqa: F401  (the job_shares table, deleted with its job)
from core.db import Base, UTCDateTime, utcnow
from core.queue import queue_for_kind


class JobState(StrEnum):
    """queued → running → succeeded | failed | canceled; running → queued when its worker died."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


FINAL_STATES = frozenset({JobState.succeeded, JobState.failed, JobState.canceled})


def new_job_id() -> str:
    return uuid.uuid4().hex


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_state_kind_created_at", "state", "kind", "created_at"),
        Index("ix_jobs_sha256_model_sha256", "sha256", "model_sha256"),
        Index("ix_jobs_owner_id_created_at", "owner_id", "created_at"),
        Index("ix_jobs_access_token_hash", "access_token_hash", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    state: Mapped[str] = mapped_column(String(16), default=JobState.queued)
    stage: Mapped[str | None] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)

    kind: Mapped[str] = mapped_column(String(8))
    media_format: Mapped[str] = mapped_column(String(16))
    original_filename: Mapped[str | None] = mapped_column(String(255))
    """The client's filename, sanitised; metadata only, never used as a path."""
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    upload_name: Mapped[str | None] = mapped_column(String(64))
    """Server-generated file name under the uploads folder; None once the upload is deleted."""
    media_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    model_sha256: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the model the job ran with (the workers' own, from the result), or, while queued,
    of the model the live workers served at submission ('unknown' when none or several): the key
    for reusing results (`service.serving_model`)."""
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    reused_from: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """The signed-in user who submitted it; None for anonymous jobs."""
    access_token_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the job's access token (returned once at submission); None in AUTH_MODE=required."""

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def visible_reused_from(self) -> str | None:
        """The source of a reused result, as shown to the job's caller and in its report: only to a
        signed-in owner (reuse stays within one owner, so the source is theirs). Anonymous jobs are
        reused among all anonymous uploaders, so naming the source handed one uploader another's job."""
        return self.reused_from if self.owner_id is not None else None

    @property
    def queue(self) -> str:
        return queue_for_kind(self.kind)
