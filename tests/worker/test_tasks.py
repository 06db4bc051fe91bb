"""The Celery worker as a real process: jobs reach the right final state, cancellation stops a
running job, the soft time limit fails it with `timeout`, and redelivered messages are no-ops."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.db import utcnow
from core.jobs.models import JobState
from core.queue import MAINTENANCE_QUEUE, REAP_TASK
from ml.model import file_sha256
from tests.backend.factories import make_job, png_bytes
from tests.conftest import WorkerProcess, api_client, grant_job_token, make_settings, wait_for
from tests.openapi import schema_errors
from tests.worker.support import face_photo, face_video, job, started, submit, wait_final


@pytest.fixture
def api(worker_env: dict[str, str]) -> Iterator[TestClient]:
    with api_client(make_settings(worker_env)) as client:
        yield client


def test_worker_finishes_jobs_with_the_right_outcome(
    api: TestClient, worker_env: dict[str, str], start_worker: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    worker = started(start_worker, worker_env)
    settings = api.app.state.settings  # type: ignore[attr-defined]

    face_id = submit(api, face_photo(), name="face.jpg")
    blank_id = submit(api, data=png_bytes(200, 200), name="blank.png")
    corrupt = grant_job_token(api, make_job(state=JobState.queued, upload_name="corrupt.png"))
    (settings.storage_dir / "uploads" / "corrupt.png").write_bytes(png_bytes(200, 200)[:120])
    with api.app.state.database.session() as session:  # type: ignore[attr-defined]
        session.add(corrupt)
    api.app.state.job_queue.send_analyze(corrupt.id, "images")  # type: ignore[attr-defined]

    face = wait_final(api, face_id, worker)
    assert face["state"] == "succeeded", face
    assert face["progress"] == 100
    assert face["attempts"] == 1
    assert face["result"]["faces"], "the LFW photo has a face"
    assert face["result"]["model"]["sha256"] == file_sha256(Path(worker_env["MODEL_CHECKPOINT"]))
    assert 0.0 <= face["result"]["score"] <= 1.0
    names = [artifact["name"] for artifact in face["result"]["artifacts"]]
    assert "report.json" in names
    for name in names:
        assert api.get(f"/api/jobs/{face_id}/artifacts/{name}").status_code == 200, name
    # The downloaded report is evidence: it names the file, job and model, and its signature holds.
    report = api.get(face["links"]["report"]).json()
    assert report["score"] == face["result"]["score"]
    assert report["file"]["name"] == "face.jpg"
    assert report["file"]["sha256"] == face["sha256"]
    assert report["job"]["id"] == face_id
    assert report["job"]["finished_at"].replace("+00:00", "Z")[:19] == face["finished_at"][:19]
    assert report["model"]["sha256"] == face["result"]["model"]["sha256"]
    assert report["pipeline"]["frames"] == 8
    assert report["verdict"]
    assert api.post("/api/reports/verify", json=report).json()["valid"] is True
    other = "manipulated" if report["label"] != "manipulated" else "no_signs"
    tampered = api.post("/api/reports/verify", json={**report, "label": other}).json()
    assert (tampered["valid"], tampered["outcome"]) == (False, "altered")

    blank = wait_final(api, blank_id, worker)
    assert blank["state"] == "succeeded", "the analysis ran; finding no face is its result"
    assert blank["error"] is None
    assert blank["result"]["label"] == "inconclusive"
    assert blank["result"]["low_confidence_reasons"] == ["no_face_found"]

    broken = wait_final(api, corrupt.id, worker)
    assert broken["state"] == "failed"
    assert broken["error"]["code"] == "corrupt_media"

    # Real jobs' JSON is what the served OpenAPI says it is (generated clients rely on it).
    document = api.get(api.app.openapi_url).json()  # type: ignore[attr-defined]
    for body in (face, blank, broken):
        assert schema_errors(document, "JobPublic", body) == [], body["id"]

    # A redelivered message for a finished job changes nothing.
    api.app.state.job_queue.send_analyze(face_id, "images")  # type: ignore[attr-defined]
    wait_for(lambda: worker.log().count("nothing to do") >= 1, timeout=60, what="the duplicate to be consumed")
    assert job(api, face_id)["finished_at"] == face["finished_at"]

    # The job.reap task (what Celery beat schedules) re-queues a job whose worker stopped beating.
    orphan = grant_job_token(api, make_job(state=JobState.running, attempts=1, upload_name="orphan.png",
                                           heartbeat_at=utcnow() - timedelta(minutes=10)))
    (settings.storage_dir / "uploads" / "orphan.png").write_bytes(png_bytes(120, 120))
    with api.app.state.database.session() as session:  # type: ignore[attr-defined]
        session.add(orphan)
    api.app.state.job_queue.celery.send_task(REAP_TASK, queue=MAINTENANCE_QUEUE)  # type: ignore[attr-defined]
    reaped = wait_final(api, orphan.id, worker)
    assert reaped["attempts"] == 2
    assert reaped["state"] == "succeeded", "it ran again to a real outcome"
    assert reaped["result"]["low_confidence_reasons"] == ["no_face_found"]


def test_canceling_a_running_job_stops_the_worker(
    worker_env: dict[str, str], start_worker: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    env = {**worker_env, "PIPELINE_FRAMES": "96"}
    with api_client(make_settings(env)) as api:
        worker = started(start_worker, env)
        job_id = submit(api, face_video(), name="clip.mp4")
        wait_for(lambda: job(api, job_id)["state"] == "running", timeout=60, interval=0.2, what="the job to start")

        response = api.delete(f"/api/jobs/{job_id}")

        assert response.status_code == 200
        assert response.json()["state"] == "canceled"
        wait_for(lambda: "canceled while running" in worker.log(), timeout=120, what="the worker to stop the job")
        settings = api.app.state.settings  # type: ignore[attr-defined]
        assert not (settings.storage_dir / "artifacts" / job_id).exists()
        assert job(api, job_id)["state"] == "canceled"
        # The worker is free for the next job.
        next_id = submit(api, data=png_bytes(90, 90), name="next.png")
        assert wait_final(api, next_id, worker)["state"] == "succeeded"  # runs (no face: inconclusive)


def test_soft_time_limit_fails_the_job_with_timeout(
    worker_env: dict[str, str], start_worker: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    env = {**worker_env, "PIPELINE_FRAMES": "96", "JOB_SOFT_TIME_LIMIT_SECONDS": "2", "JOB_TIME_LIMIT_SECONDS": "60"}
    with api_client(make_settings(env)) as api:
        worker = started(start_worker, env)
        job_id = submit(api, face_video(), name="clip.mp4")

        body = wait_final(api, job_id, worker)

        assert body["state"] == "failed"
        assert body["error"]["code"] == "timeout"
        assert body["error"]["details"]["job_soft_time_limit_seconds"] == 2
