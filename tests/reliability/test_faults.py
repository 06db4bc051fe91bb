"""Fast fault tests for CI; the long fault runs (worker SIGKILL mid-video, Redis and PostgreSQL
restarts under load, API restarts during uploads) are `python -m bench.reliability`.

- An upload cut off mid-stream (the client's connection dies) leaves no temporary file and no row,
  against the real server (uvicorn), not TestClient.
- A broker that is down when a job is submitted: the job is still recorded (202) and its lost
  message is sent again by the reaper once a private redis-server is back.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bench.load.servers import Redis
from core.jobs.models import Job
from core.settings import Settings
from tests.backend.factories import png_bytes
from tests.conftest import api_client, broker_messages, make_settings, wait_for
from tests.servers import require_binary, serve_api

BOUNDARY = "fault-boundary"


def job_rows(settings: Settings) -> int:
    from core.db import Database

    database = Database(settings.database_url)
    try:
        with database.session() as session:
            return int(session.scalar(select(func.count()).select_from(Job)) or 0)
    finally:
        database.dispose()


def test_upload_cut_off_mid_stream_leaves_no_file_and_no_row(env: dict[str, str]) -> None:
    settings = make_settings({**env, "UPLOAD_CHUNK_BYTES": "65536"})
    data = png_bytes() + os.urandom(2_000_000)  # only the first half is ever sent
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n").encode()
    with serve_api(settings) as url:
        port = int(url.rsplit(":", 1)[1])
        tmp = settings.storage_dir / "tmp"
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(
                    b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n".encode()
                    + f"Content-Length: {len(head) + len(data) + 64}\r\n\r\n".encode()
                    + head + data[: len(data) // 2]
                )
                wait_for(lambda: any(tmp.glob("*.part")), timeout=20, what="the partial upload on disk")
            # the socket is closed here, mid-body
        wait_for(lambda: not any(tmp.glob("*.part")), timeout=20, what="the partial uploads to be removed")
        assert job_rows(settings) == 0

        import httpx

        response = httpx.post(f"{url}/api/jobs", files={"file": ("ok.png", png_bytes(), "image/png")}, timeout=30)
        assert response.status_code == 202, "the server still takes uploads"
    assert job_rows(settings) == 1


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Redis]:
    require_binary("redis-server", "apt-get install -y redis-server")
    redis = Redis(tmp_path / "redis")
    redis.start()
    yield redis
    redis.stop(hard=True)


def test_job_submitted_while_the_broker_is_down_is_sent_once_it_is_back(
    env: dict[str, str], private_redis: Redis
) -> None:
    settings = make_settings({
        **env, "REDIS_URL": private_redis.url, "REQUEST_RATE_LIMIT": "600", "UPLOAD_RATE_LIMIT": "20",
        "REAPER_MODE": "embedded", "REAPER_INTERVAL_SECONDS": "0.5",
        "QUEUED_RESEND_AFTER_SECONDS": "2", "HEARTBEAT_SECONDS": "1", "STALE_AFTER_SECONDS": "5",
    })
    with api_client(settings) as api:
        private_redis.stop(hard=True)
        began = time.monotonic()
        response = api.post("/api/jobs", files={"file": ("a.png", png_bytes(), "image/png")})
        submit_seconds = time.monotonic() - began

        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert submit_seconds < 30, f"a dead broker held the request for {submit_seconds:.0f} s"
        assert api.get(f"/api/jobs/{job_id}").json()["state"] == "queued"

        private_redis.start()
        celery = api.app.state.job_queue.celery  # type: ignore[attr-defined]
        found: list[tuple[str, str]] = []

        def resent() -> bool:
            found.extend(broker_messages(celery))
            return any(message_id == job_id for message_id, _queue in found)

        wait_for(resent, timeout=30, interval=0.5, what="the reaper to send the job again")
        assert api.get(f"/api/jobs/{job_id}").json()["state"] == "queued"


def test_client_sees_no_500_while_the_broker_is_down(env: dict[str, str], private_redis: Redis) -> None:
    """Reads do not need the broker; with it down they still answer."""
    settings = make_settings({**env, "REDIS_URL": private_redis.url, "REQUEST_RATE_LIMIT": "600"})
    with api_client(settings) as api:
        response = api.post("/api/jobs", files={"file": ("a.png", png_bytes(), "image/png")})
        job_id = response.json()["id"]
        private_redis.stop(hard=True)
        assert api.get(f"/api/jobs/{job_id}").status_code == 200
        assert api.get("/api/jobs").status_code == 200
        assert isinstance(api, TestClient)
