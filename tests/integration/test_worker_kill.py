"""A worker SIGKILLed mid-job must not leave the job `running` forever: its heartbeat goes stale,
the reaper re-queues the job, and another worker finishes it."""

from __future__ import annotations

from collections.abc import Callable

from core.jobs.models import Job
from tests.conftest import WorkerProcess, api_client, make_settings, wait_for
from tests.worker.support import face_video, job, started, submit, wait_final


def test_job_of_a_killed_worker_is_finished_by_another(
    worker_env: dict[str, str], start_worker: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    env = {**worker_env, "PIPELINE_FRAMES": "48", "REAPER_MODE": "embedded"}
    with api_client(make_settings(env)) as api:
        first = started(start_worker, env)
        job_id = submit(api, face_video(), name="clip.mp4")
        wait_for(lambda: job(api, job_id)["state"] == "running", timeout=60, interval=0.2, what="the job to start")

        first.kill()

        assert first.process.returncode == -9
        assert job(api, job_id)["state"] == "running", "nobody has noticed yet"
        second = started(start_worker, env)
        body = wait_final(api, job_id, second, timeout=300)
        with api.app.state.database.session() as session:  # type: ignore[attr-defined]
            finished_by = session.get(Job, job_id).worker  # type: ignore[union-attr]

    assert body["state"] == "succeeded", body
    assert body["attempts"] == 2, "run once by the killed worker, once more after the reaper re-queued it"
    assert finished_by.startswith("worker2@")
    assert body["result"]["media"]["kind"] == "video"
