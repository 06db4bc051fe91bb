"""A transient database error inside a real worker: Celery's own autoretry (exponential backoff,
jitter, TASK_MAX_RETRIES) re-delivers the task, once per retry, and the job then runs once.

The fault is real: PostgreSQL refuses every connection to the test database
(`ALTER DATABASE ... ALLOW_CONNECTIONS false`) while the worker picks up the job, so its claim
fails with psycopg's OperationalError; connections are allowed again once the worker has retried."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from core.queue import ANALYZE_TASK
from tests.conftest import POSTGRES_URL, WorkerProcess, api_client, make_settings, wait_for
from tests.worker.support import face_photo, started, submit, wait_final
from worker.metrics import multiprocess_exposition


@pytest.fixture
def stack() -> str:
    """PostgreSQL + Redis: the server whose connections can be refused and allowed again."""
    return "distributed"


@contextmanager
def connections_refused(database_url: str) -> Iterator[Callable[[], None]]:
    """Refuse new connections to the database and end the open ones; yields a function that allows them again."""
    name = database_url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")

    def allow() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))

    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                           {"n": name})
    try:
        yield allow
    finally:
        allow()
        admin.dispose()


def test_a_transient_database_error_is_retried_by_celery_once_per_retry(
    worker_env: dict[str, str], database_url: str, start_worker: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    env = {**worker_env, "TASK_MAX_RETRIES": "5", "TASK_RETRY_BACKOFF_SECONDS": "1"}
    with api_client(make_settings(env)) as api:
        job_id = submit(api, face_photo(), name="face.jpg")  # queued; no worker runs yet
        api.app.state.database.dispose()  # type: ignore[attr-defined]
        with connections_refused(database_url) as allow:
            worker = started(start_worker, env)
            wait_for(lambda: "Retry in" in worker.log(), timeout=60, what="Celery to schedule a retry")
            allow()
        body = wait_final(api, job_id, worker)
        final_log = worker.log()

    assert body["state"] == "succeeded", body
    assert body["attempts"] == 1, "the failed claims never ran the job"
    retries = len(re.findall(r"job\.analyze\[[^\]]+\] retry: Retry in", final_log))
    received = len(re.findall(r"job\.analyze\[[^\]]+\] received", final_log))
    assert retries >= 1
    assert received == 1 + retries, f"one delivery per retry, no extra message: {received} for {retries} retries"
    assert "nothing to do" not in final_log, "no duplicate delivery"
    # The one instrumented task path counted each run by its outcome (the pool process's sample files).
    runs = multiprocess_exposition(make_settings(env).metrics_dir)
    assert runs.get_sample_value("deepscreen_task_runs_total", {"task": ANALYZE_TASK, "outcome": "retried"}) == retries
    assert runs.get_sample_value("deepscreen_task_runs_total", {"task": ANALYZE_TASK, "outcome": "succeeded"}) == 1
