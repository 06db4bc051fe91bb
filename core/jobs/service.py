"""The rules about jobs, shared by the API (submit, read, cancel) and the worker (claim, progress,
finish) and the reaper. Functions take a session and never commit: the caller's unit of work does.

State machine (see docs/architecture.md)::

    queued ──claim──▶ running ──▶ succeeded | failed
      ▲                  │  └──(DELETE)──▶ canceled
      └──reaper/retry────┘        queued ──(DELETE)──▶ canceled
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core import workers
from core.db import run_after_commit, run_after_rollback, utcnow
from core.errors import NotFound, public_message
from core.jobs import repository
from core.jobs.models import Job, JobState, new_job_id
from core.jobs.storage import REPORT_NAME, Storage, sanitize_filename
from core.live import publisher as live
from core.live.schemas import JobEvent
from core.queue import JobQueue, queue_for_kind
from core.reports.builder import build_report, write_report
from core.reports.signing import report_signer
from core.settings import Settings
from ml.contracts import AnalysisResult, ErrorCode, MediaInfo, Stage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedMedia:
    """A received upload that passed sniffing and probing, still in its temporary file."""

    temp_path: Path
    size: int
    sha256: str
    info: MediaInfo
    filename: str | None


UNKNOWN_MODEL = "unknown"
"""`Job.model_sha256` of a queued job when no single model serves its queue; replaced by the
model the worker ran it with (`save_result`)."""


def serving_model(session: Session, queue: str, stale_after: float) -> str | None:
    """The SHA-256 of the model every live worker of `queue` serves, from their heartbeats; None
    when no worker is live or they serve different models (a rolling upgrade).

    The workers are the one source of model identity: the API never hashes a checkpoint of its
    own, so it cannot reuse an old model's result while the workers already run a new one.
    """
    models = {beat.model_sha256 for beat in workers.live(session, stale_after=stale_after) if queue in beat.queues}
    return models.pop() if len(models) == 1 else None


# --- API side -------------------------------------------------------------------------------


def submit(
    session: Session, *, media: AcceptedMedia, force: bool, settings: Settings, storage: Storage, queue: JobQueue,
    owner_id: str | None = None, access_token_hash: str | None = None,
) -> Job:
    """Record a job for an accepted upload and send it to its queue after commit.

    The same bytes analysed before by the model the live workers serve reuse that result (a new,
    already succeeded job pointing at the original with `reused_from`) unless `force` is set;
    with no live worker, or workers serving different models, nothing is reused. Only the
    same owner's jobs are reused (anonymous jobs among anonymous ones), so a user's private
    uploads never answer, or reveal themselves to, anyone else.
    """
    now = utcnow()
    model_key = serving_model(session, queue_for_kind(media.info.kind.value), settings.STALE_AFTER_SECONDS)
    job = Job(
        id=new_job_id(),
        kind=media.info.kind.value,
        media_format=media.info.format,
        original_filename=sanitize_filename(media.filename, settings.MAX_FILENAME_LENGTH),
        size_bytes=media.size,
        sha256=media.sha256,
        media_info=media.info.model_dump(mode="json"),
        model_sha256=model_key or UNKNOWN_MODEL,
        force=force,
        owner_id=owner_id,
        access_token_hash=access_token_hash,
        created_at=now,
        updated_at=now,
    )
    previous = None if force or model_key is None else repository.find_reusable(
        session, sha256=media.sha256, model_sha256=model_key, owner_id=owner_id
    )
    if previous is not None:
        result = dict(previous.result or {})
        note = "Result reused: the same file was analysed before by the same model."
        result["notes"] = [*result.get("notes", []), note]
        job.state = JobState.succeeded
        job.stage = Stage.saving
        job.progress = 100.0
        job.reused_from = previous.id
        job.result = result
        job.started_at = job.finished_at = now
        repository.add(session, job)
        storage.copy_artifacts(previous.id, job.id)
        run_after_rollback(session, lambda: storage.delete_artifacts(job.id))
        _rewrite_reused_report(job, storage, settings)
        media.temp_path.unlink(missing_ok=True)
        logger.info("job reused a stored result", extra={"job_id": job.id, "reused_from": previous.id})
        return job

    job.state = JobState.queued
    job.enqueued_at = now
    upload_name = storage.accept_upload(media.temp_path, job.id, media.info.format)
    run_after_rollback(session, lambda: storage.delete_upload(upload_name))
    job.upload_name = upload_name
    repository.add(session, job)
    _send_after_commit(session, queue, job.id, job.kind)
    logger.info("job queued", extra={"job_id": job.id, "kind": job.kind})
    return job


def _rewrite_reused_report(job: Job, storage: Storage, settings: Settings) -> None:
    """The copied report named the original job: sign one for this job, with the original's
    pipeline settings (the analysis is the original's; `job.reused_from` says so)."""
    path = storage.artifact_path(job.id, REPORT_NAME)
    if path is None:
        return
    try:
        result = AnalysisResult.model_validate(job.result)
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        logger.warning("reused result has no current report; not rewritten", extra={"job_id": job.id})
        return
    pipeline = previous.get("pipeline") if isinstance(previous, dict) else None
    document = build_report(job, result, pipeline=pipeline if isinstance(pipeline, dict) else {},
                            finished_at=job.finished_at)
    write_report(path, document, report_signer(settings))


def get(session: Session, job_id: str) -> Job:
    job = repository.get(session, job_id)
    if job is None:
        raise NotFound("No such job.", details={"job_id": job_id})
    return job


def queue_position(session: Session, job: Job) -> int | None:
    return repository.queue_position(session, job) if job.state == JobState.queued else None


def list_page(
    session: Session, *, limit: int, offset: int, owner_id: str | None = None, token_hashes: Sequence[str] = ()
) -> tuple[list[Job], int]:
    """The jobs a caller may see: owned by `owner_id` or matching one of `token_hashes`; none otherwise."""
    items, total = repository.list_page(
        session, limit=limit, offset=offset, owner_id=owner_id, token_hashes=token_hashes
    )
    return list(items), total


def cancel_or_delete(session: Session, job_id: str, *, storage: Storage) -> Job | None:
    """Cancel a queued or running job (returns it), or delete a finished one and its files (returns None).

    A running worker notices the cancellation at its next heartbeat or progress report and stops.
    """
    job = get(session, job_id)
    if not job.is_final and repository.cancel(session, job_id, now=utcnow()):
        logger.info("job canceled", extra={"job_id": job_id})
        return get(session, job_id)
    upload_name = job.upload_name
    repository.remove(session, job_id)
    run_after_commit(session, lambda: storage.delete_job_files(job_id, upload_name))
    logger.info("job deleted", extra={"job_id": job_id})
    return None


# --- worker side ----------------------------------------------------------------------------


def claim(session: Session, job_id: str, *, worker: str) -> Job | None:
    """Mark a queued job running for this worker; None when it is not queued (finished, canceled,
    or already running elsewhere), in which case the task must do nothing."""
    if not repository.claim(session, job_id, worker=worker, now=utcnow()):
        return None
    return repository.get(session, job_id)


def report_progress(session: Session, job_id: str, stage: Stage | None, progress: float | None) -> bool:
    """Record a running job's stage/progress and heartbeat; False when the job is no longer running.

    The one place progress is written: live-update publishing hooks in here.
    """
    values: dict[str, Any] = {}
    if stage is not None:
        values["stage"] = stage.value
    if progress is not None:
        values["progress"] = round(max(0.0, min(100.0, progress)), 1)
    running = repository.touch_running(session, job_id, now=utcnow(), **values)
    if running and values:
        live.publish_after_commit(session, JobEvent(job_id=job_id, state=JobState.running, **values))
    return running


def complete(
    session: Session, job_id: str, result: AnalysisResult, *, finished_at: datetime | None = None
) -> JobState | None:
    """Store a pipeline result: the job succeeded, whatever the verdict.

    A file without a face is a result too (label `inconclusive`, reason `no_face_found`), not a
    failure: the analysis ran and says what it saw, so the API, the web app and the CLI agree.
    `finished_at` is the time the signed report already states. Returns the final state, or None
    when the job stopped running meanwhile (canceled).
    """
    payload = result.model_dump(mode="json")
    values: dict[str, Any] = {"result": payload, "model_sha256": result.model.sha256, "progress": 100.0}
    state = JobState.succeeded
    if repository.finish_running(session, job_id, now=finished_at or utcnow(), state=state, **values):
        live.publish_after_commit(session, JobEvent(job_id=job_id, state=state, progress=100.0))
        return state
    return None


def fail(
    session: Session, job_id: str, *, code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> bool:
    failed = repository.finish_running(
        session, job_id, now=utcnow(), state=JobState.failed,
        error_code=code.value, error_message=public_message(message), error_details=details or {},
    )
    if failed:
        live.publish_after_commit(session, JobEvent(job_id=job_id, state=JobState.failed, error_code=code.value))
    return failed


def release_for_retry(session: Session, job_id: str) -> bool:
    """Put a running job back to `queued` after a transient error, so the task's retry can claim it.
    Sends nothing: the retry is the task's own (Celery's autoretry) message."""
    return repository.requeue_running(session, job_id, now=utcnow())


def reap_stale_jobs(session: Session, *, settings: Settings, queue: JobQueue, now: datetime | None = None) -> int:
    """Recover jobs whose worker died (stale heartbeat) and queued jobs whose message was lost.

    A stale job goes back to the queue until it has run `JOB_MAX_ATTEMPTS` times, then fails.
    Safe to run from several processes at once: every change is a conditional update.
    """
    now = now or utcnow()
    stale_before = now - timedelta(seconds=settings.STALE_AFTER_SECONDS)
    changed = 0
    for job in repository.stale_running(session, stale_before=stale_before):
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            ran_for = (now - job.started_at).total_seconds() if job.started_at else 0.0
            timed_out = ran_for >= settings.JOB_TIME_LIMIT_SECONDS
            code = ErrorCode.timeout if timed_out else ErrorCode.internal
            message = (
                "The analysis ran past its time limit." if timed_out
                else f"The worker running this job stopped responding {job.attempts} times."
            )
            if repository.fail_stale(
                session, job.id, now=now, stale_before=stale_before,
                error_code=code.value, error_message=message, error_details={"attempts": job.attempts},
            ):
                logger.warning("stale job failed", extra={"job_id": job.id, "attempts": job.attempts})
                changed += 1
        elif repository.requeue_running(session, job.id, now=now, stale_before=stale_before):
            logger.warning("stale job re-queued", extra={"job_id": job.id, "attempts": job.attempts})
            _send_after_commit(session, queue, job.id, job.kind)
            changed += 1
    resend_before = now - timedelta(seconds=settings.QUEUED_RESEND_AFTER_SECONDS)
    candidates = repository.unsent_queued(session, before=resend_before)
    waiting: set[str] | None = set()
    if candidates:
        try:
            waiting = queue.waiting_job_ids()
        except Exception:  # broker unreachable: nothing could be sent either; try again next pass
            logger.warning("could not read the broker; lost messages are re-sent at a later pass", exc_info=True)
            candidates = []
    for job in candidates:
        if waiting is not None and job.id in waiting:
            continue  # its message is still in the broker: a backlog, not a loss
        if repository.mark_enqueued(session, job.id, now=now, before=resend_before):
            logger.warning("queued job sent again", extra={"job_id": job.id})
            _send_after_commit(session, queue, job.id, job.kind)
            changed += 1
    try:
        queue.purge_delivered()
    except Exception:  # the embedded broker busy or gone: the next pass purges
        logger.warning("could not purge delivered broker messages", exc_info=True)
    return changed


def _send_after_commit(session: Session, queue: JobQueue, job_id: str, kind: str) -> None:
    run_after_commit(session, lambda: queue.send_analyze(job_id, queue_for_kind(kind)))
