"""Readiness follows its dependencies: 503 naming PostgreSQL or Redis while it is stopped, 200 once
it is back. The servers are throwaway ones started here (never the shared ones other tests use):
a `redis-server` and a PostgreSQL cluster made with `initdb`, each on a free port.
Required in CI (CI=true); elsewhere skipped when the binaries are missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient

from backend.main import create_app
from tests.backend.health.factories import write_beat
from tests.conftest import alembic_config, make_settings
from tests.servers import free_port, require_binary

IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found and shutil.which(name):
        found = [str(shutil.which(name))]
    if found:
        return str(found[-1])
    message = f"PostgreSQL's `{name}` is not installed (apt-get install postgresql)"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


class ThrowawayRedis:
    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("redis-server", "apt-get install -y redis-server")
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, "redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


class ThrowawayPostgres:
    """A cluster in a temp folder owned by the `postgres` user when run as root (initdb refuses root)."""

    def __init__(self) -> None:
        self.initdb = _postgres_bin("initdb")
        self.pg_ctl = _postgres_bin("pg_ctl")
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="deepscreen-pg-"))
        self.data = self.workdir / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.skip("running as root without runuser: cannot start a throwaway PostgreSQL")
            shutil.chown(self.workdir, "postgres", "postgres")
            self.as_user = [runuser, "-u", "postgres", "--"]
        subprocess.run(
            [*self.as_user, self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
             "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.workdir / "log"),
             "-w", "-t", "60", "start"],
            check=True, capture_output=True, timeout=90,
        )

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _wait_for_port(port: int, what: str) -> None:
    import socket

    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not start on port {port}")
            time.sleep(0.05)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Unused here (the test brings its own PostgreSQL); overrides the sqlite/postgres parameters."""
    return f"sqlite:///{tmp_path / 'unused.db'}"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_server() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    server.start()
    yield server
    server.remove()


def test_readiness_follows_postgres_and_redis(
    env: dict[str, str], postgres_server: ThrowawayPostgres, redis_server: ThrowawayRedis
) -> None:
    command.upgrade(alembic_config(postgres_server.url), "head")
    settings = make_settings({**env, "DATABASE_URL": postgres_server.url, "REDIS_URL": redis_server.url})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        write_beat(settings)

        def ready() -> tuple[int, dict[str, str]]:
            response = client.get("/api/health/ready")
            return response.status_code, response.json()["checks"]

        all_ok = {"database": "ok", "redis": "ok", "storage": "ok", "workers": "ok"}
        assert ready() == (200, all_ok)

        redis_server.stop()
        assert ready() == (503, {**all_ok, "redis": "unreachable"})
        redis_server.start()
        assert ready() == (200, all_ok)

        postgres_server.stop()
        started = time.monotonic()
        # Worker heartbeats are database rows: with the database down, nothing is known of the workers.
        assert ready() == (503, {**all_ok, "database": "unreachable", "workers": "unknown"})
        assert time.monotonic() - started < 5, "a stopped database must not make the probe hang"
        postgres_server.start()
        assert ready() == (200, all_ok)
