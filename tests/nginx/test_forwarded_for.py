"""A client rotating a forged X-Forwarded-For through the shipped nginx, to the API started as the
Docker image starts it: per-address limits still hold (uvicorn had been told to trust every
proxy, so the client-written left-most entry became the client: 14 of 14 logins got through)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backend.factories import png_bytes
from tests.backend.test_served import served_env  # noqa: F401 - the fixture
from tests.servers import Nginx, ServedApi, documented_api_commands, free_port, serve_nginx

CLIENT_ADDRESS = "127.0.0.2"
"""The client connects from another loopback address than nginx's, so the two can be told apart."""


@pytest.fixture
def stack(served_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Nginx, ServedApi]]:  # noqa: F811
    port = free_port()
    env = {
        **served_env, "AUTH_MODE": "optional", "LOGIN_RATE_LIMIT": "3", "UPLOAD_RATE_LIMIT": "3",
        "REQUEST_RATE_LIMIT": "0", "TRUSTED_PROXIES": '["127.0.0.1/32"]',
        "PASSWORD_HASH_MEMORY_KIB": "1024", "PASSWORD_HASH_TIME_COST": "1",
    }
    api = ServedApi(documented_api_commands(port)["docker"], env, tmp_path / "api.log", port)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html>")
    try:
        with serve_nginx(tmp_path / "nginx", api_addresses=[f"127.0.0.1:{port}"], root=site) as nginx:
            yield nginx, api
    finally:
        api.stop()


def test_a_rotated_forwarded_for_header_does_not_escape_the_per_address_limits(stack: tuple[Nginx, ServedApi]) -> None:
    nginx, _api = stack
    transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS)
    with httpx.Client(base_url=nginx.url, transport=transport, timeout=30) as client:
        logins = [
            client.post("/api/auth/login", json={"email": f"u{i}@example.com", "password": "wrong password"},
                        headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(6)
        ]
        uploads = [
            client.post("/api/jobs", files={"file": ("a.png", png_bytes(), "image/png")},
                        headers={"X-Forwarded-For": f"198.51.100.{i}, 10.0.0.{i}"}).status_code
            for i in range(6)
        ]
    assert logins[:3] == [401, 401, 401], logins
    assert logins[3:] == [429, 429, 429], logins
    assert uploads[:3] == [202, 202, 202], uploads
    assert uploads[3:] == [429, 429, 429], uploads
