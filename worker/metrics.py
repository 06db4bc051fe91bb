"""Prometheus metrics recorded by worker pool processes (the list, with alerts: docs/operations.md).

Workers always run prometheus_client's multiprocess mode (worker/app.py sets PROMETHEUS_MULTIPROC_DIR
before this module is imported): each pool process writes its samples to files in the host-local
folder `Settings.metrics_dir`, which the API's scrape merges, or `python -m worker` serves on
WORKER_METRICS_PORT (`multiprocess_exposition`) for hosts without an API.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from celery import states
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from core.jobs.models import Job, JobState

JOB_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
FACE_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
TASK_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def multiprocess_exposition(directory: Path) -> CollectorRegistry:
    """A registry exposing one host's sample files (the worker's metrics server)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return registry



class JobMetrics:
    """What worker pool processes record about each finished job (in multiprocess mode: worker/app.py)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.succeeded = Counter(
            "deepscreen_jobs_succeeded_total", "Jobs finished with a result, by kind.", ["kind"], registry=registry,
        )
        self.failed = Counter(
            "deepscreen_jobs_failed_total", "Jobs failed by a worker, by kind and error code.",
            ["kind", "error_code"], registry=registry,
        )
        self.canceled = Counter(
            "deepscreen_jobs_canceled_total", "Running jobs stopped because they were canceled, by kind.",
            ["kind"], registry=registry,
        )
        self.queue_wait = Histogram(
            "deepscreen_job_queue_wait_seconds", "From (re-)queueing to a worker claiming the job.",
            ["kind"], registry=registry, buckets=JOB_SECONDS_BUCKETS,
        )
        self.processing = Histogram(
            "deepscreen_job_processing_seconds", "From a worker claiming the job to its final state.",
            ["kind", "state"], registry=registry, buckets=JOB_SECONDS_BUCKETS,
        )
        self.stage = Histogram(
            "deepscreen_job_stage_seconds", "Time in each pipeline stage (probing ... explaining).",
            ["kind", "stage"], registry=registry, buckets=JOB_SECONDS_BUCKETS,
        )
        self.faces = Histogram(
            "deepscreen_job_faces", "Faces classified per analysed job.", ["kind"], registry=registry,
            buckets=FACE_BUCKETS,
        )
        self.batch_size = Histogram(
            "deepscreen_classifier_batch_size", "Face crops per classifier batch.", registry=registry,
            buckets=BATCH_SIZE_BUCKETS,
        )
        self.batch_seconds = Histogram(
            "deepscreen_classifier_batch_seconds",
            "Wall time of each classifier batch, preprocessing included, as the pipeline measured it.",
            registry=registry, buckets=BATCH_SECONDS_BUCKETS,
        )

    def observe(self, job: Job) -> None:
        """Record a finished job from its row (state, timestamps, result with its measured classifier batches)."""
        kind = job.kind
        if job.state == JobState.succeeded:
            self.succeeded.labels(kind).inc()
        elif job.state == JobState.failed:
            self.failed.labels(kind, job.error_code or "unknown").inc()
        elif job.state == JobState.canceled:
            self.canceled.labels(kind).inc()
        if job.started_at is not None:
            if job.enqueued_at is not None:
                self.queue_wait.labels(kind).observe(max(0.0, (job.started_at - job.enqueued_at).total_seconds()))
            if job.finished_at is not None:
                self.processing.labels(kind, job.state).observe((job.finished_at - job.started_at).total_seconds())
        result = job.result or {}
        for stage, seconds in (result.get("stage_seconds") or {}).items():
            if stage != "total":
                self.stage.labels(kind, stage).observe(float(seconds))
        if "faces" in result:
            faces = len(result["faces"])
            self.faces.labels(kind).observe(faces)
        for batch in result.get("classifier_batches") or ():
            self.batch_size.observe(batch["size"])
            self.batch_seconds.observe(batch["seconds"])


class TaskOutcome(StrEnum):
    """How one run of a Celery task ended (from the state Celery reports in `task_postrun`)."""

    succeeded = "succeeded"
    failed = "failed"
    retried = "retried"
    rejected = "rejected"
    ignored = "ignored"

    @classmethod
    def from_celery_state(cls, state: str | None) -> TaskOutcome:
        return _CELERY_OUTCOMES.get(state or "", cls.failed)


_CELERY_OUTCOMES = {
    states.SUCCESS: TaskOutcome.succeeded, states.FAILURE: TaskOutcome.failed, states.RETRY: TaskOutcome.retried,
    states.REJECTED: TaskOutcome.rejected, states.IGNORED: TaskOutcome.ignored,
}


class TaskMetrics:
    """Every Celery task run, recorded the same way by the `task_prerun`/`task_postrun` handlers in
    `worker.operations` (one instrumented path: no task records its own runs)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.runs = Counter(
            "deepscreen_task_runs_total", "Celery task runs by task name and outcome.", ["task", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "deepscreen_task_duration_seconds", "Celery task run time by task name and outcome.",
            ["task", "outcome"], registry=registry, buckets=TASK_SECONDS_BUCKETS,
        )

    def observe(self, task: str, outcome: TaskOutcome, seconds: float) -> None:
        self.runs.labels(task, outcome).inc()
        self.duration.labels(task, outcome).observe(seconds)
