"""The storage quota and the free-disk floor refuse uploads with 507 before any byte is stored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.retention import quota
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


def test_an_upload_without_a_storage_quota_does_not_walk_the_storage_tree(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every upload walked STORAGE_DIR even with no quota to check: 45 ms of the API's CPU per upload
    # once 3000 jobs' artifacts were kept, and growing with them (docs/reliability.md, capacity).
    walks: list[Path] = []
    monkeypatch.setattr(quota, "directory_size", lambda root: walks.append(root) or 0)

    status, body, _ = upload(make_settings(env))

    assert status == 202, body
    assert walks == []


def test_a_burst_of_uploads_walks_the_tree_once_and_counts_each_one_let_in(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks: list[Path] = []
    monkeypatch.setattr(quota, "directory_size", lambda root: walks.append(root) or 50_000)
    settings = make_settings({**env, "STORAGE_QUOTA_BYTES": "100000"})

    quota.ensure_room(tmp_path, settings, 30_000)  # 80 000 of 100 000
    with pytest.raises(quota.InsufficientStorage):
        quota.ensure_room(tmp_path, settings, 30_000)  # 110 000: the first one's bytes count
    quota.ensure_room(tmp_path, settings, 20_000)  # exactly 100 000: the refused one took nothing

    assert walks == [tmp_path]


def test_the_tree_is_walked_again_once_the_measurement_is_old(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = iter([90_000, 0])
    monkeypatch.setattr(quota, "directory_size", lambda root: next(sizes))
    settings = make_settings({**env, "STORAGE_QUOTA_BYTES": "100000"})
    with pytest.raises(quota.InsufficientStorage):
        quota.ensure_room(tmp_path, settings, 30_000)

    clock = time.monotonic() + quota.USAGE_MEASURE_SECONDS + 1
    monkeypatch.setattr(quota.time, "monotonic", lambda: clock)  # files were deleted meanwhile

    quota.ensure_room(tmp_path, settings, 30_000)
