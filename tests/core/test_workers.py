"""Worker liveness rows (core.workers), on SQLite and PostgreSQL: a beat is one row per worker
process, refreshed in place, live while younger than the stale limit, pruned once a day silent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from core import workers
from core.db import Database
from core.workers import WorkerBeat, WorkerBeatRow


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def beat(worker: str, beat_at: float, **overrides: object) -> WorkerBeat:
    values: dict[str, object] = {
        "worker": worker, "hostname": "h", "pid": 1, "queues": ["images"], "device": "cpu", "backend": "onnx",
        "model_id": "m", "model_version": "1", "model_sha256": "ab" * 32, "started_at": beat_at, "beat_at": beat_at,
    }
    return WorkerBeat.model_validate({**values, **overrides})


def test_a_beat_is_one_row_per_worker_refreshed_in_place(database: Database) -> None:
    now = time.time()
    with database.session() as session:
        workers.write(session, beat("a@h:1", now - 100))
    with database.session() as session:
        workers.write(session, beat("a@h:1", now, model_version="2"))
        workers.write(session, beat("b@h:2", now - 100))

    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkerBeatRow)) == 2
        live = workers.live(session, stale_after=30, now=now)
        assert [(b.worker, b.model_version) for b in live] == [("a@h:1", "2")]
        assert sorted(b.worker for b in workers.all_beats(session)) == ["a@h:1", "b@h:2"]


def test_a_clean_stop_removes_the_row_and_the_sweep_prunes_silent_ones(database: Database) -> None:
    now = time.time()
    with database.session() as session:
        workers.write(session, beat("stopped@h:1", now))
        workers.write(session, beat("killed@h:2", now - workers.PRUNE_AFTER_SECONDS - 1))
        workers.write(session, beat("quiet@h:3", now - 3600))
    with database.session() as session:
        workers.remove(session, "stopped@h:1")
        assert workers.prune(session, now=now) == 1

    with database.session() as session:
        assert [b.worker for b in workers.all_beats(session)] == ["quiet@h:3"]


def test_a_row_another_version_wrote_is_not_a_live_worker(database: Database) -> None:
    now = time.time()
    with database.session() as session:
        session.add(WorkerBeatRow(worker="old@h:1", beat_at=now, beat={"worker": "old@h:1"}))
        workers.write(session, beat("new@h:2", now))
    with database.session() as session:
        assert [b.worker for b in workers.live(session, stale_after=30, now=now)] == ["new@h:2"]
