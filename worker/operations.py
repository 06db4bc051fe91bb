"""The worker's operational side: the one instrumented path of every task (log context, runs and
duration by task and outcome), job metrics, the worker heartbeat, upload deletion after a job and
the optional metrics server.

Everything here hangs off Celery signals or is called by `worker.tasks` (never the other way
round), so the task code stays about jobs. See docs/operations.md.
"""

from __future__ import annotations

import contextvars
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery import Task, platforms
from celery.signals import (
    celeryd_after_setup,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)
from celery.worker import state as worker_state

from core import workers
from core.db import Database
from core.jobs import repository as jobs_repository
from core.logs import job_id_var, request_id_var
from core.queue import ANALYZE_TASK, REQUEST_ID_HEADER
from core.retention import service as retention
from core.settings import get_settings
from core.workers import WorkerBeat
from worker.metrics import JobMetrics, TaskMetrics, TaskOutcome, multiprocess_exposition

if TYPE_CHECKING:
    from ml.pipeline import Pipeline
    from worker.runner import JobRunner

logger = logging.getLogger(__name__)

MODEL_FAILED_SIGNAL = "SIGUSR2"
"""Sent by a pool process to its main process when the model cannot be loaded."""
_node: dict[str, str] = {}
_consumer_queues: list[str] = []
_job_metrics: JobMetrics | None = None
_heartbeat: WorkerHeartbeat | None = None
_task_metrics: TaskMetrics | None = None
_task_runs: dict[str, _TaskRun] = {}


# --- main process ---------------------------------------------------------------------------


@celeryd_after_setup.connect
def _remember_worker(sender: str, instance: Any, **_kwargs: Any) -> None:
    """The node name and queues (from -Q), inherited by the pool processes for their heartbeat."""
    _node["name"] = str(sender)
    _consumer_queues[:] = sorted(instance.app.amqp.queues.consume_from)
    platforms.signals[MODEL_FAILED_SIGNAL] = _stop_with_failure


def _stop_with_failure(*_args: Any) -> None:
    """A pool process could not load the model: warm shutdown with exit status 1 (a supervisor sees a failure)."""
    worker_state.should_stop = platforms.EX_FAILURE


@worker_init.connect
def _serve_metrics(**_kwargs: Any) -> None:
    """Serve this host's sample files at WORKER_METRICS_PORT (for workers on hosts without an API)."""
    settings = get_settings()
    settings.metrics_dir.mkdir(parents=True, exist_ok=True)
    if settings.WORKER_METRICS_PORT:
        from prometheus_client import start_http_server

        start_http_server(settings.WORKER_METRICS_PORT, registry=multiprocess_exposition(settings.metrics_dir))
        logger.info("worker metrics on :%d/metrics", settings.WORKER_METRICS_PORT)


# --- pool processes ---------------------------------------------------------------------------


def job_metrics() -> JobMetrics:
    global _job_metrics
    if _job_metrics is None:
        _job_metrics = JobMetrics()
    return _job_metrics


def task_metrics() -> TaskMetrics:
    """Created in the pool process on first use, so its samples go to that process's own files."""
    global _task_metrics
    if _task_metrics is None:
        _task_metrics = TaskMetrics()
    return _task_metrics


def refuse_to_start(exc: BaseException) -> None:
    """The model cannot be loaded: stop the whole worker with a clear error instead of failing every job."""
    settings = get_settings()
    logger.critical(
        "deepscreen worker: the model at %s cannot be loaded (%s: %s); the worker shuts down. "
        "Set MODEL_CHECKPOINT to a DeepScreen .safetensors checkpoint and check DEVICE (see docs/operations.md).",
        settings.MODEL_CHECKPOINT, type(exc).__name__, exc,
    )
    os.kill(os.getppid(), getattr(signal, MODEL_FAILED_SIGNAL))  # the main process stops the worker
    os._exit(1)


def start_heartbeat(runner: JobRunner) -> None:
    """Announce this pool process (loaded model, queues, device) until it exits."""
    global _heartbeat
    pipeline = runner.pipeline
    _heartbeat = WorkerHeartbeat(runner.database, pipeline, runner.settings.HEARTBEAT_SECONDS)
    _heartbeat.start()


@worker_process_shutdown.connect
def _stop_heartbeat(**_kwargs: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


class WorkerHeartbeat:
    """Writes this process's `WorkerBeat` every `interval` seconds from a daemon thread."""

    def __init__(self, database: Database, pipeline: Pipeline, interval: float) -> None:
        info = pipeline.model_info
        self.database = database
        self.interval = interval
        self.device = pipeline.device
        self.beat = WorkerBeat(
            worker=f"{_node.get('name') or socket.gethostname()}:{os.getpid()}", hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=list(_consumer_queues) or _configured_queues(), device=str(pipeline.device),
            backend=pipeline.backend, model_id=info.model_id, model_version=info.version, model_sha256=info.sha256,
            onnx_sha256=pipeline.classifier.onnx_sha256,
            started_at=time.time(), beat_at=time.time(),
        )
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        self._write()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self.interval + 5)
        try:
            with self.database.session() as session:
                workers.remove(session, self.beat.worker)
        except Exception:  # its row goes stale and the retention sweep deletes it
            logger.warning("worker heartbeat could not be removed", exc_info=True)

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            self._write()

    def _write(self) -> None:
        self.beat.beat_at = time.time()
        self._gpu_memory()
        try:
            with self.database.session() as session:
                workers.write(session, self.beat)
        except Exception:  # a missed beat is tolerated: it counts as live for STALE_AFTER_SECONDS
            logger.warning("worker heartbeat could not be written", exc_info=True)

    def _gpu_memory(self) -> None:
        if getattr(self.device, "type", None) != "cuda":
            return
        import torch

        self.beat.gpu_memory_allocated_bytes = int(torch.cuda.memory_allocated(self.device))
        self.beat.gpu_memory_reserved_bytes = int(torch.cuda.memory_reserved(self.device))
        self.beat.gpu_memory_total_bytes = int(torch.cuda.get_device_properties(self.device).total_memory)


def _configured_queues() -> list[str]:
    return [q.strip() for q in get_settings().WORKER_QUEUES.split(",") if q.strip()]


# --- per task: the one instrumented path every task runs through ------------------------------


@dataclass(frozen=True)
class _TaskRun:
    started: float
    request_id: contextvars.Token[str | None]
    job_id: contextvars.Token[str | None]


@task_prerun.connect
def _enter_task(task_id: str, task: Task, args: tuple[Any, ...] | None = None, **_kwargs: Any) -> None:
    """Records made while the task runs carry the API request's id and the job id; its clock starts."""
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or (task.request.headers or {}).get(REQUEST_ID_HEADER)
    job_id = args[0] if task.name == ANALYZE_TASK and args else None
    _task_runs[task_id] = _TaskRun(time.perf_counter(), request_id_var.set(request_id), job_id_var.set(job_id))


@task_postrun.connect
def _leave_task(task_id: str, task: Task, state: str | None = None, **_kwargs: Any) -> None:
    """Count the run by task and outcome (Celery's own state: success, failure, retry) and time it."""
    run = _task_runs.pop(task_id, None)
    if run is None:
        return
    try:
        task_metrics().observe(task.name, TaskOutcome.from_celery_state(state), time.perf_counter() - run.started)
    finally:
        request_id_var.reset(run.request_id)
        job_id_var.reset(run.job_id)


def after_job(runner: JobRunner, job_id: str) -> None:
    """Once a job is final: record its metrics and, by default, delete its upload (privacy)."""
    try:
        with runner.database.session() as session:
            job = jobs_repository.get(session, job_id)
            if job is None or not job.is_final:
                return
            job_metrics().observe(job)
            if runner.settings.DELETE_UPLOADS_AFTER_PROCESSING:
                retention.discard_upload(session, job_id, storage=runner.storage)
    except Exception:  # the job itself is done; the retention sweep deletes the upload later
        logger.warning("post-job bookkeeping failed", exc_info=True, extra={"job_id": job_id})
