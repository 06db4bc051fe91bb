"""The retention sweep on SQLite and PostgreSQL: expired jobs lose their row and files, fresh ones
keep them; processed uploads are deleted, queued ones kept; orphan files go after a grace period."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from core.accounts.models import UploadQuota
from core.db import Database, utcnow
from core.jobs.models import Job, JobState
from core.jobs.storage import Storage
from core.retention import service
from core.settings import Settings
from tests.backend.factories import make_job


def stored_job(database: Database, storage: Storage, *, hours_ago: float, state: JobState, upload: bool = True) -> Job:
    finished = utcnow() - timedelta(hours=hours_ago)
    job = make_job(state=state, finished_at=None if state is JobState.queued else finished, updated_at=finished)
    if upload:
        job.upload_name = f"{job.id}.png"
        storage.upload_path(job.upload_name).write_bytes(b"upload bytes")
    if state is not JobState.queued:
        storage.artifacts_dir(job.id).mkdir(parents=True)
        (storage.artifacts_dir(job.id) / "report.json").write_text("{}")
    with database.session() as session:
        session.add(job)
    return job


def row(database: Database, job_id: str) -> Job | None:
    with database.session() as session:
        return session.get(Job, job_id)


def sweep(database: Database, settings: Settings, storage: Storage) -> service.SweepReport:
    with database.session() as session:
        return service.sweep(session, settings=settings, storage=storage)


def test_sweep_deletes_expired_jobs_and_processed_uploads_only(settings: Settings) -> None:
    database, storage = Database.from_settings(settings), Storage(settings.storage_dir)
    storage.ensure_dirs()
    expired = stored_job(database, storage, hours_ago=settings.JOB_TTL_HOURS + 1, state=JobState.succeeded)
    expired_failed = stored_job(database, storage, hours_ago=settings.JOB_TTL_HOURS + 5, state=JobState.failed)
    fresh = stored_job(database, storage, hours_ago=1, state=JobState.succeeded)
    queued = stored_job(database, storage, hours_ago=settings.JOB_TTL_HOURS + 1, state=JobState.queued)

    report = sweep(database, settings, storage)

    assert (report.jobs_deleted, report.uploads_deleted) == (2, 1)
    for gone in (expired, expired_failed):
        assert row(database, gone.id) is None
        assert not storage.artifacts_dir(gone.id).exists()
        assert not storage.upload_path(f"{gone.id}.png").exists()
    kept = row(database, fresh.id)
    assert kept is not None
    assert kept.state == JobState.succeeded
    assert kept.upload_name is None, "a finished job's upload is deleted (privacy)"
    assert not storage.upload_path(f"{fresh.id}.png").exists()
    assert (storage.artifacts_dir(fresh.id) / "report.json").is_file(), "its artifacts stay until the TTL"
    waiting = row(database, queued.id)
    assert waiting is not None
    assert waiting.upload_name is not None
    assert storage.upload_path(waiting.upload_name).is_file(), "a queued job's upload is still needed"
    assert sweep(database, settings, storage) == service.SweepReport(), "a second sweep has nothing to do"
    database.dispose()


def test_settings_keep_uploads_and_jobs_when_asked(env: dict[str, str]) -> None:
    from tests.conftest import make_settings

    settings = make_settings({**env, "JOB_TTL_HOURS": "0", "DELETE_UPLOADS_AFTER_PROCESSING": "false"})
    database, storage = Database.from_settings(settings), Storage(settings.storage_dir)
    storage.ensure_dirs()
    old = stored_job(database, storage, hours_ago=10_000, state=JobState.succeeded)

    assert sweep(database, settings, storage) == service.SweepReport()
    assert storage.upload_path(f"{old.id}.png").is_file()
    assert row(database, old.id) is not None
    database.dispose()


def test_orphan_files_are_deleted_after_a_grace_period(settings: Settings) -> None:
    database, storage = Database.from_settings(settings), Storage(settings.storage_dir)
    storage.ensure_dirs()
    fresh = stored_job(database, storage, hours_ago=1, state=JobState.running)
    old_orphan = storage.upload_path("0" * 32 + ".png")
    new_orphan = storage.upload_path("1" * 32 + ".png")
    orphan_artifacts = storage.artifacts_dir("2" * 32)
    orphan_artifacts.mkdir()
    partial, live_partial = storage.tmp_dir / "abc.part", storage.tmp_dir / "def.part"
    for path in (old_orphan, new_orphan, partial, live_partial):
        path.write_bytes(b"x")
    hours_ago = time.time() - 2 * 3600
    for path in (old_orphan, orphan_artifacts, partial, storage.upload_path(f"{fresh.id}.png")):
        os.utime(path, (hours_ago, hours_ago))

    report = sweep(database, settings, storage)

    assert report.orphans_deleted == 3
    assert not old_orphan.exists()
    assert not orphan_artifacts.exists()
    assert not partial.exists()
    assert new_orphan.exists(), "its row may not be committed yet"
    assert live_partial.exists(), "an upload still being written is not a leftover"
    assert storage.upload_path(f"{fresh.id}.png").exists(), "a running job's upload is not an orphan"
    database.dispose()


def test_discard_upload_only_for_finished_jobs(settings: Settings) -> None:
    database, storage = Database.from_settings(settings), Storage(settings.storage_dir)
    storage.ensure_dirs()
    running = stored_job(database, storage, hours_ago=0, state=JobState.running)
    done = stored_job(database, storage, hours_ago=0, state=JobState.failed)

    with database.session() as session:
        assert not service.discard_upload(session, running.id, storage=storage)
        assert service.discard_upload(session, done.id, storage=storage)
        assert storage.upload_path(f"{done.id}.png").exists(), "deleted only after commit"

    assert storage.upload_path(f"{running.id}.png").exists()
    assert not storage.upload_path(f"{done.id}.png").exists()
    database.dispose()


def test_sweep_prunes_past_quota_days(settings: Settings) -> None:
    database, storage = Database.from_settings(settings), Storage(settings.storage_dir)
    storage.ensure_dirs()
    today = utcnow().date()
    with database.session() as session:
        session.add(UploadQuota(subject="addr:x", day=today - timedelta(days=3), used=5))
        session.add(UploadQuota(subject="addr:x", day=today, used=1))

    report = sweep(database, settings, storage)

    assert report.account_rows_deleted == 1
    with database.session() as session:
        assert session.query(UploadQuota).one().day == today
    database.dispose()
