"""Bad uploads: every one gets a clear 4xx in the one error shape, never a 500, and leaves no file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from backend.jobs.upload import receive_upload
from backend.main import create_app
from core.errors import BadRequest, PayloadTooLarge
from core.jobs.storage import Storage
from core.settings import Settings
from tests.backend.factories import mp4_bytes, png_bytes, png_header_only
from tests.conftest import make_settings

BOUNDARY = "deepscreen-test-boundary"


def leftover_files(settings: Settings) -> list[Path]:
    return [p for p in settings.storage_dir.rglob("*") if p.is_file()]


def assert_refused(response, status: int, code: str, settings: Settings) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert body["request_id"] == response.headers["x-request-id"]
    assert leftover_files(settings) == []
    return body


def post_file(client: TestClient, data: bytes, filename: str = "upload.bin"):
    return client.post("/api/jobs", files={"file": (filename, data, "application/octet-stream")})


@pytest.fixture
def limited_client(env: dict[str, str]) -> Iterator[tuple[TestClient, Settings]]:
    settings = make_settings({**env, "MAX_UPLOAD_BYTES": "50000", "MAX_VIDEO_SECONDS": "2"})
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client, settings


def test_empty_file_is_422(client: TestClient, settings: Settings) -> None:
    assert_refused(post_file(client, b"", "empty.png"), 422, "empty_file", settings)


def test_truncated_mp4_is_422_corrupt(client: TestClient, settings: Settings) -> None:
    data = mp4_bytes(seconds=2.0)
    body = assert_refused(post_file(client, data[: len(data) // 2], "cut.mp4"), 422, "corrupt_media", settings)
    assert "could not be read" in body["error"]["message"]


def test_truncated_png_is_422_corrupt(client: TestClient, settings: Settings) -> None:
    data = png_bytes(320, 240)
    assert_refused(post_file(client, data[: len(data) - 40], "cut.png"), 422, "corrupt_media", settings)


def test_png_renamed_mp4_is_sniffed_as_an_image(client: TestClient) -> None:
    response = post_file(client, png_bytes(), "clip.mp4")

    assert response.status_code == 202
    job = client.get(f"/api/jobs/{response.json()['id']}").json()
    assert (job["kind"], job["media_format"]) == ("image", "png")


def test_text_file_is_415_with_accepted_types(client: TestClient, settings: Settings) -> None:
    body = assert_refused(post_file(client, b"hello, this is not a video\n" * 10, "video.mp4"), 415,
                          "unsupported_media", settings)
    assert "MP4/MOV video" in body["error"]["details"]["accepted"]
    assert "PNG image" in body["error"]["details"]["accepted"]


def test_short_text_file_is_415(client: TestClient, settings: Settings) -> None:
    assert_refused(post_file(client, b"hi", "a.png"), 415, "unsupported_media", settings)


def test_oversize_file_is_413(limited_client: tuple[TestClient, Settings]) -> None:
    client, settings = limited_client
    body = assert_refused(post_file(client, png_bytes() + b"\0" * 60_000, "big.png"), 413, "too_large", settings)
    assert body["error"]["details"]["max_upload_bytes"] == 50_000


def test_oversize_stream_without_length_is_cut_off_while_streaming(
    limited_client: tuple[TestClient, Settings],
) -> None:
    client, settings = limited_client
    sent: list[int] = []

    def body() -> Iterator[bytes]:
        yield f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n\r\n".encode()
        yield png_bytes()
        for _ in range(200):  # 200 x 10 kB = 2 MB, far over the 50 kB limit
            sent.append(1)
            yield b"\0" * 10_000
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    response = client.post(
        "/api/jobs", content=body(), headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    assert_refused(response, 413, "too_large", settings)


def test_too_long_video_is_422_naming_the_limit(limited_client: tuple[TestClient, Settings]) -> None:
    client, settings = limited_client
    body = assert_refused(post_file(client, mp4_bytes(seconds=4.0, width=32, height=32), "long.mp4"), 422,
                          "too_long", settings)
    assert body["error"]["details"]["limit"] == "max_video_seconds"
    assert body["error"]["details"]["max_video_seconds"] == 2


def test_decompression_bomb_png_header_is_422_naming_the_limit(client: TestClient, settings: Settings) -> None:
    body = assert_refused(post_file(client, png_header_only(20_000, 20_000), "bomb.png"), 422,
                          "dimensions_too_large", settings)
    assert body["error"]["details"]["limit"] == "max_image_pixels"


def test_path_traversal_filename_is_metadata_only(client: TestClient, settings: Settings) -> None:
    response = post_file(client, png_bytes(), "../../../../etc/passwd.png")

    assert response.status_code == 202
    job_id = response.json()["id"]
    assert client.get(f"/api/jobs/{job_id}").json()["original_filename"] == "passwd.png"
    assert leftover_files(settings) == [settings.storage_dir / "uploads" / f"{job_id}.png"]


def test_overlong_filename_is_shortened_keeping_the_extension(client: TestClient) -> None:
    response = post_file(client, png_bytes(), "a" * 1000 + ".png")

    name = client.get(f"/api/jobs/{response.json()['id']}").json()["original_filename"]
    assert len(name) == 200
    assert name.endswith(".png")


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("application/json", b'{"file": "x"}', 400, "malformed_multipart"),
        ("multipart/form-data", b"--x\r\n\r\n", 400, "malformed_multipart"),
        (f"multipart/form-data; boundary={BOUNDARY}", b"garbage without any boundary", 400, "malformed_multipart"),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n".encode()
            + png_bytes(),
            400,
            "malformed_multipart",
        ),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nvalue\r\n"
            f"--{BOUNDARY}--\r\n".encode(),
            422,
            "missing_file",
        ),
    ],
    ids=["not-multipart", "no-boundary", "garbage", "truncated-body", "no-file-field"],
)
def test_malformed_multipart_is_a_4xx(
    client: TestClient, settings: Settings, content_type: str, body: bytes, status: int, code: str
) -> None:
    response = client.post("/api/jobs", content=body, headers={"content-type": content_type})
    assert_refused(response, status, code, settings)


def test_client_disconnect_mid_upload_leaves_no_file(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n".encode()
    messages = [
        {"type": "http.request", "body": head + png_bytes(), "more_body": True},
        {"type": "http.request", "body": b"\0" * 5000, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict:
        return messages.pop(0)

    scope = {
        "type": "http", "method": "POST", "path": "/api/jobs", "query_string": b"",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
    }
    with pytest.raises(BadRequest) as caught:
        asyncio.run(receive_upload(Request(scope, receive), storage, max_bytes=10**6, flush_bytes=1000))

    assert caught.value.code == "client_disconnected"
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []


def test_declared_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")

    async def receive() -> dict:
        raise AssertionError("the body must not be read")

    scope = {
        "type": "http", "method": "POST", "path": "/api/jobs", "query_string": b"",
        "headers": [
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", b"999999999"),
        ],
    }
    with pytest.raises(PayloadTooLarge):
        asyncio.run(receive_upload(Request(scope, receive), storage, max_bytes=1000, flush_bytes=1000))


def test_boundary_longer_than_the_parser_allows_is_400_not_500(client: TestClient, settings: Settings) -> None:
    # Regression (tests/reliability): python-multipart refuses boundaries over 256 bytes in its constructor.
    boundary = "b" * 300
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n".encode()
    body += png_bytes() + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        "/api/jobs", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert_refused(response, 400, "malformed_multipart", settings)
