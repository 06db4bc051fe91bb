"""End to end: a real clip uploaded through the API, analysed by a real worker process running
the real pipeline (the shipped checkpoint when present, else a random one in the real format)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import WorkerProcess, api_client, make_settings
from tests.worker.support import face_video, started, submit, wait_final


@pytest.mark.slow
def test_real_clip_is_analysed_to_succeeded(
    worker_env: dict[str, str], start_worker: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    env = {key: value for key, value in worker_env.items() if not key.startswith("PIPELINE_")}  # real defaults
    with api_client(make_settings(env)) as api:
        worker = started(start_worker, env)
        clip = face_video()
        job_id = submit(api, clip, name=clip.name)

        body = wait_final(api, job_id, worker, timeout=400)
        report = api.get(f"/api/jobs/{job_id}/artifacts/report.json")
        overlays = [a["name"] for a in body["result"]["artifacts"] if a["kind"] == "gradcam"]
        overlay = api.get(f"/api/jobs/{job_id}/artifacts/{overlays[0]}") if overlays else None
        again = api.post("/api/jobs", files={"file": (clip.name, clip.read_bytes())}).json()

    assert body["state"] == "succeeded", body
    result = body["result"]
    assert result["media"]["kind"] == "video"
    assert len(result["frames"]) == 32
    assert result["faces"], "the FaceForensics++ clip shows a face"
    assert result["tracks"]
    assert 0.0 <= result["score"] <= 1.0
    assert result["label"] in {"no_signs", "inconclusive", "manipulated"}
    assert set(result["stage_seconds"]) >= {"probing", "sampling", "detecting", "classifying", "aggregating"}
    assert report.status_code == 200
    assert report.json()["score"] == result["score"]
    assert overlay is not None
    assert overlay.status_code == 200
    assert overlay.headers["content-type"] == "image/png"
    assert again["state"] == "succeeded"
    assert again["reused_from"] is None, "an anonymous uploader is not told the source job"
