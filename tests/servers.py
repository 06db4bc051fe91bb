"""Real servers on loopback ports for tests that need more than TestClient: the API under
uvicorn (streams are not buffered) and nginx (the Debian package) with DeepScreen's config.

nginx is required in CI (CI=true); elsewhere tests that need it skip with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from backend.main import create_app
from core.settings import REPO_ROOT, Settings

NGINX_CONF = REPO_ROOT / "nginx" / "deepscreen.conf"
IN_CI = os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary(name: str, hint: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).is_file()), None)
    if path:
        return path
    message = f"`{name}` is not installed ({hint})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


@contextmanager
def serve_api(settings: Settings) -> Iterator[str]:
    """The real app under uvicorn in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def render_nginx_conf(*, api_addresses: list[str], listen: str, root: Path, log_dir: Path) -> str:
    """The shipped config with only what a deployment changes replaced; fails if any is missing,
    so the test cannot silently drift from the file."""
    text = NGINX_CONF.read_text()
    replacements = [
        (r"^\s*server api:8000 [^;]*;$", "\n".join(f"    server {address};" for address in api_addresses)),
        (r"^\s*listen 80;$", f"    listen {listen};"),
        (r"^\s*root /usr/share/nginx/html;$", f"    root {root};"),
        (r"/var/log/nginx/access\.log", str(log_dir / "access.log")),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count == 1, f"nginx/deepscreen.conf no longer has exactly one match for {pattern!r}"
    return text


class Nginx:
    """nginx in the foreground with a generated main config around nginx/deepscreen.conf."""

    def __init__(self, workdir: Path, *, api_addresses: list[str], root: Path) -> None:
        self.binary = require_binary("nginx", "apt-get install -y nginx")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for name in ("logs", "tmp"):
            (workdir / name).mkdir(parents=True, exist_ok=True)
        site = render_nginx_conf(
            api_addresses=api_addresses, listen=f"127.0.0.1:{self.port}", root=root, log_dir=workdir / "logs"
        )
        (workdir / "deepscreen.conf").write_text(site)
        tmp = workdir / "tmp"
        # As root, workers must run as root too: pytest's temp folders are private to their owner.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (workdir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {workdir / 'nginx.pid'};\n"
            f"error_log {workdir / 'logs' / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            "    sendfile on;\n"
            f"    client_body_temp_path {tmp / 'body'};\n    proxy_temp_path {tmp / 'proxy'};\n"
            f"    fastcgi_temp_path {tmp / 'fastcgi'};\n    uwsgi_temp_path {tmp / 'uwsgi'};\n"
            f"    scgi_temp_path {tmp / 'scgi'};\n"
            f"    include {workdir / 'deepscreen.conf'};\n"
            "}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        # -e: the error log before the config is read (the default path may not be writable).
        prefix = ["-p", str(self.workdir), "-e", str(self.workdir / "logs" / "error.log")]
        return [self.binary, *prefix, "-c", str(self.workdir / "nginx.conf"), *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command("-g", "daemon off;"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited: {stderr}")
            try:
                httpx.get(f"{self.url}/", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def error_log(self) -> str:
        path = self.workdir / "logs" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def serve_nginx(workdir: Path, *, api_addresses: list[str], root: Path) -> Iterator[Nginx]:
    nginx = Nginx(workdir, api_addresses=api_addresses, root=root)
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr
    nginx.start()
    try:
        yield nginx
    finally:
        nginx.stop()


def documented_api_commands(port: int) -> dict[str, str]:
    """Every way the repository starts the API, read from the files that do it (so a test of them
    cannot drift from them), as shell commands bound to 127.0.0.1:`port` using this interpreter's
    environment: `scripts/run`, the Docker image's CMD, and the replicas in docs/scaling.md."""
    bin_dir = str(Path(sys.executable).parent)
    run_line = re.search(r"^\.venv/bin/(uvicorn backend\.main:app .*?) &$", (REPO_ROOT / "scripts" / "run").read_text(),
                         re.MULTILINE)
    cmd = re.search(r'^CMD \["sh", "-c", "(.*)"\]$', (REPO_ROOT / "docker" / "Dockerfile").read_text(), re.MULTILINE)
    scaling = re.search(r"^\.venv/bin/(uvicorn backend\.main:app .*)$", (REPO_ROOT / "docs" / "scaling.md").read_text(),
                        re.MULTILINE)
    assert run_line, "scripts/run no longer starts uvicorn"
    assert cmd, "docker/Dockerfile's CMD no longer starts uvicorn"
    assert scaling, "docs/scaling.md no longer starts uvicorn"
    docker = cmd[1].replace("--host 0.0.0.0 --port 8000", f"--host 127.0.0.1 --port {port}")
    assert str(port) in docker, "the Dockerfile's CMD no longer binds 0.0.0.0:8000"
    replicas = scaling[1].replace("--host 0.0.0.0 --port 8000", f"--host 127.0.0.1 --port {port}")
    return {
        "scripts/run": f'HOST=127.0.0.1; PORT={port}; PATH="{bin_dir}:$PATH"; exec {run_line[1]}',
        "docker": f'PATH="{bin_dir}:$PATH" exec sh -c "{docker}"',
        "docs/scaling.md": f'PATH="{bin_dir}:$PATH" exec {replicas}',
    }


class ServedApi:
    """The API as a real process started by one of `documented_api_commands`, its output in a file."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            ["bash", "-c", command], cwd=REPO_ROOT, env={**os.environ, **env}, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the API exited ({self.process.returncode}):\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the API did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
