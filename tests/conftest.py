"""Fixtures shared by the platform tests: settings on a throwaway SQLite or PostgreSQL database,
the real API app, real Celery worker processes, and a model checkpoint.

PostgreSQL and Redis tests run against the servers at DEEPSCREEN_TEST_POSTGRES_URL and
DEEPSCREEN_TEST_REDIS_URL (CI's defaults below). With CI=true an unreachable server fails the
run; elsewhere those tests skip and say why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from alembic import command
from alembic.config import Config
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from starlette import testclient as starlette_testclient

from backend.main import create_app
from core.queue import ANALYZE_TASK, IMAGE_QUEUE, VIDEO_QUEUE
from core.settings import REPO_ROOT, Settings

POSTGRES_URL = os.environ.get("DEEPSCREEN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DEEPSCREEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_SECRET = "test-secret-" + "x" * 32


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    # kombu's SQLAlchemy transport (the embedded broker) uses a loader option SQLAlchemy 2.1 deprecates.
    config.addinivalue_line("filterwarnings", "ignore:The ``noload`` loader strategy:DeprecationWarning")


def data_dir() -> Path:
    """The shared face data: `<repo>/../shared/data`, or DEEPSCREEN_DATA_DIR (tests and tools only)."""
    return Path(os.environ.get("DEEPSCREEN_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def require_server(name: str, url: str, default_port: int) -> None:
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(f"{message} (these tests run in CI)")


def alembic_config(url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test session on the PostgreSQL server, dropped at the end."""
    require_server("PostgreSQL", POSTGRES_URL, 5432)
    name = f"deepscreen_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    command.upgrade(alembic_config(postgres_url), "head")
    return postgres_url


@pytest.fixture
def redis_url() -> str:
    """The Redis server, with DeepScreen's queues emptied so tests do not see each other's messages."""
    require_server("Redis", REDIS_URL, 6379)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.delete("images", "videos", "maintenance", "unacked", "unacked_index", "unacked_mutex")
    client.close()
    return REDIS_URL


def empty_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a SQLite file per test ("sqlite"), or the session's PostgreSQL emptied."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'deepscreen.db'}"
        command.upgrade(alembic_config(url), "head")
        return url
    url: str = request.getfixturevalue("migrated_postgres_url")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE jobs, users, auth_sessions, api_keys, upload_quotas, job_shares, worker_beats")
        )
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database(request.param, request, tmp_path)


@pytest.fixture
def fake_checkpoint(tmp_path: Path) -> Path:
    """Stands in for the model file where no model is loaded (the API never reads it: result reuse
    follows the model the workers report, `core.jobs.service.serving_model`)."""
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"not a real model, never read by the API")
    return path


@pytest.fixture
def env(tmp_path: Path, database_url: str, fake_checkpoint: Path) -> dict[str, str]:
    """Settings as environment variables, so the API under test and worker processes share them."""
    return {
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET,
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "MODEL_CHECKPOINT": str(fake_checkpoint),
        "FRONTEND_DIST": str(tmp_path / "no-frontend"),
        "REAPER_MODE": "off",
        "LOG_LEVEL": "INFO",
    }


def make_settings(env: dict[str, str]) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


def standalone_api_settings(root: Path, **overrides: str) -> Settings:
    """Settings for an API alone under `root`: migrated SQLite, no Redis, no reaper, no worker (jobs
    stay queued) and a stand-in model file, which the API never reads."""
    url = f"sqlite:///{root / 'deepscreen.db'}"
    command.upgrade(alembic_config(url), "head")
    checkpoint = root / "model.safetensors"
    checkpoint.write_bytes(b"never read by the API")
    return make_settings({
        "ENVIRONMENT": "test", "SECRET_KEY": TEST_SECRET, "VAR_DIR": str(root / "var"), "DATABASE_URL": url,
        "REDIS_URL": "", "MODEL_CHECKPOINT": str(checkpoint), "FRONTEND_DIST": str(root / "no-frontend"),
        "REAPER_MODE": "off", **overrides,
    })


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return make_settings(env)


class JobTokens(starlette_testclient.httpx.Auth):  # TestClient runs on httpx or its fork httpx2
    """Remembers the access token of every job this client submits and sends them all (X-Job-Token,
    comma-separated), as the web app does from localStorage: tests about jobs read their own jobs
    the way a real client must. Access-control tests use clients without it."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        if self.tokens and "x-job-token" not in request.headers:
            request.headers["X-Job-Token"] = ",".join(self.tokens[-100:])
        response = yield request
        if response.status_code == 202 and request.method == "POST":
            response.read()
            token = response.json().get("access_token") if response.content.startswith(b"{") else None
            if token:
                self.tokens.append(token)


def grant_job_token(client: TestClient, job: Any) -> Any:
    """Give a job row built by a factory an access token that `client` (an `api_client`) holds, as if
    the client had submitted it; returns the job."""
    from core.accounts.security import new_job_token

    token, job.access_token_hash = new_job_token()
    client.auth.tokens.append(token)  # type: ignore[attr-defined]
    return job


def api_client(settings: Settings) -> TestClient:
    """A TestClient on the real app that keeps its jobs' tokens (use it in a `with` block)."""
    test_client = TestClient(create_app(settings), raise_server_exceptions=False)
    test_client.auth = JobTokens()
    return test_client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with api_client(settings) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def model_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped checkpoint when it exists, else a small random one in the real format."""
    from core.settings import DEFAULT_CHECKPOINT

    if DEFAULT_CHECKPOINT.is_file():
        return DEFAULT_CHECKPOINT
    from ml.model import ModelConfig, build_classifier, save_checkpoint

    config = ModelConfig(version="test-random")
    path = tmp_path_factory.mktemp("model") / "random.safetensors"
    save_checkpoint(build_classifier(config), config, path)
    return path


class WorkerProcess:
    """A real `celery worker` in its own process group, so a test can SIGKILL all of it."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str, app: str = "worker.app") -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", app, "worker",
                "--queues", "images,videos,maintenance", "--concurrency", "1", "--pool", "prefork",
                "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ],
            cwd=REPO_ROOT, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): nothing gets to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown; the main process stops its pool
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts real workers: `start(env)`, or `start(env, app="tests.worker.some_app")` for a
    test-only Celery app module that wraps `worker.app`."""
    workers: list[WorkerProcess] = []

    def start(env: dict[str, str], app: str = "worker.app") -> WorkerProcess:
        name = f"worker{len(workers) + 1}"
        worker = WorkerProcess(env, tmp_path / f"{name}.log", name, app)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def broker_messages(celery: Celery) -> list[tuple[str, str]]:
    """Consume every analysis message waiting on the broker: (job id, queue name)."""
    messages = []
    with celery.connection_for_read() as connection:
        for name in (IMAGE_QUEUE, VIDEO_QUEUE):
            simple = connection.SimpleQueue(name)
            while True:
                try:
                    message = simple.get_nowait()
                except simple.Empty:
                    break
                assert message.headers["task"] == ANALYZE_TASK
                args, _kwargs, _embed = message.decode()
                messages.append((args[0], name))
                message.ack()
            simple.close()
    return messages


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.25, what: str = "") -> object:
    """Poll until `predicate()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)
