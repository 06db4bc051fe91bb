"""Helpers for tests that drive the API in-process and real worker processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import WorkerProcess, data_dir, wait_for

FINAL = {"succeeded", "failed", "canceled"}


def started(start_worker: Callable[[dict[str, str]], WorkerProcess], env: dict[str, str]) -> WorkerProcess:
    """A worker whose pool process has loaded the model and is consuming."""
    worker = start_worker(env)

    def ready() -> bool:
        if worker.process.poll() is not None:
            pytest.fail(f"worker exited with {worker.process.returncode}:\n{worker.log()[-4000:]}")
        return " ready." in worker.log() and "pipeline loaded" in worker.log()

    wait_for(ready, timeout=180, interval=0.5, what="the worker to start")
    return worker


def submit(client: TestClient, path: Path | None = None, data: bytes | None = None, name: str = "f") -> str:
    content = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
    response = client.post("/api/jobs", files={"file": (name, content)})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def job(client: TestClient, job_id: str) -> dict[str, Any]:
    return client.get(f"/api/jobs/{job_id}").json()  # type: ignore[no-any-return]


def wait_final(client: TestClient, job_id: str, worker: WorkerProcess, timeout: float = 240) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        body = job(client, job_id)
        return body if body["state"] in FINAL else None

    try:
        return wait_for(final, timeout=timeout, interval=0.5, what=f"job {job_id} to finish")  # type: ignore[return-value]
    except BaseException:
        print(worker.log()[-6000:])  # noqa: T201 - shown by pytest only when the test fails
        raise


def face_photo() -> Path:
    path = data_dir() / "lfw-faceswap" / "real" / "real_1003.jpg"
    if not path.is_file():
        pytest.skip(f"shared face data not found at {path}")
    return path


def face_video() -> Path:
    path = data_dir() / "videos" / "fake" / "ffpp_deepfakes_003_000.mp4"
    if not path.is_file():
        pytest.skip(f"shared face data not found at {path}")
    return path
