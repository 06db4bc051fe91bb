"""The storage quota: refuse an upload (507) before it could fill STORAGE_DIR or the disk.

Checked before the first byte is received, against the declared size (or MAX_UPLOAD_BYTES when
the client declares none), so a refused upload costs nothing. Usage is the size of every file
under STORAGE_DIR, measured on each check: with uploads deleted after processing and jobs
expiring, the tree stays small enough that this is milliseconds.
"""

from __future__ import annotations

import os
import shutil
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


def ensure_room(root: Path, settings: Settings, incoming_bytes: int) -> None:
    """Raise InsufficientStorage if `incoming_bytes` more would pass the quota or the free-disk floor."""
    current = usage(root)
    if settings.STORAGE_QUOTA_BYTES and current.used_bytes + incoming_bytes > settings.STORAGE_QUOTA_BYTES:
        raise InsufficientStorage(
            "The server's storage quota is full; try again later.",
            details={"limit": "storage_quota_bytes", "storage_quota_bytes": settings.STORAGE_QUOTA_BYTES},
        )
    if current.free_bytes - incoming_bytes < settings.MIN_FREE_DISK_BYTES:
        raise InsufficientStorage(
            "The server's disk is nearly full; try again later.",
            details={"limit": "min_free_disk_bytes", "min_free_disk_bytes": settings.MIN_FREE_DISK_BYTES},
        )
