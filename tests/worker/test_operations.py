"""Operations with a real worker process: /api/metrics after real jobs, readiness following the
worker's heartbeat, uploads deleted once processed, the retention task, request ids joined across
API and worker logs, and a worker that cannot load its model refusing to start."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.db import utcnow
from core.jobs.models import Job, JobState
from core.queue import ANALYZE_TASK, MAINTENANCE_QUEUE, RETENTION_TASK
from core.settings import REPO_ROOT
from tests.backend.factories import make_job, png_bytes
from tests.conftest import WorkerProcess, api_client, make_settings, wait_for
from tests.servers import free_port
from tests.worker.support import face_photo, job, started, wait_final

METRICS_TOKEN = "operations-test-token"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: TestClient) -> Samples:
    response = api.get("/api/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return parse(response.text)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def stack() -> str:
    """The embedded stack only: what is tested here does not depend on the broker or database kind
    (readiness against PostgreSQL and Redis: tests/backend/health/test_dependencies.py)."""
    return "embedded"


def test_metrics_health_retention_and_logs_with_a_real_worker(
    worker_env: dict[str, str], start_worker: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    metrics_port = free_port()
    worker_env = {**worker_env, "METRICS_TOKEN": METRICS_TOKEN, "WORKER_METRICS_PORT": str(metrics_port)}
    settings = make_settings(worker_env)
    with api_client(settings) as api:
        assert api.get("/api/health/ready").json()["checks"]["workers"] == "no_recent_heartbeat"
        worker = started(start_worker, worker_env)
        wait_for(lambda: api.get("/api/health/ready").status_code == 200, timeout=30, what="readiness")
        before = scrape(api)

        response = api.post("/api/jobs", files={"file": ("face.jpg", face_photo().read_bytes())},
                            headers={"X-Request-ID": "ops-request-1"})
        assert response.status_code == 202, response.text
        face_id = response.json()["id"]
        blank_id = api.post("/api/jobs", files={"file": ("blank.png", png_bytes(200, 200))}).json()["id"]
        face = wait_final(api, face_id, worker)
        blank = wait_final(api, blank_id, worker)
        after = scrape(api)

        # Counters moved by exactly what the two jobs did.
        assert face["state"] == "succeeded"
        assert blank["state"] == "succeeded"
        assert blank["result"]["low_confidence_reasons"] == ["no_face_found"]
        assert moved(after, before, "deepscreen_jobs_submitted_total", kind="image", reused="false") == 2
        assert moved(after, before, "deepscreen_jobs_succeeded_total", kind="image") == 2
        assert moved(after, before, "deepscreen_job_queue_wait_seconds_count", kind="image") == 2
        assert moved(after, before, "deepscreen_job_processing_seconds_count", kind="image", state="succeeded") == 2
        for body in (face, blank):
            for stage in set(body["result"]["stage_seconds"]) - {"total"}:
                runs = sum(stage in b["result"]["stage_seconds"] for b in (face, blank))
                assert moved(after, before, "deepscreen_job_stage_seconds_count", kind="image", stage=stage) == runs
        faces = len(face["result"]["faces"])
        assert faces >= 1
        assert moved(after, before, "deepscreen_job_faces_count", kind="image") == 2
        assert moved(after, before, "deepscreen_job_faces_sum", kind="image") == faces
        batches = face["result"]["classifier_batches"]  # the blank image has no face, so no batch
        assert blank["result"]["classifier_batches"] == []
        assert len(batches) == math.ceil(faces / 16)
        assert moved(after, before, "deepscreen_classifier_batch_size_sum") == faces
        assert moved(after, before, "deepscreen_classifier_batch_size_count") == len(batches)
        assert moved(after, before, "deepscreen_classifier_batch_seconds_count") == len(batches)
        assert moved(after, before, "deepscreen_classifier_batch_seconds_sum") == pytest.approx(
            sum(b["seconds"] for b in batches))
        assert value(after, "deepscreen_workers") == 1
        assert value(after, "deepscreen_queue_consumers", queue="images") == 1
        model = face["result"]["model"]
        info = [labels for (name, labels), v in after.items() if name == "deepscreen_model_info" and v == 1]
        assert [dict(labels)["version"] for labels in info] == [model["version"]]
        assert dict(info[0])["sha256"] == model["sha256"]
        assert value(after, "deepscreen_http_requests_total", method="POST", route="/api/jobs", status="202") >= 2
        assert value(after, "deepscreen_queue_depth", queue="images") == 0
        # Every task run is counted and timed by task and outcome (worker.operations' signal handlers).
        assert moved(after, before, "deepscreen_task_runs_total", task=ANALYZE_TASK, outcome="succeeded") == 2
        assert moved(after, before, "deepscreen_task_duration_seconds_count",
                      task=ANALYZE_TASK, outcome="succeeded") == 2
        analysis_seconds = moved(after, before, "deepscreen_task_duration_seconds_sum",
                                 task=ANALYZE_TASK, outcome="succeeded")
        processing_seconds = moved(after, before, "deepscreen_job_processing_seconds_sum", kind="image",
                                   state="succeeded")
        assert analysis_seconds >= processing_seconds * 0.9, "a task run lasts at least its job's processing"
        # The worker's own metrics server (WORKER_METRICS_PORT) serves the same worker samples.
        served = parse(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text)
        assert value(served, "deepscreen_jobs_succeeded_total", kind="image") == value(
            after, "deepscreen_jobs_succeeded_total", kind="image")

        # Uploads are deleted once processed; the results and artifacts stay.
        with api.app.state.database.session() as session:  # type: ignore[attr-defined]
            assert [session.get(Job, i).upload_name for i in (face_id, blank_id)] == [None, None]
        assert list((settings.storage_dir / "uploads").iterdir()) == []
        assert api.get(f"/api/jobs/{face_id}/artifacts/report.json").status_code == 200

        # The worker's log lines are JSON and carry the API request's id with the job id.
        lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
        joined = [line for line in lines if line.get("request_id") == "ops-request-1"]
        assert joined
        assert all(line["job_id"] == face_id for line in joined)
        assert any(line["message"].startswith("job started") for line in joined)

        # The retention task (what Celery beat schedules) deletes an expired job with its files, not a fresh one.
        expired = make_job(state=JobState.succeeded, finished_at=utcnow() - timedelta(hours=200),
                           updated_at=utcnow() - timedelta(hours=200), upload_name="expired.png")
        (settings.storage_dir / "uploads" / "expired.png").write_bytes(b"x")
        (settings.storage_dir / "artifacts" / expired.id).mkdir(parents=True)
        (settings.storage_dir / "artifacts" / expired.id / "report.json").write_text("{}")
        with api.app.state.database.session() as session:  # type: ignore[attr-defined]
            session.add(expired)
        api.app.state.job_queue.celery.send_task(RETENTION_TASK, queue=MAINTENANCE_QUEUE)  # type: ignore[attr-defined]

        def expired_gone() -> bool:
            with api.app.state.database.session() as session:  # type: ignore[attr-defined]
                return session.get(Job, expired.id) is None

        wait_for(expired_gone, timeout=60, what="the retention task to delete the expired job")
        # Counted once the task returns (task_postrun), just after the row is gone.
        wait_for(lambda: value(scrape(api), "deepscreen_task_runs_total", task=RETENTION_TASK, outcome="succeeded"),
                 timeout=10, what="the retention task's run to be counted")
        assert value(scrape(api), "deepscreen_task_runs_total", task=RETENTION_TASK, outcome="succeeded") == 1
        assert not (settings.storage_dir / "artifacts" / expired.id).exists()
        assert not (settings.storage_dir / "uploads" / "expired.png").exists()
        assert job(api, face_id)["state"] == "succeeded"
        assert (settings.storage_dir / "artifacts" / face_id / "report.json").is_file()

        # A stopped worker removes its heartbeat: readiness names the missing workers.
        worker.stop()
        response = api.get("/api/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["workers"] == "no_recent_heartbeat"


def test_worker_that_cannot_load_its_model_refuses_to_start(tmp_path: Path, env: dict[str, str]) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(os.urandom(4096))
    worker_env = {**os.environ, **env, "MODEL_CHECKPOINT": str(broken)}
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--queues", "images", "--concurrency", "1",
         "--pool", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        cwd=REPO_ROOT, env=worker_env, capture_output=True, text=True, timeout=240,
    )

    assert done.returncode == 1
    assert "cannot be loaded" in done.stdout + done.stderr
    assert "broken.safetensors" in done.stdout + done.stderr
    assert not list((Path(worker_env["VAR_DIR"]) / "storage" / "workers").glob("*.json"))
