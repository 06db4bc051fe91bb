"""The storage quota and the free-disk floor refuse uploads with 507 before any byte is stored."""

from __future__ import annotations

from core.settings import Settings
from tests.backend.factories import png_bytes
from tests.conftest import api_client, make_settings


def upload(settings: Settings) -> tuple[int, dict[str, object], list[str]]:
    with api_client(settings) as client:
        response = client.post("/api/jobs", files={"file": ("a.png", png_bytes())})
    leftovers = [p.name for p in (settings.storage_dir / "tmp").glob("*")] + [
        p.name for p in (settings.storage_dir / "uploads").glob("*")
    ]
    return response.status_code, response.json(), leftovers


def test_upload_over_the_storage_quota_is_refused_with_507(env: dict[str, str]) -> None:
    settings = make_settings({**env, "STORAGE_QUOTA_BYTES": "100000"})
    (settings.storage_dir / "artifacts" / "previous").mkdir(parents=True)
    (settings.storage_dir / "artifacts" / "previous" / "frame.png").write_bytes(b"0" * 99_900)

    status, body, leftovers = upload(settings)

    assert status == 507
    assert body["error"]["code"] == "insufficient_storage"
    assert body["error"]["details"] == {"limit": "storage_quota_bytes", "storage_quota_bytes": 100000}
    assert leftovers == []


def test_upload_within_the_quota_is_accepted(env: dict[str, str]) -> None:
    status, body, leftovers = upload(make_settings({**env, "STORAGE_QUOTA_BYTES": "100000"}))

    assert status == 202, body
    assert len(leftovers) == 1


def test_upload_that_would_pass_the_free_disk_floor_is_refused(env: dict[str, str]) -> None:
    settings = make_settings({**env, "MIN_FREE_DISK_BYTES": str(1 << 60)})

    status, body, leftovers = upload(settings)

    assert status == 507
    assert body["error"]["details"]["limit"] == "min_free_disk_bytes"
    assert leftovers == []
