"""Every Celery task of DeepScreen. They take ids, re-read the row and are idempotent under
`acks_late` redelivery: a task for a job that is not `queued` does nothing. Each run is counted,
timed and given its log context by the signal handlers in `worker.operations`."""

from __future__ import annotations

import logging
import socket

from celery import Task
from celery.signals import worker_process_init

from core.db import Database
from core.jobs import service
from core.jobs.storage import Storage
from core.logs import configure_logging
from core.queue import ANALYZE_TASK, REAP_TASK, RETENTION_TASK, JobQueue
from core.retention import service as retention
from core.settings import get_settings
from worker import operations
from worker.app import celery_app
from worker.runner import TRANSIENT_ERRORS, JobRunner

logger = logging.getLogger(__name__)

_runner: JobRunner | None = None


def get_runner() -> JobRunner:
    """The process's runner, created after the fork so no connection is shared between processes."""
    global _runner
    if _runner is None:
        settings = get_settings()
        storage = Storage(settings.storage_dir)
        storage.ensure_dirs()
        _runner = JobRunner(settings, Database.from_settings(settings), storage, JobQueue(celery_app))
    return _runner


@worker_process_init.connect
def _load_pipeline(**_kwargs: object) -> None:
    """Load the model when the pool process starts, so the first job does not pay for it."""
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    if settings.TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.TORCH_THREADS)
    try:
        get_runner().pipeline  # noqa: B018  (property access loads the model)
    except Exception as exc:
        operations.refuse_to_start(exc)  # logs why and stops the worker: it could only fail jobs
    operations.start_heartbeat(get_runner())


@celery_app.task(
    name=ANALYZE_TASK, bind=True, autoretry_for=TRANSIENT_ERRORS, max_retries=get_settings().TASK_MAX_RETRIES,
    retry_backoff=get_settings().TASK_RETRY_BACKOFF_SECONDS, retry_backoff_max=300, retry_jitter=True,
)
def analyze(self: Task, job_id: str) -> str | None:
    """Analyse one job; on a transient database/broker error Celery's own retry sends the one new
    message (exponential backoff with jitter, at most TASK_MAX_RETRIES). The job goes back to
    `queued` first so that retry can claim it; no message is sent for it here (one used to be, so
    every retry ran twice and TASK_MAX_RETRIES bounded nothing: the fresh message started at 0)."""
    runner = get_runner()
    worker = self.request.hostname or socket.gethostname()
    try:
        state = runner.run(job_id, worker=worker)
    except TRANSIENT_ERRORS as exc:
        logger.warning("transient error (retry %d of %s): %s", self.request.retries + 1, self.max_retries, exc,
                       extra={"job_id": job_id})
        try:
            runner.release_for_retry(job_id)
        except TRANSIENT_ERRORS:  # still down: the retry finds the job running; the reaper re-queues it
            logger.warning("could not put the job back in the queue now", extra={"job_id": job_id})
        raise
    if state is not None:
        operations.after_job(runner, job_id)
    return state.value if state else None


@celery_app.task(name=REAP_TASK)
def reap() -> int:
    """Re-queue or fail jobs whose worker died and re-send lost messages (scheduled by Celery beat)."""
    runner = get_runner()
    with runner.database.session() as session:
        return service.reap_stale_jobs(session, settings=runner.settings, queue=runner.queue)


@celery_app.task(name=RETENTION_TASK)
def sweep() -> dict[str, int]:
    """Delete expired jobs, processed uploads and orphan files (scheduled by Celery beat)."""
    runner = get_runner()
    with runner.database.session() as session:
        report = retention.sweep(session, settings=runner.settings, storage=runner.storage)
    return {"jobs": report.jobs_deleted, "uploads": report.uploads_deleted, "orphans": report.orphans_deleted}
