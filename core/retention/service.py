"""The retention rules, run by the worker after each job and by the periodic sweep.

- An upload is deleted as soon as its job is finished (DELETE_UPLOADS_AFTER_PROCESSING): the
  worker does it right away; the sweep catches the rest (jobs canceled while queued, a worker
  that died between finishing and deleting).
- A finished job older than JOB_TTL_HOURS is deleted: its row (and result), artifacts and upload.
- Files that belong to no job (a crash between writing a file and committing its row) are
  deleted once they are an hour old, partial uploads in `tmp/` once a day old.

Rows change inside the caller's unit of work; files are deleted only after it commits, so a
rolled-back sweep never leaves a row pointing at a deleted file. Safe to run from several
processes at once: deleting twice is a no-op.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core import workers
from core.accounts import service as accounts_service
from core.db import run_after_commit, utcnow
from core.jobs.storage import Storage, remove_stale_files
from core.retention import repository
from core.settings import Settings

logger = logging.getLogger(__name__)

BATCH = 500
"""Rows handled per sweep and kind of work, so one sweep's transaction stays short."""
ORPHAN_GRACE_SECONDS = 3600.0
"""A file without a row is left alone this long: its row may not be committed yet."""
PARTIAL_UPLOAD_GRACE_SECONDS = 3600.0
"""An upload file in `tmp/` untouched this long was cut off by a crash: live uploads write at least every MiB."""


@dataclass
class SweepReport:
    uploads_deleted: int = 0
    jobs_deleted: int = 0
    orphans_deleted: int = 0
    account_rows_deleted: int = 0


def discard_upload(session: Session, job_id: str, *, storage: Storage) -> bool:
    """Forget a finished job's upload and delete the file after commit; False if there was none."""
    name = repository.forget_upload(session, job_id)
    if name is None:
        return False
    run_after_commit(session, lambda: storage.delete_upload(name))
    logger.info("upload deleted after processing", extra={"job_id": job_id})
    return True


def sweep(session: Session, *, settings: Settings, storage: Storage, now: datetime | None = None) -> SweepReport:
    now = now or utcnow()
    report = SweepReport()
    expired_ids: list[str] = []
    if settings.JOB_TTL_HOURS > 0:
        expired = repository.expired(session, finished_before=now - timedelta(hours=settings.JOB_TTL_HOURS),
                                     limit=BATCH)
        files = [(job.id, job.upload_name) for job in expired]
        expired_ids = [job_id for job_id, _ in files]
        if expired_ids:
            repository.remove(session, expired_ids)
            run_after_commit(session, lambda: _delete_files(storage, files))
            report.jobs_deleted = len(expired_ids)
    if settings.DELETE_UPLOADS_AFTER_PROCESSING:
        for job in repository.finished_with_upload(session, limit=BATCH):
            if job.id not in expired_ids and discard_upload(session, job.id, storage=storage):
                report.uploads_deleted += 1
    report.orphans_deleted = _delete_orphans(session, storage, time.time())
    workers.prune(session, now=now.timestamp())
    report.account_rows_deleted = accounts_service.prune(session, now=now)
    if report.jobs_deleted or report.uploads_deleted or report.orphans_deleted:
        logger.info(
            "retention sweep: %d expired jobs, %d uploads, %d orphan files deleted",
            report.jobs_deleted, report.uploads_deleted, report.orphans_deleted,
        )
    return report


def _delete_files(storage: Storage, files: list[tuple[str, str | None]]) -> None:
    for job_id, upload_name in files:
        storage.delete_job_files(job_id, upload_name)


def _delete_orphans(session: Session, storage: Storage, now: float) -> int:
    """Uploads and artifact folders whose job row does not exist (and is not about to)."""
    candidates: dict[str, list[str]] = {}
    for folder, kind in ((storage.uploads_dir, "upload"), (storage.artifacts_root, "artifacts")):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            try:
                if now - path.stat().st_mtime < ORPHAN_GRACE_SECONDS:
                    continue
            except OSError:
                continue
            job_id = path.name.split(".", 1)[0]
            candidates.setdefault(job_id, []).append(f"{kind}:{path.name}")
    removed = 0
    known = repository.existing_ids(session, candidates)
    for job_id, entries in candidates.items():
        if job_id in known:
            continue
        for entry in entries:
            kind, name = entry.split(":", 1)
            if kind == "upload":
                storage.delete_upload(name)
            else:
                storage.delete_artifacts(job_id)
            removed += 1
    return removed + remove_stale_files(storage.tmp_dir, "*.part", older_than=PARTIAL_UPLOAD_GRACE_SECONDS, now=now)
