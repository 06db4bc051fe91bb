"""The storage quota: refuse an upload (507) before it could fill STORAGE_DIR or the disk.

Checked before the first byte is received, against the declared size (or MAX_UPLOAD_BYTES when
the client declares none), so a refused upload costs nothing. Usage is the size of every file
under STORAGE_DIR. Walking that tree costs about 15 ms per 1000 finished jobs (45 ms at 3000, on
the API's CPU, for every upload), so it is walked only when STORAGE_QUOTA_BYTES is set, and then
at most once per USAGE_MEASURE_SECONDS per folder: in between, each upload the check lets through
adds its size to the last measurement, so a burst cannot pass the quota unseen (a refused or
failed upload is counted until the next walk, which errs on the safe side).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import ApiErrorCode, DomainError
from core.settings import Settings


class InsufficientStorage(DomainError):
    status_code = 507
    code = ApiErrorCode.insufficient_storage


@dataclass(frozen=True)
class StorageUsage:
    used_bytes: int
    free_bytes: int


def directory_size(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue  # deleted while we looked
    return total


def usage(root: Path) -> StorageUsage:
    root.mkdir(parents=True, exist_ok=True)
    return StorageUsage(used_bytes=directory_size(root), free_bytes=shutil.disk_usage(root).free)


USAGE_MEASURE_SECONDS = 5.0


class _UsedBytes:
    """The last walk of each storage folder, plus what was let in since."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.folders: dict[Path, tuple[float, int]] = {}

    def reserve(self, root: Path, incoming_bytes: int, quota: int) -> bool:
        """Count `incoming_bytes` against `quota`; False (nothing counted) when they would pass it."""
        with self.lock:
            measured_at, used = self.folders.get(root, (-float("inf"), 0))
            if time.monotonic() - measured_at > USAGE_MEASURE_SECONDS:
                measured_at, used = time.monotonic(), directory_size(root)
            if used + incoming_bytes > quota:
                self.folders[root] = (measured_at, used)
                return False
            self.folders[root] = (measured_at, used + incoming_bytes)
            return True


_used_bytes = _UsedBytes()


def ensure_room(root: Path, settings: Settings, incoming_bytes: int) -> None:
    """Raise InsufficientStorage if `incoming_bytes` more would pass the quota or the free-disk floor."""
    root.mkdir(parents=True, exist_ok=True)
    if settings.STORAGE_QUOTA_BYTES and not _used_bytes.reserve(root, incoming_bytes, settings.STORAGE_QUOTA_BYTES):
        raise InsufficientStorage(
            "The server's storage quota is full; try again later.",
            details={"limit": "storage_quota_bytes", "storage_quota_bytes": settings.STORAGE_QUOTA_BYTES},
        )
    if shutil.disk_usage(root).free - incoming_bytes < settings.MIN_FREE_DISK_BYTES:
        raise InsufficientStorage(
            "The server's disk is nearly full; try again later.",
            details={"limit": "min_free_disk_bytes", "min_free_disk_bytes": settings.MIN_FREE_DISK_BYTES},
        )
