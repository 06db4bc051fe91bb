"""A transient database error inside a real worker: Celery's own autoretry (exponential backoff,
jitter, TASK_MAX_RETRIES) re-delivers the task, once per retry, and the job then runs once.

Two faults. A real one: PostgreSQL refuses every connection to the test database
(`ALTER DATABASE ... ALLOW_CONNECTIONS false`) while the worker picks up the job, so its claim
fails with psycopg's OperationalError; connections are allowed again once the worker has retried.
And one injected after the claim, in the analysis step (`tests/worker/faulty_app.py`), where the
old code's double send showed: it put the job back *and sent a fresh message* (which starts again
at retry 0), then `self.retry` sent another, so each failure doubled the messages and
TASK_MAX_RETRIES bounded nothing. The claim-time fault cannot show that (the job was never running,
so nothing was re-queued or re-sent); these count deliveries in the worker's log."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.queue import ANALYZE_TASK
from tests.conftest import POSTGRES_URL, WorkerProcess, api_client, make_settings, wait_for
from tests.worker.support import face_photo, job, started, submit, wait_final
from worker.metrics import multiprocess_exposition

FAULTY_APP = "tests.worker.faulty_app"
_RECEIVED = re.compile(r"job\.analyze\[[^\]]+\] received")
_RETRIED = re.compile(r"job\.analyze\[[^\]]+\] retry: Retry in")


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


@pytest.mark.parametrize("stack", [pytest.param("distributed", marks=[pytest.mark.postgres, pytest.mark.redis])])
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
    retries = len(_RETRIED.findall(final_log))
    received = len(_RECEIVED.findall(final_log))
    assert retries >= 1
    assert received == 1 + retries, f"one delivery per retry, no extra message: {received} for {retries} retries"
    assert "nothing to do" not in final_log, "no duplicate delivery"
    # The one instrumented task path counted each run by its outcome (the pool process's sample files).
    runs = multiprocess_exposition(make_settings(env).metrics_dir)
    assert runs.get_sample_value("deepscreen_task_runs_total", {"task": ANALYZE_TASK, "outcome": "retried"}) == retries
    assert runs.get_sample_value("deepscreen_task_runs_total", {"task": ANALYZE_TASK, "outcome": "succeeded"}) == 1


def faulty_worker_env(
    worker_env: dict[str, str], tmp_path: Path, *, failing_runs: int, max_retries: int
) -> dict[str, str]:
    return {
        **worker_env, "TASK_MAX_RETRIES": str(max_retries), "TASK_RETRY_BACKOFF_SECONDS": "1",
        "FAULT_FAILING_RUNS": str(failing_runs), "FAULT_COUNTER_FILE": str(tmp_path / "pipeline-runs"),
    }


def test_an_error_in_the_analysis_step_sends_one_message_per_retry(
    worker_env: dict[str, str], tmp_path: Path, start_worker: Callable[..., WorkerProcess],
) -> None:
    env = faulty_worker_env(worker_env, tmp_path, failing_runs=2, max_retries=5)
    with api_client(make_settings(env)) as api:
        worker = started(lambda e: start_worker(e, app=FAULTY_APP), env)
        job_id = submit(api, face_photo(), name="face.jpg")
        body = wait_final(api, job_id, worker)
        time.sleep(4)  # room for any extra message to arrive (the backoff is 1-2 s)
        final_log = worker.log()

    assert body["state"] == "succeeded", body
    assert len(_RETRIED.findall(final_log)) == 2, "one retry per injected failure"
    assert len(_RECEIVED.findall(final_log)) == 3, "the first delivery and one per retry, no extra message"
    assert int((tmp_path / "pipeline-runs").read_text()) == 3, "the analysis ran twice in vain, then once"
    assert "nothing to do" not in final_log, "no duplicate delivery"


def test_retries_stop_after_task_max_retries(
    worker_env: dict[str, str], tmp_path: Path, start_worker: Callable[..., WorkerProcess],
) -> None:
    env = faulty_worker_env(worker_env, tmp_path, failing_runs=1000, max_retries=2)
    with api_client(make_settings(env)) as api:
        worker = started(lambda e: start_worker(e, app=FAULTY_APP), env)
        job_id = submit(api, face_photo(), name="face.jpg")
        wait_for(lambda: len(_RECEIVED.findall(worker.log())) >= 3, timeout=60, what="the first delivery and 2 retries")
        time.sleep(8)  # a fourth delivery would come within the backoff (1, 2, 4 s)
        final_log = worker.log()
        body = job(api, job_id)

    assert len(_RECEIVED.findall(final_log)) == 3, f"TASK_MAX_RETRIES=2 bounds the deliveries:\n{final_log[-3000:]}"
    assert int((tmp_path / "pipeline-runs").read_text()) == 3
    assert body["state"] == "queued", "put back for the reaper (off here), never run a fourth time"
