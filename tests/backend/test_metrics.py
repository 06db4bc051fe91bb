"""/api/metrics: requests by route template, job gauges from the database, worker gauges from
heartbeats, storage gauges and worker-written samples merged from the multiprocess folder (what
the worker's own metrics record: tests/worker/test_metrics.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from core.db import utcnow
from core.settings import Settings
from tests.backend.factories import make_job, png_bytes
from tests.backend.health.factories import write_beat
from tests.conftest import api_client, make_settings
from worker.metrics import JobMetrics

TOKEN = "metrics-test-token"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: TestClient) -> tuple[str, Samples]:
    response = client.get("/api/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.text, parse(response.text)


def settings_for(env: dict[str, str], **extra: str) -> Settings:
    return make_settings({**env, "METRICS_TOKEN": TOKEN, **extra})


def test_requests_by_route_template_and_jobs_from_the_database(env: dict[str, str]) -> None:
    settings = settings_for(env)
    with api_client(settings) as client:
        job_id = client.post("/api/jobs", files={"file": ("a.png", png_bytes())}).json()["id"]
        client.get(f"/api/jobs/{job_id}")
        client.get(f"/api/jobs/{job_id}")
        waiting = make_job(kind="video", media_format="mp4", created_at=utcnow() - timedelta(seconds=90))
        with client.app.state.database.session() as session:  # type: ignore[attr-defined]
            session.add(waiting)

        text, samples = scrape(client)

    assert samples[("deepscreen_http_requests_total",
                    frozenset({"method": "GET", "route": "/api/jobs/{job_id}", "status": "200"}.items()))] == 2
    assert job_id not in text, "raw paths never become labels"
    assert samples[("deepscreen_jobs_submitted_total", frozenset({"kind": "image", "reused": "false"}.items()))] == 1
    assert samples[("deepscreen_jobs", frozenset({"kind": "image", "state": "queued"}.items()))] == 1
    assert samples[("deepscreen_queue_depth", frozenset({"queue": "images"}.items()))] == 1
    assert samples[("deepscreen_queue_depth", frozenset({"queue": "videos"}.items()))] == 1
    assert 89 <= samples[("deepscreen_queue_oldest_age_seconds", frozenset({"queue": "videos"}.items()))] < 200
    assert samples[("deepscreen_http_request_duration_seconds_count",
                    frozenset({"method": "POST", "route": "/api/jobs"}.items()))] == 1


def test_workers_model_and_gpu_from_heartbeats_and_storage(env: dict[str, str]) -> None:
    settings = settings_for(env, STALE_AFTER_SECONDS="30")
    with api_client(settings) as client:
        write_beat(settings, worker="gpu@a:1", queues=["videos"], device="cuda:0", backend="torch",
                   gpu_memory_allocated_bytes=1000, gpu_memory_reserved_bytes=2000, gpu_memory_total_bytes=8000)
        write_beat(settings, worker="cpu@b:2", queues=["images", "videos"])
        write_beat(settings, worker="dead@c:3", age=120, model_version="0.9")
        (settings.storage_dir / "uploads" / "x.png").write_bytes(b"0" * 1000)

        _, samples = scrape(client)

    assert samples[("deepscreen_workers", frozenset())] == 2
    assert samples[("deepscreen_queue_consumers", frozenset({"queue": "videos"}.items()))] == 2
    assert samples[("deepscreen_queue_consumers", frozenset({"queue": "images"}.items()))] == 1
    versions = {dict(labels)["version"] for (name, labels) in samples if name == "deepscreen_model_info"}
    assert versions == {"1.2.3"}, "a dead worker's model does not count"
    gpu = {dict(labels)["type"]: v for (name, labels), v in samples.items()
           if name == "deepscreen_worker_gpu_memory_bytes"}
    assert gpu == {"allocated": 1000, "reserved": 2000, "total": 8000}
    assert samples[("deepscreen_worker_heartbeat_age_seconds", frozenset())] < 5
    assert samples[("deepscreen_storage_used_bytes", frozenset())] >= 1000
    assert samples[("deepscreen_storage_free_bytes", frozenset())] > 0


def test_samples_written_by_other_processes_are_merged(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What worker pool processes write in multiprocess mode (one file per pid) shows up in the API's scrape."""
    settings = settings_for(env)
    settings.metrics_dir.mkdir(parents=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(settings.metrics_dir))
    for pid in (1001, 1002):  # two pool processes
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda pid=pid: pid))
        metrics = JobMetrics()
        metrics.failed.labels("video", "corrupt_media").inc(3)
        metrics.faces.labels("video").observe(7)
    monkeypatch.undo()
    assert sorted(p.name for p in settings.metrics_dir.iterdir()) == ["counter_1001.db", "counter_1002.db",
                                                                      "histogram_1001.db", "histogram_1002.db"]
    with api_client(settings) as client:
        _, samples = scrape(client)

    failed = frozenset({"kind": "video", "error_code": "corrupt_media"}.items())
    assert samples[("deepscreen_jobs_failed_total", failed)] == 6
    assert samples[("deepscreen_job_faces_count", frozenset({"kind": "video"}.items()))] == 2
    assert samples[("deepscreen_job_faces_sum", frozenset({"kind": "video"}.items()))] == 14


def test_the_start_script_names_and_wipes_the_multiprocess_folder_before_anything_starts(tmp_path: Path) -> None:
    """prometheus_client's docs: set PROMETHEUS_MULTIPROC_DIR before the library is imported and
    wipe the folder between runs. scripts/run does both before it starts the worker and the API
    (the lines are run here as the script has them)."""
    import re
    import subprocess
    import sys

    from core.settings import REPO_ROOT

    script = (REPO_ROOT / "scripts" / "run").read_text()
    block = re.search(r"^PROMETHEUS_MULTIPROC_DIR=.*?^rm -rf .*?$", script, re.MULTILINE | re.DOTALL)
    assert block, "scripts/run sets and wipes PROMETHEUS_MULTIPROC_DIR"
    assert script.index(block[0]) < script.index("python -m worker"), "before any process starts"
    stale = tmp_path / "var" / "metrics" / "counter_99999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a dead process's samples")
    venv = str(Path(sys.executable).parent.parent)
    shell = block[0].replace(".venv/", venv + "/") + '\necho "$PROMETHEUS_MULTIPROC_DIR"'
    env = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(["bash", "-c", shell], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                               timeout=60, check=True)
    assert completed.stdout.strip() == str(tmp_path / "var" / "metrics")
    assert (tmp_path / "var" / "metrics").is_dir()
    assert not stale.exists()

