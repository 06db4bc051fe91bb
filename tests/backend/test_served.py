"""The API started exactly as the repository starts it (scripts/run, the Docker CMD, docs/scaling.md),
as a real process whose output goes to a real log file: what reaches that file is what an
operator's log holds."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backend.factories import png_bytes
from tests.conftest import TEST_SECRET, alembic_config
from tests.servers import ServedApi, documented_api_commands, free_port

LAUNCHES = list(documented_api_commands(0))
SLOW_CLIENT_TIMEOUT = 2.0
CLIENT_PATIENCE = 15.0
"""The slow client gives up after this long, so a server that never cuts it off fails the test, bounded."""


@pytest.fixture
def served_env(tmp_path: Path) -> dict[str, str]:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'deepscreen.db'}"
    command.upgrade(alembic_config(url), "head")
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"only hashed by the API")
    return {
        "ENVIRONMENT": "test", "SECRET_KEY": TEST_SECRET, "VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": url,
        "REDIS_URL": "", "MODEL_CHECKPOINT": str(checkpoint), "FRONTEND_DIST": str(tmp_path / "no-frontend"),
        "REAPER_MODE": "off", "LOG_LEVEL": "INFO", "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "HEADER_TIMEOUT_SECONDS": str(SLOW_CLIENT_TIMEOUT), "BODY_TIMEOUT_SECONDS": str(SLOW_CLIENT_TIMEOUT),
    }


@pytest.fixture(params=LAUNCHES)
def served(request: pytest.FixtureRequest, served_env: dict[str, str], tmp_path: Path) -> Iterator[ServedApi]:
    port = free_port()
    api = ServedApi(documented_api_commands(port)[request.param], served_env, tmp_path / "api.log", port)
    try:
        yield api
    finally:
        api.stop()


def test_job_tokens_never_reach_the_access_log(served: ServedApi) -> None:
    secret = "s3cretTOKENvalue0123456789"
    for path in (f"/api/jobs/abc?token={secret}", f"/api/jobs/abc/events?token={secret}",
                 f"/api/jobs?x=1&token={secret}&api_key={secret}"):
        assert httpx.get(served.url + path, timeout=10).status_code < 500
    served.stop()  # flushes and closes the log file

    log = served.log()
    assert secret not in log, [line for line in log.splitlines() if secret in line]
    assert log.count("token=[redacted]") >= 3, "the access lines are in the log, masked"


def _held_for(sock: socket.socket, trickle: list[bytes], every: float) -> tuple[float, bytes]:
    """Send `trickle` piece by piece, `every` seconds apart (then nothing), until the server closes
    the connection or CLIENT_PATIENCE runs out; returns (seconds held, what the server answered)."""
    start = time.monotonic()
    answer = b""
    pieces = iter(trickle)
    sock.settimeout(every)
    while time.monotonic() - start < CLIENT_PATIENCE:
        piece = next(pieces, None)
        try:
            if piece is not None:
                sock.sendall(piece)
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if not data:
            break
        answer += data
    return time.monotonic() - start, answer


def test_a_client_trickling_headers_is_cut_off(served: ServedApi) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        headers = [b"GET /api/health/live HTTP/1.1\r\n", b"Host: x\r\n"] + [b"X-Slow: %d\r\n" % i for i in range(100)]
        held, answer = _held_for(sock, headers, every=0.5)
    assert held < SLOW_CLIENT_TIMEOUT + 3, f"held {held:.1f} s"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert httpx.get(served.url + "/api/health/live", timeout=5).status_code == 200, "others are still served"


def test_a_client_stalling_its_body_is_cut_off_and_leaves_no_file(
    served: ServedApi, served_env: dict[str, str]
) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    boundary = b"slow"
    head = (b"--slow\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
            + png_bytes(400, 400)[:2000])
    request = (b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" + boundary
               + b"\r\nContent-Length: 100000\r\n\r\n" + head)
    with socket.create_connection((host, int(port))) as sock:
        held, _answer = _held_for(sock, [request], every=0.5)
    assert held < SLOW_CLIENT_TIMEOUT + 3, f"held {held:.1f} s"
    tmp = Path(served_env["VAR_DIR"]) / "storage" / "tmp"
    deadline = time.monotonic() + 5
    while any(tmp.glob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(tmp.glob("*.part")), "the partial upload is removed"
