"""Runs one job: claim the row, run the pipeline with a progress callback, store the outcome.

Each step is its own short unit of work (session), so progress is visible to the API while the
pipeline runs. A heartbeat thread keeps `heartbeat_at` fresh even inside a long stage; the
reaper re-queues a job whose heartbeat stops (its worker died). Cancellation is a state
change made by the API; the worker notices it at the next heartbeat or progress report.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import InterfaceError, OperationalError

from core.db import Database, utcnow
from core.jobs import service
from core.jobs.models import Job, JobState
from core.jobs.storage import REPORT_NAME, Storage
from core.queue import JobQueue
from core.reports.builder import build_report, write_report
from core.reports.signing import report_signer
from core.settings import Settings
from ml.contracts import AnalysisError, AnalysisResult, Artifact, ArtifactKind, ErrorCode, Stage

if TYPE_CHECKING:
    from ml.pipeline import Pipeline

logger = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL_SECONDS = 0.5
"""Progress within one stage is written at most this often; stage changes always are."""


TRANSIENT_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, BrokerOperationalError)
"""Database or broker briefly unreachable: the task is retried with backoff, the job re-queued."""


class JobCanceled(Exception):
    """The job stopped being `running` (canceled by a client) while this worker ran it."""


def build_pipeline(settings: Settings) -> Pipeline:
    """The pipeline as configured by settings; imported here so that importing the worker stays light."""
    from ml.config import PipelineConfig
    from ml.pipeline import Pipeline

    config = PipelineConfig(
        frames=settings.PIPELINE_FRAMES,
        backend=settings.PIPELINE_BACKEND,  # type: ignore[arg-type]
        aggregation=settings.PIPELINE_AGGREGATION,
        explain_top_k=settings.PIPELINE_EXPLAIN_TOP_K,
        explain_budget_seconds=settings.PIPELINE_EXPLAIN_BUDGET_SECONDS,
        limits=settings.media_limits,
    )
    device = None if settings.DEVICE == "auto" else settings.DEVICE
    return Pipeline(config, device=device, checkpoint=settings.MODEL_CHECKPOINT)


class Heartbeat:
    """Refreshes the job's heartbeat every HEARTBEAT_SECONDS; sets `canceled` when the job left `running`."""

    def __init__(self, database: Database, job_id: str, interval: float) -> None:
        self.database = database
        self.job_id = job_id
        self.interval = interval
        self.canceled = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                with self.database.session() as session:
                    if not service.report_progress(session, self.job_id, None, None):
                        self.canceled.set()
                        return
            except Exception:  # a missed beat is tolerated; the reaper allows several
                logger.warning("heartbeat failed", exc_info=True, extra={"job_id": self.job_id})


class JobRunner:
    """One per worker process: owns the database engine, the storage and the loaded pipeline."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        storage: Storage,
        queue: JobQueue,
        pipeline_factory: Callable[[Settings], Pipeline] = build_pipeline,
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self.queue = queue
        self._pipeline_factory = pipeline_factory
        self._pipeline: Pipeline | None = None
        self._pipeline_lock = threading.Lock()

    @property
    def pipeline(self) -> Pipeline:
        with self._pipeline_lock:
            if self._pipeline is None:
                started = time.perf_counter()
                self._pipeline = self._pipeline_factory(self.settings)
                logger.info("pipeline loaded in %.1f s", time.perf_counter() - started)
            return self._pipeline

    def run(self, job_id: str, *, worker: str) -> JobState | None:
        """Run the job if it can be claimed; returns its final state, or None when there was nothing to do."""
        with self.database.session() as session:
            job = service.claim(session, job_id, worker=worker)
        if job is None:
            logger.info("job not claimable (already running, finished or canceled); nothing to do",
                        extra={"job_id": job_id})
            return None
        extra = {"job_id": job_id}
        logger.info("job started (attempt %d)", job.attempts, extra=extra)
        if job.upload_name is None:
            return self._fail(job_id, ErrorCode.internal, "The uploaded file is no longer stored.")
        artifacts_dir = self.storage.artifacts_dir(job_id)
        shutil.rmtree(artifacts_dir, ignore_errors=True)  # leftovers of a run whose worker died
        artifacts_dir.mkdir(parents=True)
        with Heartbeat(self.database, job_id, self.settings.HEARTBEAT_SECONDS) as heartbeat:
            try:
                progress = self._progress_callback(job_id, heartbeat.canceled)
                result = self.pipeline.run(
                    self.storage.upload_path(job.upload_name), progress=progress, artifacts_dir=artifacts_dir
                )
                progress(Stage.saving, 99.0)
                if heartbeat.canceled.is_set():
                    raise JobCanceled
                return self._save(job, result, artifacts_dir)
            except JobCanceled:
                logger.info("job canceled while running; stopped", extra=extra)
                self.storage.delete_artifacts(job_id)
                return JobState.canceled
            except AnalysisError as exc:
                logger.info("job failed: %s (%s)", exc.code, exc.message, extra=extra)
                return self._fail(job_id, exc.code, exc.message, exc.details)
            except SoftTimeLimitExceeded:
                logger.warning("job hit its soft time limit", extra=extra)
                return self._fail(
                    job_id, ErrorCode.timeout,
                    f"The analysis took longer than {self.settings.JOB_SOFT_TIME_LIMIT_SECONDS} s.",
                    {"limit": "job_soft_time_limit_seconds",
                     "job_soft_time_limit_seconds": self.settings.JOB_SOFT_TIME_LIMIT_SECONDS},
                )
            except TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                logger.error("job failed with an unexpected error", exc_info=exc, extra=extra)
                self.storage.delete_artifacts(job_id)
                return self._fail(job_id, ErrorCode.internal, "The analysis failed unexpectedly; the error was logged.")

    def release_for_retry(self, job_id: str) -> None:
        with self.database.session() as session:
            service.release_for_retry(session, job_id)

    def _progress_callback(self, job_id: str, canceled: threading.Event) -> Callable[[Stage, float], None]:
        last: dict[str, object] = {"stage": None, "at": 0.0}

        def report(stage: Stage, percent: float) -> None:
            if canceled.is_set():
                raise JobCanceled
            now = time.monotonic()
            if stage == last["stage"] and now - float(last["at"]) < PROGRESS_MIN_INTERVAL_SECONDS:  # type: ignore[arg-type]
                return
            last.update(stage=stage, at=now)
            with self.database.session() as session:
                running = service.report_progress(session, job_id, stage, percent)
            if not running:
                canceled.set()
                raise JobCanceled

        return report

    def _save(self, job: Job, result: AnalysisResult, artifacts_dir: Path) -> JobState | None:
        job_id = job.id
        report = Artifact(name=REPORT_NAME, kind=ArtifactKind.report)
        result = result.model_copy(update={"artifacts": [*result.artifacts, report]})
        finished_at = utcnow()
        document = build_report(job, result, pipeline=self._pipeline_settings(), finished_at=finished_at)
        write_report(artifacts_dir / REPORT_NAME, document, report_signer(self.settings))
        with self.database.session() as session:
            state = service.complete(session, job_id, result, finished_at=finished_at)
        if state is None:
            logger.info("job was canceled before its result was saved", extra={"job_id": job_id})
            self.storage.delete_artifacts(job_id)
            return JobState.canceled
        logger.info("job %s (score=%s, label=%s)", state, result.score, result.label, extra={"job_id": job_id})
        return state

    def _pipeline_settings(self) -> dict[str, object]:
        """The pipeline's configuration as the report states it (no local paths)."""
        config = getattr(self.pipeline, "config", None)
        if config is None:
            return {}
        return config.model_dump(mode="json", exclude={"onnx_path"})  # type: ignore[no-any-return]

    def _fail(
        self, job_id: str, code: ErrorCode, message: str, details: dict[str, object] | None = None
    ) -> JobState:
        with self.database.session() as session:
            service.fail(session, job_id, code=code, message=message, details=details)
        return JobState.failed
