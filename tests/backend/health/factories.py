"""Worker heartbeats as a worker pool process writes them."""

from __future__ import annotations

import time
from pathlib import Path

from core.workers import WorkerBeat, WorkerRegistry


def write_beat(storage_root: Path, *, age: float = 0.0, worker: str = "w1@test:100", **overrides: object) -> WorkerBeat:
    now = time.time()
    values: dict[str, object] = {
        "worker": worker, "hostname": "test", "pid": 100, "queues": ["images", "videos"], "device": "cpu",
        "backend": "onnx", "model_id": "deepscreen-effnet-lite0", "model_version": "1.2.3", "model_sha256": "ab" * 32,
        "started_at": now - age - 60, "beat_at": now - age,
    }
    values.update(overrides)
    beat = WorkerBeat.model_validate(values)
    WorkerRegistry(storage_root).write(beat)
    return beat
