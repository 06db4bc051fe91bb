"""The `api` extra alone is enough for the API (docs/deployment.md, the torch-free image): a fresh
virtual environment from requirements/api-test.txt (hash-checked, no torch) starts the API under
uvicorn and passes the API's tests. Slow (about a minute to install, minutes to test): a new
venv with the packages pip finds here (pip.conf: this machine's wheel cache and registry)."""

from __future__ import annotations

import os
import subprocess
import time
import venv
from pathlib import Path

import httpx
import pytest
from alembic import command

from core.settings import REPO_ROOT
from tests.conftest import TEST_SECRET, alembic_config
from tests.servers import free_port

pytestmark = pytest.mark.slow

API_TESTS = [
    "tests/backend", "tests/core",
    "tests/test_import_boundaries.py::test_the_api_process_never_imports_the_ml_runtime",
]


@pytest.fixture(scope="module")
def api_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api-venv")
    venv.create(root, with_pip=True)
    python = root / "bin" / "python"
    started = time.monotonic()
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", REPO_ROOT / "requirements/api-test.txt"],
        check=True, cwd=root, timeout=900,
    )
    # Printed, not asserted: how long the API extra takes to install here.
    print(f"api-test lock installed in {time.monotonic() - started:.1f} s")  # noqa: T201
    return python


def test_the_api_extra_has_no_ml_runtime(api_venv: Path) -> None:
    found = subprocess.run(
        [api_venv, "-c", "import importlib.util as u; print([m for m in ('torch', 'cv2', 'timm', 'onnxruntime', "
         "'sklearn', 'matplotlib') if u.find_spec(m)])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert found == "[]"


def test_the_api_extra_starts_the_api(api_venv: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deepscreen.db'}"
    command.upgrade(alembic_config(url), "head")
    env = {**os.environ, "ENVIRONMENT": "test", "SECRET_KEY": TEST_SECRET, "DATABASE_URL": url, "REDIS_URL": "",
           "VAR_DIR": str(tmp_path / "var"), "REAPER_MODE": "off", "PYTHONPATH": str(REPO_ROOT)}
    port = free_port()
    server = subprocess.Popen(
        [api_venv, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"the API exited: {server.stdout.read() if server.stdout else ''}"
            try:
                live = httpx.get(f"http://127.0.0.1:{port}/api/health/live", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the API did not answer within 60 s"
                time.sleep(0.5)
        missing = httpx.get(f"http://127.0.0.1:{port}/api/jobs/missing", timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_the_api_tests_pass_with_the_api_extra_alone(api_venv: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    run = subprocess.run(
        [api_venv, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--timeout=600", *API_TESTS],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3000,
    )
    print(f"API tests in the api-only venv: {time.monotonic() - started:.1f} s")  # noqa: T201
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]
