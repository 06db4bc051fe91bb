"""nginx/deepscreen.conf under a real nginx (Debian package) in front of the real API: the
config passes `nginx -t`, serves the app with its headers, and carries requests end to end."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.main import create_app
from core.settings import Settings
from tests.backend.factories import png_bytes
from tests.conftest import standalone_api_settings
from tests.openapi import schema_errors
from tests.servers import NGINX_CONF, Nginx, serve_api, serve_nginx

APP_JS = "console.log('deepscreen');\n" * 400


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Nginx, Settings]]:
    """API (SQLite, no worker: jobs stay queued) behind nginx serving a stand-in web app."""
    tmp = tmp_path_factory.mktemp("nginx-stack")
    settings = standalone_api_settings(tmp, MAX_UPLOAD_BYTES=str(1024 * 1024))
    site = tmp / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>DeepScreen test app</title><div id=root></div>")
    (site / "assets" / "app-1234.js").write_text(APP_JS)
    with serve_api(settings) as api_url, serve_nginx(
        tmp / "nginx", api_addresses=[api_url.removeprefix("http://")], root=site
    ) as nginx:
        yield nginx, settings


def test_the_shipped_upload_limit_matches_the_apis(stack: tuple[Nginx, Settings]) -> None:
    match = re.search(r"^\s*client_max_body_size (\d+)m;", NGINX_CONF.read_text(), flags=re.MULTILINE)
    assert match, "nginx/deepscreen.conf must set client_max_body_size in megabytes"
    nginx_limit = int(match.group(1)) * 1024 * 1024
    api_limit = Settings(_env_file=None).MAX_UPLOAD_BYTES  # type: ignore[call-arg]
    # nginx lets the API's limit (plus the multipart envelope) through, so the API answers with its own error.
    assert api_limit < nginx_limit <= api_limit + 2 * 1024 * 1024


def test_serves_the_app_with_security_headers_and_spa_routes(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    for path in ("/", "/jobs/0123456789abcdef", "/history"):
        response = httpx.get(nginx.url + path)
        assert response.status_code == 200, path
        assert "DeepScreen test app" in response.text
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "server" not in response.headers or "nginx/" not in response.headers["server"]
    assert httpx.get(nginx.url + "/assets/missing.js").status_code == 404


def test_compresses_and_caches_hashed_assets(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    with httpx.stream("GET", nginx.url + "/assets/app-1234.js", headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert len(raw) < len(APP_JS) / 10
    assert gzip.decompress(raw).decode() == APP_JS
    assert "max-age=31536000" in response.headers["cache-control"]


def test_an_upload_goes_through_to_the_api_and_the_job_is_readable(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    response = httpx.post(nginx.url + "/api/jobs", files={"file": ("face.png", png_bytes(), "image/png")}, timeout=30)
    assert response.status_code == 202, response.text
    created = response.json()
    # nginx's request id reaches the API and comes back, so logs on both sides can be joined.
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.headers["x-content-type-options"] == "nosniff"

    job = httpx.get(nginx.url + created["links"]["self"], headers={"X-Job-Token": created["access_token"]}, timeout=10)
    assert job.status_code == 200
    assert job.json()["id"] == created["id"]
    assert job.json()["state"] == "queued"
    assert job.json()["original_filename"] == "face.png"


def test_api_errors_pass_through_in_the_api_shape(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    response = httpx.post(nginx.url + "/api/jobs", files={"file": ("notes.txt", b"just text\n" * 10, "text/plain")})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media"
    missing = httpx.get(nginx.url + "/api/jobs/" + "0" * 32)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_an_upload_over_nginxs_limit_gets_a_json_413(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    # Only the declared length is sent: nginx must refuse on the header, before reading any body.
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 250000000\r\nConnection: close\r\n\r\n"
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    error = json.loads(body)
    assert error["error"]["code"] == "too_large"
    assert re.fullmatch(r"[0-9a-f]{32}", error["request_id"])


def test_metrics_are_not_exposed_through_nginx(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    assert httpx.get(nginx.url + "/api/metrics").status_code == 404


def test_live_updates_stream_through_unbuffered(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    created = httpx.post(nginx.url + "/api/jobs", files={"file": ("b.png", png_bytes(color=(1, 2, 3)), "image/png")})
    job_id, token = created.json()["id"], created.json()["access_token"]
    started = time.monotonic()
    # The job stays queued (no worker), so the stream stays open: the first event must arrive at
    # once, not when nginx's buffer fills or the stream ends.
    with httpx.stream("GET", f"{nginx.url}/api/jobs/{job_id}/events", params={"token": token}, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
    assert time.monotonic() - started < 5
    assert f'"job_id":"{job_id}"' in first
    assert '"state":"queued"' in first


def test_an_api_that_is_down_answers_a_json_503(tmp_path: Path, stack: tuple[Nginx, Settings]) -> None:
    _, settings = stack
    from tests.servers import free_port

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("x")
    with serve_nginx(tmp_path / "nginx", api_addresses=[f"127.0.0.1:{free_port()}"], root=site) as nginx:
        response = httpx.get(nginx.url + "/api/jobs")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    # nginx's own error pages are valid answers of the API's contract, code included.
    document = create_app(settings).openapi()
    assert schema_errors(document, "ErrorResponse", response.json()) == []
    for code in re.findall(r'"code":"(\w+)"', NGINX_CONF.read_text()):
        assert code in document["components"]["schemas"]["ApiErrorCode"]["enum"], code


class UpgradeEchoServer:
    """A minimal upstream that accepts an HTTP Upgrade (as a WebSocket endpoint would) and then
    echoes raw bytes, recording the request headers nginx forwarded."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.request_head = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            while b"\r\n\r\n" not in self.request_head:
                self.request_head += connection.recv(4096)
            connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            while data := connection.recv(4096):
                connection.sendall(data)

    def close(self) -> None:
        self.listener.close()


def test_websocket_upgrades_are_tunnelled_to_the_api(tmp_path: Path) -> None:
    upstream = UpgradeEchoServer()
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("x")
    try:
        with serve_nginx(tmp_path / "nginx", api_addresses=[f"127.0.0.1:{upstream.port}"], root=site) as nginx:
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as sock:
                sock.sendall(
                    b"GET /api/jobs/abc/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                )
                head = b""
                while b"\r\n\r\n" not in head:
                    head += sock.recv(4096)
                assert head.startswith(b"HTTP/1.1 101"), head
                sock.sendall(b"ping through the tunnel")
                echoed = b""
                while len(echoed) < len(b"ping through the tunnel"):
                    echoed += sock.recv(4096)
    finally:
        upstream.close()
    assert echoed == b"ping through the tunnel"
    forwarded = upstream.request_head.lower()
    assert b"upgrade: websocket" in forwarded
    assert b"connection: upgrade" in forwarded


def test_job_tokens_in_query_strings_stay_out_of_the_access_log(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    httpx.get(f"{nginx.url}/api/jobs/{'0' * 32}?token=secret-job-token-123")
    log = ""
    for _ in range(50):  # nginx writes the line when the request ends
        log = (nginx.workdir / "logs" / "access.log").read_text()
        if f"/api/jobs/{'0' * 32}" in log:
            break
        time.sleep(0.05)
    assert f"/api/jobs/{'0' * 32}" in log
    assert "secret-job-token-123" not in log


def test_the_api_docs_and_schema_come_through_nginx(stack: tuple[Nginx, Settings]) -> None:
    nginx, _ = stack
    page = httpx.get(nginx.url + "/api/docs")
    schema = httpx.get(nginx.url + "/api/openapi.json")
    bundle = httpx.get(nginx.url + "/api/docs/assets/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    old = httpx.get(nginx.url + "/docs")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "swagger-ui-bundle.js" in page.text
    assert "<script>" not in page.text, "an inline script would be blocked by the CSP"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "DeepScreen API"
    assert bundle.status_code == 200
    assert bundle.headers["content-encoding"] == "gzip"
    assert old.status_code == 308
    assert old.headers["location"].endswith("/api/docs")
