"""The worker healthcheck of docker/Dockerfile and docker-compose.yml, run as a container runtime runs
it against a real worker started as the image starts it (`python -m worker`).

A healthcheck runs in an exec session, whose environment is the container's configured one. Docker
adds HOSTNAME to it; Podman 4.3 (Debian 12) does not, though the container's first process has it
(checked on this host: `podman run --health-cmd 'echo "$(hostname) [$HOSTNAME]"'` printed the id
and `[]`). The former check, `celery inspect ping --destination celery@$HOSTNAME`, then pinged
`celery@`, and Podman reported every worker unhealthy. The check must pass in both environments
and fail once the worker is gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from tests.conftest import TEST_SECRET
from tests.deploy.test_compose import WORKER_SERVICES, compose, image_healthcheck

pytestmark = pytest.mark.redis


def healthchecks() -> dict[str, list[str]]:
    """Every worker healthcheck as Compose or the image states it (`CMD ...` or `CMD-SHELL ...`)."""
    checks = {name: compose()["services"][name]["healthcheck"]["test"] for name in WORKER_SERVICES}
    checks["docker/Dockerfile worker"] = ["CMD", *image_healthcheck("worker")[0]]
    return checks


def run_check(test: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """What the runtime executes: the argv of `CMD`, or `/bin/sh -c` with Compose's `$$` unescaped."""
    kind, *rest = test
    argv = rest if kind == "CMD" else ["/bin/sh", "-c", rest[0].replace("$$", "$")]
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def container_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The container's configured environment: settings, and the image's venv first on PATH; no HOSTNAME."""
    inherited = {k: v for k, v in os.environ.items() if k not in {"HOSTNAME", "PROMETHEUS_MULTIPROC_DIR"}}
    return {
        **inherited,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET,
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deepscreen.db'}",
        "REDIS_URL": redis_url,
        "REAPER_MODE": "off",
        "WORKER_CONCURRENCY": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }


def test_the_worker_healthcheck_passes_for_a_running_worker_and_fails_without_one(
    container_env: dict[str, str], tmp_path: Path
) -> None:
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "worker"], cwd=REPO_ROOT, env=container_env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while " ready." not in log_path.read_text(errors="replace"):
            assert worker.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the worker did not get ready in 180 s"
            time.sleep(0.5)

        environments = {"Podman exec (no HOSTNAME)": container_env,
                        "Docker exec (HOSTNAME set)": {**container_env, "HOSTNAME": socket.gethostname()}}
        for where, test in healthchecks().items():
            for runtime, env in environments.items():
                done = run_check(test, env, timeout=20)
                assert done.returncode == 0, f"{where} under {runtime}: {done.stdout}{done.stderr}"
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)  # warm shutdown of the main process and its pool
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)

    gone = run_check(healthchecks()["worker"], container_env, timeout=20)
    assert gone.returncode != 0, "no worker, no pong"
    assert "did not answer" in gone.stderr
