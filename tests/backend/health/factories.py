"""Worker heartbeats as a worker pool process writes them."""

from __future__ import annotations

import time

from core import workers
from core.db import Database
from core.settings import Settings
from core.workers import WorkerBeat


def write_beat(settings: Settings, *, age: float = 0.0, worker: str = "w1@test:100", **overrides: object) -> WorkerBeat:
    """Store a beat `age` seconds old in the database `settings` names (the app's)."""
    now = time.time()
    values: dict[str, object] = {
        "worker": worker, "hostname": "test", "pid": 100, "queues": ["images", "videos"], "device": "cpu",
        "backend": "onnx", "model_id": "deepscreen-effnet-lite0", "model_version": "1.2.3", "model_sha256": "ab" * 32,
        "started_at": now - age - 60, "beat_at": now - age,
    }
    values.update(overrides)
    beat = WorkerBeat.model_validate(values)
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            workers.write(session, beat)
    finally:
        database.dispose()
    return beat
