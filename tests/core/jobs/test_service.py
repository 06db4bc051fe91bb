"""Job rules on a real database: claiming, progress, completion, cancellation and the reaper."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from core.db import Database, utcnow
from core.jobs import service
from core.jobs.models import Job, JobState
from core.jobs.storage import Storage
from core.queue import JobQueue, create_celery
from core.settings import Settings
from ml.contracts import ErrorCode, Stage
from tests.backend.factories import make_job, make_result
from tests.conftest import broker_messages


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    database = Database.from_settings(settings)
    yield database
    database.dispose()


@pytest.fixture
def queue(settings: Settings) -> Iterator[JobQueue]:
    """The real queue on the embedded broker (a SQLite file under the test's VAR_DIR)."""
    job_queue = JobQueue(create_celery(settings))
    yield job_queue
    job_queue.close()


def add(database: Database, **values: object) -> Job:
    job = make_job(**values)
    with database.session() as session:
        session.add(job)
    return job


def reload(database: Database, job_id: str) -> Job:
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_claim_takes_a_queued_job_once(database: Database) -> None:
    job = add(database)

    with database.session() as session:
        first = service.claim(session, job.id, worker="a")
    with database.session() as session:
        second = service.claim(session, job.id, worker="b")

    assert first is not None
    assert first.state == JobState.running
    assert first.attempts == 1
    assert second is None
    assert reload(database, job.id).worker == "a"


@pytest.mark.parametrize("state", [JobState.succeeded, JobState.failed, JobState.canceled])
def test_claim_ignores_final_jobs(database: Database, state: JobState) -> None:
    job = add(database, state=state)
    with database.session() as session:
        assert service.claim(session, job.id, worker="a") is None
    assert reload(database, job.id).state == state


def test_progress_is_recorded_and_reports_cancellation(database: Database, settings: Settings) -> None:
    job = add(database, state=JobState.running, heartbeat_at=utcnow() - timedelta(minutes=5))
    with database.session() as session:
        assert service.report_progress(session, job.id, Stage.detecting, 42.0)
    stored = reload(database, job.id)
    assert (stored.stage, stored.progress) == ("detecting", 42.0)
    assert stored.heartbeat_at is not None
    assert stored.heartbeat_at > utcnow() - timedelta(seconds=10)

    with database.session() as session:
        service.cancel_or_delete(session, job.id, storage=Storage(settings.storage_dir))
    with database.session() as session:
        assert not service.report_progress(session, job.id, Stage.classifying, 60.0)
    assert reload(database, job.id).state == JobState.canceled


def test_complete_without_faces_succeeds_inconclusive_without_an_error(database: Database) -> None:
    job = add(database, state=JobState.running)
    with database.session() as session:
        state = service.complete(session, job.id, make_result(low_confidence_reasons=["no_face_found"]))

    stored = reload(database, job.id)
    assert state == JobState.succeeded
    assert stored.state == JobState.succeeded
    assert stored.error_code is None, "the analysis ran: no error beside a result"
    assert stored.result is not None
    assert stored.result["label"] == "inconclusive"
    assert stored.result["low_confidence_reasons"] == ["no_face_found"]


def test_complete_does_not_resurrect_a_canceled_job(database: Database) -> None:
    job = add(database, state=JobState.canceled)
    with database.session() as session:
        assert service.complete(session, job.id, make_result()) is None
    assert reload(database, job.id).state == JobState.canceled


def test_fail_records_code_and_message(database: Database) -> None:
    job = add(database, state=JobState.running)
    with database.session() as session:
        service.fail(session, job.id, code=ErrorCode.corrupt_media, message="Bad file.", details={"x": 1})
    stored = reload(database, job.id)
    assert (stored.state, stored.error_code, stored.error_details) == (JobState.failed, "corrupt_media", {"x": 1})


def test_a_failed_jobs_message_names_no_server_path_or_errno(database: Database, settings: Settings) -> None:
    job = add(database, state=JobState.running)
    temp = settings.storage_dir / "tmp" / "25f1c0ffee.part"
    decoder_error = (
        f"The video could not be read: [Errno 1094995529] Invalid data found when processing input: '{temp}'"
    )
    with database.session() as session:
        service.fail(session, job.id, code=ErrorCode.corrupt_media, message=decoder_error)
    message = reload(database, job.id).error_message or ""
    assert message == "The video could not be read: Invalid data found when processing input: the file"


def test_reaper_requeues_stale_jobs_then_fails_them_after_max_attempts(
    database: Database, settings: Settings, queue: JobQueue
) -> None:
    old = utcnow() - timedelta(seconds=settings.STALE_AFTER_SECONDS + 5)
    retry = add(database, state=JobState.running, attempts=1, heartbeat_at=old, kind="video")
    exhausted = add(database, state=JobState.running, attempts=settings.JOB_MAX_ATTEMPTS, heartbeat_at=old)
    alive = add(database, state=JobState.running, attempts=1, heartbeat_at=utcnow())

    with database.session() as session:
        changed = service.reap_stale_jobs(session, settings=settings, queue=queue)
        assert broker_messages(queue.celery) == [], "messages must wait for the commit"

    assert changed == 2
    assert broker_messages(queue.celery) == [(retry.id, "videos")]
    assert reload(database, retry.id).state == JobState.queued
    failed = reload(database, exhausted.id)
    assert (failed.state, failed.error_code) == (JobState.failed, "internal")
    assert reload(database, alive.id).state == JobState.running


def test_reaper_resends_queued_jobs_whose_message_was_lost(
    database: Database, settings: Settings, queue: JobQueue
) -> None:
    lost = add(database, enqueued_at=utcnow() - timedelta(seconds=settings.QUEUED_RESEND_AFTER_SECONDS + 1))
    recent = add(database, enqueued_at=utcnow())

    with database.session() as session:
        service.reap_stale_jobs(session, settings=settings, queue=queue)

    assert broker_messages(queue.celery) == [(lost.id, "images")]
    assert reload(database, lost.id).enqueued_at > reload(database, recent.id).enqueued_at - timedelta(seconds=5)


def test_no_message_is_sent_when_the_transaction_rolls_back(
    database: Database, settings: Settings, queue: JobQueue
) -> None:
    job = add(database, state=JobState.running, attempts=1, heartbeat_at=utcnow() - timedelta(hours=1))

    def unit_of_work_that_fails_late() -> None:
        with database.session() as session:
            service.reap_stale_jobs(session, settings=settings, queue=queue)
            raise RuntimeError("something later in the unit of work failed")

    with pytest.raises(RuntimeError):
        unit_of_work_that_fails_late()

    assert broker_messages(queue.celery) == []
    assert reload(database, job.id).state == JobState.running


@pytest.mark.parametrize("broker", ["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def test_the_reaper_resends_only_messages_the_broker_lost(
    database: Database, settings: Settings, broker: str, request: pytest.FixtureRequest
) -> None:
    """A backlog whose messages wait in the broker is left alone; only jobs whose message is gone are
    sent again (re-sending every old queued job made 682 duplicates of a 100-job backlog)."""
    if broker == "redis":
        settings = settings.model_copy(update={"REDIS_URL": request.getfixturevalue("redis_url")})
    queue = JobQueue(create_celery(settings))
    try:
        with database.session() as session:
            jobs = [make_job(enqueued_at=utcnow()) for _ in range(30)]
            session.add_all(jobs)
        for job in jobs:
            queue.send_analyze(job.id, "images")
        later = utcnow() + timedelta(seconds=settings.QUEUED_RESEND_AFTER_SECONDS + 1)

        with database.session() as session:
            service.reap_stale_jobs(session, settings=settings, queue=queue, now=later)
        waiting = broker_messages(queue.celery)  # consumes (and acknowledges) them: now they are lost
        assert sorted(job_id for job_id, _ in waiting) == sorted(job.id for job in jobs), "no duplicate was sent"

        for _ in range(2):  # the embedded broker's delivered rows count as held for one pass, then are purged
            with database.session() as session:
                service.reap_stale_jobs(session, settings=settings, queue=queue, now=later)
        resent = broker_messages(queue.celery)
        assert sorted(job_id for job_id, _ in resent) == sorted(job.id for job in jobs), "lost ones are sent again"
    finally:
        queue.close()


def test_the_reaper_purges_messages_the_embedded_broker_delivered(
    database: Database, settings: Settings, queue: JobQueue
) -> None:
    """kombu's SQLAlchemy transport keeps every delivered message (invisible) for ever."""
    from sqlalchemy import create_engine, text

    for _ in range(5):
        queue.send_analyze(make_job().id, "images")
    assert len(broker_messages(queue.celery)) == 5  # delivered
    broker = create_engine(settings.broker_url.removeprefix("sqla+"))
    with broker.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM kombu_message")).scalar() == 5

    with database.session() as session:
        service.reap_stale_jobs(session, settings=settings, queue=queue)

    with broker.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM kombu_message")).scalar() == 0
    broker.dispose()
