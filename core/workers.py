"""Worker heartbeats: each worker pool process that has loaded its model writes a small JSON file
under `STORAGE_DIR/workers/` every HEARTBEAT_SECONDS.

Why files: STORAGE_DIR is already shared by every API and worker process (the API serves the
artifacts workers write), it exists in the embedded default where there is no Redis, and
reading a few small files is cheap enough for every readiness probe and scrape. Celery's
`inspect ping` would need a broadcast-capable broker and a one-second wait per probe.
The API reads them for readiness (at least one recent beat), `deepscreen_workers`, the model
info metric and GPU memory. A worker killed with SIGKILL leaves its file behind: it stops
counting after STALE_AFTER_SECONDS and the retention sweep deletes it after a day.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pydantic import BaseModel, ValidationError

from core.jobs.storage import remove_stale_files

logger = logging.getLogger(__name__)

WORKERS_DIRNAME = "workers"
PRUNE_AFTER_SECONDS = 24 * 3600.0


class WorkerBeat(BaseModel):
    """What one worker pool process reports about itself."""

    worker: str
    """`<celery hostname>:<pid>`, unique among running processes."""
    hostname: str
    pid: int
    queues: list[str]
    device: str
    backend: str
    model_id: str
    model_version: str
    model_sha256: str
    onnx_sha256: str | None = None
    """The ONNX export the process scores with (None on PyTorch), built ahead of time beside the checkpoint."""
    started_at: float
    beat_at: float
    """Unix time of the last beat, by the worker's clock."""
    jobs_done: int = 0
    gpu_memory_allocated_bytes: int | None = None
    gpu_memory_reserved_bytes: int | None = None
    gpu_memory_total_bytes: int | None = None


class WorkerRegistry:
    def __init__(self, storage_root: Path) -> None:
        self.directory = storage_root / WORKERS_DIRNAME

    def _path(self, worker: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in worker)
        return self.directory / f"{safe}.json"

    def write(self, beat: WorkerBeat) -> None:
        """Atomic (write, then rename), so a reader never sees half a file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(beat.worker)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(beat.model_dump_json(), encoding="utf-8")
        temporary.replace(path)

    def remove(self, worker: str) -> None:
        self._path(worker).unlink(missing_ok=True)

    def all(self) -> list[WorkerBeat]:
        beats = []
        try:
            paths = list(self.directory.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            try:
                beats.append(WorkerBeat.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError):
                continue  # removed meanwhile, or written by another version: not a live worker
        return beats

    def live(self, *, stale_after: float, now: float | None = None) -> list[WorkerBeat]:
        """Workers whose last beat is at most `stale_after` seconds old."""
        now = time.time() if now is None else now
        return [beat for beat in self.all() if now - beat.beat_at <= stale_after]

    def prune(self, *, older_than: float = PRUNE_AFTER_SECONDS, now: float | None = None) -> int:
        """Delete files of workers silent for `older_than` seconds (killed, never cleaned up)."""
        return remove_stale_files(self.directory, "*", older_than=older_than, now=time.time() if now is None else now)
