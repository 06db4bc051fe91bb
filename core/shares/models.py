"""The `job_shares` table: one row per share link; the link's token is stored only as its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow


class JobShare(Base):
    __tablename__ = "job_shares"
    __table_args__ = (
        Index("ix_job_shares_job_id", "job_id"),
        Index("ix_job_shares_token_hash", "token_hash", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    """Deleting the job (by its owner or the retention sweep) deletes its links."""
    token_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """The signed-in user who made it; None when a job-token holder did."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
