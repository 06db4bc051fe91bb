"""File housekeeping helpers of the job storage."""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.jobs.storage import remove_stale_files


def test_remove_stale_files_deletes_only_old_matching_files(tmp_path: Path) -> None:
    now = time.time()
    old, fresh, other = tmp_path / "a.part", tmp_path / "b.part", tmp_path / "c.png"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    for path in (old, other):
        os.utime(path, (now - 7200, now - 7200))

    assert remove_stale_files(tmp_path, "*.part", older_than=3600, now=now) == 1
    assert not old.exists()
    assert fresh.exists()
    assert other.exists()
    assert remove_stale_files(tmp_path / "missing", "*", older_than=0, now=now) == 0
