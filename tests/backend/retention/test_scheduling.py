"""The sweep runs where the reaper runs: the API's embedded loop, or Celery beat's schedule."""

from __future__ import annotations

from datetime import timedelta

from core.db import utcnow
from core.jobs.models import Job, JobState
from core.queue import MAINTENANCE_QUEUE, RETENTION_TASK, create_celery
from tests.backend.factories import make_job
from tests.conftest import api_client, make_settings, wait_for


def test_the_embedded_loop_sweeps_expired_jobs(env: dict[str, str]) -> None:
    settings = make_settings({**env, "REAPER_MODE": "embedded", "REAPER_INTERVAL_SECONDS": "0.2",
                              "RETENTION_INTERVAL_SECONDS": "0.2"})
    long_ago = utcnow() - timedelta(hours=settings.JOB_TTL_HOURS + 1)
    expired = make_job(state=JobState.failed, finished_at=long_ago, updated_at=long_ago)
    fresh = make_job(state=JobState.failed, finished_at=utcnow())
    with api_client(settings) as client:
        database = client.app.state.database  # type: ignore[attr-defined]
        with database.session() as session:
            session.add_all([expired, fresh])

        def swept() -> bool:
            with database.session() as session:
                return session.get(Job, expired.id) is None

        wait_for(swept, timeout=20, what="the embedded loop to sweep")
        with database.session() as session:
            assert session.get(Job, fresh.id) is not None


def test_beat_schedules_the_sweep_on_the_maintenance_queue(env: dict[str, str]) -> None:
    settings = make_settings({**env, "REAPER_MODE": "beat", "RETENTION_INTERVAL_SECONDS": "123"})
    celery = create_celery(settings)

    entry = celery.conf.beat_schedule["retention-sweep"]

    assert entry["task"] == RETENTION_TASK
    assert entry["schedule"] == timedelta(seconds=123)
    assert celery.conf.task_routes[RETENTION_TASK] == {"queue": MAINTENANCE_QUEUE}
    assert "retention-sweep" not in create_celery(make_settings(env)).conf.beat_schedule
