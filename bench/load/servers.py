"""Throwaway servers on loopback for load and fault runs: a DeepScreen stack (migrated database,
the API under uvicorn, N real Celery worker processes) and, for the distributed stack, a private
redis-server and a private PostgreSQL cluster that fault runs may kill and restart freely.

Never the machine's shared PostgreSQL/Redis: other people's tests use them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from core.settings import REPO_ROOT

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if not found:
        raise RuntimeError(f"`{name}` is not installed")
    return found


class Redis:
    """A private redis-server; `restart(hard=True)` SIGKILLs it (what it held in memory is lost)."""

    def __init__(self, workdir: Path, *, persistence: bool = False) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.persistence = persistence
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [_binary("redis-server"), "--port", str(self.port), "--bind", LOOPBACK, "--dir", str(self.workdir),
                "--save", "", "--appendonly", "yes" if self.persistence else "no"]
        if self.persistence:
            args += ["--appendfsync", "always"]
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: _port_open(self.port), timeout=20, what="redis-server")

    def stop(self, *, hard: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            self.process.wait(timeout=30)

    def restart(self, *, hard: bool = True, down_seconds: float = 0.0) -> None:
        self.stop(hard=hard)
        time.sleep(down_seconds)
        self.start()


class Postgres:
    """A private PostgreSQL cluster (initdb + pg_ctl as the postgres user; initdb refuses root)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/deepscreen"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, _binary("pg_ctl"), "-D", str(self.data), "-l", str(self.workdir / "postgres.log"),
             "-w", "-t", "60", *args],
            check=True, capture_output=True,
        )

    def start(self) -> None:
        if not self.data.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            if self.as_postgres:
                self.workdir.parent.chmod(0o711)  # the postgres user must reach its folder
                shutil.chown(self.workdir, "postgres", "postgres")
            subprocess.run([*self.as_postgres, _binary("initdb"), "-D", str(self.data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
            first = True
        else:
            first = False
        options = f"-p {self.port} -c listen_addresses={LOOPBACK} -k {self.workdir} -c max_connections=200 -c fsync=on"
        self._pg_ctl("-o", options, "start")
        if first:
            subprocess.run([*self.as_postgres, _binary("createdb"), "-h", LOOPBACK, "-p", str(self.port),
                            "-U", "postgres", "deepscreen"], check=True, capture_output=True)

    def stop(self, *, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("-m", mode, "stop")

    def restart(self, *, mode: str = "immediate", down_seconds: float = 0.0) -> None:
        """`immediate` is a crash: no checkpoint, every connection cut; recovery replays the WAL."""
        self.stop(mode=mode)
        time.sleep(down_seconds)
        self.start()


class Stack:
    """A DeepScreen deployment on loopback: migrated database, API (uvicorn) and worker processes.

    `env` holds the settings (environment variables) shared by every process of the stack.
    """

    def __init__(self, workdir: Path, env: dict[str, str], *, workers: int, api_processes: int = 1) -> None:
        self.workdir = workdir
        self.api_processes = api_processes
        self.env = {**os.environ, **env}
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.worker_count = workers
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def migrate(self) -> None:
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO_ROOT, env=self.env,
                       check=True, capture_output=True)

    def start_api(self) -> None:
        log = self._log("api").open("ab")
        self.api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "backend.main:app", "--host", LOOPBACK, "--port", str(self.port),
             "--log-level", "warning", "--timeout-keep-alive", "30", "--backlog", "2048", "--no-proxy-headers",
             "--http", "backend.server:DeadlineHttpProtocol", "--workers", str(self.api_processes)],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def up() -> bool:
            if self.api is not None and self.api.poll() is not None:
                raise RuntimeError(f"the API exited:\n{self._log('api').read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/api/health/live", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=60, what="the API")

    def stop_api(self, *, hard: bool = False) -> None:
        if self.api is not None and self.api.poll() is None:
            os.killpg(self.api.pid, signal.SIGKILL if hard else signal.SIGTERM)
            self.api.wait(timeout=30)

    def start_worker(self) -> subprocess.Popen[bytes]:
        index = len(self.workers) + 1
        log = self._log(f"worker{index}").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--queues", "images,videos,maintenance",
             "--concurrency", "1", "--pool", "prefork", "--hostname", f"load{index}@%h", "--without-gossip",
             "--without-mingle", "--loglevel", "INFO"],
            cwd=REPO_ROOT, env={**self.env, "LOG_LEVEL": "INFO"},  # its log says when the model is loaded
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.workers.append(process)
        wait_until(lambda: "pipeline loaded" in self._log(f"worker{index}").read_text(errors="replace")
                   or process.poll() is not None, timeout=300, what=f"worker {index} to load the model")
        if process.poll() is not None:
            raise RuntimeError(f"worker {index} exited:\n{self._log(f'worker{index}').read_text()[-3000:]}")
        return process

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker's whole process group (main process and pool child)."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # As scripts/run does: every process of the stack (API processes too) shares one wiped
        # prometheus_client multiprocess folder.
        metrics = self.workdir / "metrics"
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir()
        self.env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics))
        self.migrate()
        self.start_api()
        for _ in range(self.worker_count):
            self.start_worker()

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill_worker(process)
        self.stop_api()


def temp_workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
