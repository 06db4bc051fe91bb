"""The worker's metrics (worker/metrics.py): what JobMetrics records for a finished job, and task runs
by outcome (every Celery state a run can end in has its label)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import states
from prometheus_client import CollectorRegistry

from core.db import utcnow
from core.jobs.models import JobState
from tests.backend.factories import make_job, make_result
from worker.metrics import JobMetrics, TaskMetrics, TaskOutcome


@pytest.mark.parametrize(
    ("state", "outcome"),
    [(states.SUCCESS, TaskOutcome.succeeded), (states.FAILURE, TaskOutcome.failed),
     (states.RETRY, TaskOutcome.retried), (states.REJECTED, TaskOutcome.rejected),
     (states.IGNORED, TaskOutcome.ignored), (None, TaskOutcome.failed)],
)
def test_each_celery_state_is_one_outcome(state: str | None, outcome: TaskOutcome) -> None:
    assert TaskOutcome.from_celery_state(state) is outcome


def test_a_run_is_counted_and_timed_by_task_and_outcome() -> None:
    registry = CollectorRegistry()
    metrics = TaskMetrics(registry)

    metrics.observe("job.analyze", TaskOutcome.retried, 0.2)
    metrics.observe("job.analyze", TaskOutcome.succeeded, 3.0)

    def get(name: str, outcome: str) -> float | None:
        return registry.get_sample_value(name, {"task": "job.analyze", "outcome": outcome})

    assert get("deepscreen_task_runs_total", "retried") == 1
    assert get("deepscreen_task_runs_total", "succeeded") == 1
    assert get("deepscreen_task_duration_seconds_sum", "succeeded") == 3.0
    assert get("deepscreen_task_runs_total", "failed") is None


def test_job_metrics_for_one_finished_job() -> None:
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    now = utcnow()
    result = make_result().model_dump(mode="json")
    result["faces"] = [{}] * 20
    result["stage_seconds"] = {"probing": 0.1, "detecting": 1.0, "classifying": 0.8, "total": 2.0}
    result["classifier_batches"] = [{"size": 16, "seconds": 0.5}, {"size": 3, "seconds": 0.25},
                                    {"size": 1, "seconds": 0.05}]  # a frame's two faces split over a batch edge
    job = make_job(state=JobState.succeeded, enqueued_at=now - timedelta(seconds=10),
                   started_at=now - timedelta(seconds=4), finished_at=now, result=result)

    metrics.observe(job)

    def get(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert get("deepscreen_jobs_succeeded_total", kind="image") == 1
    assert get("deepscreen_job_queue_wait_seconds_sum", kind="image") == 6
    assert get("deepscreen_job_processing_seconds_sum", kind="image", state="succeeded") == 4
    assert get("deepscreen_job_stage_seconds_sum", kind="image", stage="detecting") == 1.0
    assert get("deepscreen_job_stage_seconds_count", kind="image", stage="total") is None
    assert get("deepscreen_job_faces_sum", kind="image") == 20
    assert get("deepscreen_classifier_batch_size_count") == 3  # the batches as they ran, not 16 + 4
    assert get("deepscreen_classifier_batch_size_sum") == 20
    assert get("deepscreen_classifier_batch_seconds_count") == 3
    assert get("deepscreen_classifier_batch_seconds_sum") == 0.8
    assert get("deepscreen_classifier_batch_seconds_bucket", le="0.05") == 1  # measured, not 0.8 / 3 each


def test_a_failed_job_without_result_counts_its_error_code() -> None:
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    job = make_job(state=JobState.failed, error_code="corrupt_media", started_at=utcnow(), finished_at=utcnow())

    metrics.observe(job)

    failed = {"kind": "image", "error_code": "corrupt_media"}
    assert registry.get_sample_value("deepscreen_jobs_failed_total", failed) == 1
    assert registry.get_sample_value("deepscreen_job_faces_count", {"kind": "image"}) is None
