"""The worker's task metrics: every Celery state a run can end in has its outcome label."""

from __future__ import annotations

import pytest
from celery import states
from prometheus_client import CollectorRegistry

from worker.metrics import TaskMetrics, TaskOutcome


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
