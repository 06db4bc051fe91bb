"""Regressions found by the load run (python -m bench.load, docs/reliability.md).

200 concurrent uploads got 500s: every upload held a pooled database connection (from the quota
look) while its body streamed, so the pool (5 + 10 overflow) ran dry and requests timed out after
30 s with an unhandled SQLAlchemy TimeoutError. Releasing the connection from a shared worker
thread was not enough: with every thread waiting for a connection, the holders waited for a thread.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from bench.load.servers import free_port
from tests.backend.factories import png_bytes
from tests.conftest import make_settings, wait_for
from tests.servers import serve_api

BOUNDARY = "hold-boundary"
SLOW_UPLOADS = 120
"""More than the pool's 15 connections plus the 40 threads of the API's thread pool."""


def test_slow_uploads_hold_no_database_connection(env: dict[str, str]) -> None:
    settings = make_settings({**env, "UPLOAD_CHUNK_BYTES": "1024"})
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n".encode()
    sockets = []
    tmp: Path = settings.storage_dir / "tmp"
    with serve_api(settings) as url:
        port = int(url.rsplit(":", 1)[1])
        try:
            request = (
                b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n".encode()
                + f"Content-Length: {len(head) + 100_000}\r\n\r\n".encode() + head + png_bytes() + b"\0" * 4096
            )
            sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(SLOW_UPLOADS)]
            for sock in sockets:  # all at once, as a crowd of clients does
                sock.sendall(request)
            # Every upload got past admission and is streaming (before the fix only 15 could, or none
            # for 30 s once every worker thread waited for a connection).
            wait_for(lambda: len(list(tmp.glob("*.part"))) == SLOW_UPLOADS, timeout=20, what="all uploads streaming")
            began = time.monotonic()
            response = httpx.get(f"{url}/api/jobs/{'0' * 32}", timeout=20)
            assert response.status_code == 404, response.text
            assert time.monotonic() - began < 5, "a read waited for a database connection"
        finally:
            for sock in sockets:
                sock.close()


def test_an_unreachable_database_is_503_with_retry_after(env: dict[str, str]) -> None:
    from fastapi.testclient import TestClient

    from backend.main import create_app

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    settings = make_settings({**env, "DATABASE_URL": url})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get(f"/api/jobs/{'0' * 32}")
        upload = client.post("/api/jobs", files={"file": ("a.png", png_bytes(), "image/png")})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "unavailable"
    assert upload.status_code == 503, upload.text


def test_a_crowd_of_simultaneous_uploads_is_accepted(env: dict[str, str]) -> None:
    """More simultaneous uploads than the API has worker threads: each one is answered 202.

    Before the fix the first writer held the upload counter's lock while waiting for a pool
    thread to validate its response, and every pool thread waited for that lock: nothing was
    accepted and every upload got a 503 after 30 s.
    """
    import asyncio

    settings = make_settings(env)
    crowd = 100

    async def upload_all(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=crowd)) as client:
            responses = await asyncio.gather(*[
                client.post("/api/jobs", files={"file": (f"{i}.png", png_bytes(color=(i, 1, 2)), "image/png")})
                for i in range(crowd)
            ])
        return [response.status_code for response in responses]

    with serve_api(settings) as url:
        began = time.monotonic()
        statuses = asyncio.run(upload_all(url))
        elapsed = time.monotonic() - began
    assert statuses == [202] * crowd, sorted(set(statuses))
    assert elapsed < 25, f"{crowd} uploads took {elapsed:.0f} s"


def test_a_crowd_of_simultaneous_cancellations_is_answered(env: dict[str, str]) -> None:
    """The same lock-while-waiting-for-a-thread pattern on DELETE: each cancel writes, then its
    response is validated on a pool thread; more cancels than threads must all be answered 200."""
    import asyncio

    settings = make_settings(env)
    crowd = 80

    async def cancel_all(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=crowd)) as client:
            created = [
                (await client.post("/api/jobs", files={"file": (f"{i}.png", png_bytes(color=(i, 9, 9)), "image/png")}))
                .json() for i in range(crowd)
            ]
            responses = await asyncio.gather(*[
                client.delete(f"/api/jobs/{job['id']}", headers={"X-Job-Token": job["access_token"]})
                for job in created
            ])
        return [response.status_code for response in responses]

    with serve_api(settings) as url:
        began = time.monotonic()
        statuses = asyncio.run(cancel_all(url))
        elapsed = time.monotonic() - began
    assert statuses == [200] * crowd, sorted(set(statuses))
    assert elapsed < 25, f"{crowd} submissions and cancellations took {elapsed:.0f} s"
