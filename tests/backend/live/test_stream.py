"""Live job updates over a real HTTP server: the job row (embedded default) and Redis pub/sub
(several API replicas relaying one worker's events), against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from backend.live import stream
from core.accounts.security import new_job_token
from core.db import Database
from core.jobs import service
from core.jobs.models import JobState
from core.live import publisher
from core.live.schemas import JobEvent
from core.settings import Settings
from ml.contracts import AnalysisResult, ErrorCode, Stage
from tests.backend.factories import make_job, make_result
from tests.conftest import make_settings
from tests.servers import free_port
from tests.servers import serve_api as serve

Events = list[dict[str, object]]
JOB_TOKENS: dict[str, str] = {}
"""Access tokens of the jobs inserted by `insert_job`, by job id."""
STEPS = [(Stage.probing, 5.0), (Stage.detecting, 40.0), (Stage.classifying, 70.0), (Stage.saving, 95.0)]


class Listener:
    """Reads one job's event stream in a thread, recording each event and when it arrived."""

    def __init__(self, base_url: str, job_id: str) -> None:
        # The token goes in the query, as a browser's EventSource must send it.
        self.url = f"{base_url}/api/jobs/{job_id}/events?token={JOB_TOKENS.get(job_id, '')}"
        self.events: Events = []
        self.arrived: list[float] = []
        self.status: int | None = None
        self.content_type = ""
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=httpx.Timeout(30.0)) as response:
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line.removeprefix("data: ")))
                        self.arrived.append(time.monotonic())
        finally:
            self.ended.set()

    def wait_for(self, predicate: Callable[[Events], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            if time.monotonic() > deadline:
                pytest.fail(f"events so far: {self.events}")
            time.sleep(0.02)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def _quick_and_isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(stream, "POLL_SECONDS", 0.1)
    publisher.configure("")
    yield
    publisher.configure(None)


def insert_job(database: Database, **overrides: object) -> str:
    with database.session() as session:
        token, token_hash = new_job_token()
        job = make_job(**{"access_token_hash": token_hash, **overrides})
        session.add(job)
        JOB_TOKENS[job.id] = token
        return job.id


def a_result() -> AnalysisResult:
    return make_result(score=0.2)


def run_job(
    database: Database, job_id: str, steps: list[tuple[Stage, float]], *, pause: float, fail: bool = False
) -> None:
    """What a worker does to the row: claim, report each stage, finish; one unit of work each."""
    with database.session() as session:
        assert service.claim(session, job_id, worker="test-worker") is not None
    for stage, percent in steps:
        time.sleep(pause)
        with database.session() as session:
            assert service.report_progress(session, job_id, stage, percent)
    time.sleep(pause)
    with database.session() as session:
        if fail:
            assert service.fail(session, job_id, code=ErrorCode.corrupt_media, message="bad frames")
        else:
            assert service.complete(session, job_id, a_result()) == JobState.succeeded


def test_embedded_stream_follows_the_row_until_final(settings: Settings, database: Database) -> None:
    job_id = insert_job(database)
    with serve(settings) as base_url:
        listener = Listener(base_url, job_id)
        listener.wait_for(lambda events: len(events) >= 1)
        run_job(database, job_id, STEPS, pause=2 * stream.POLL_SECONDS)
        assert listener.ended.wait(10), "the stream must end once the job is final"

    assert listener.status == 200
    assert listener.content_type.startswith("text/event-stream")
    events = listener.events
    assert events[0] == {
        "job_id": job_id, "state": "queued", "stage": None, "progress": 0.0, "queue_position": 1, "error_code": None,
    }
    seen = [event["stage"] for event in events if event["state"] == "running"]
    assert [stage.value for stage, _ in STEPS if stage.value in seen] == [stage.value for stage, _ in STEPS]
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["progress"] == 100.0
    progress = [float(str(event["progress"])) for event in events]
    assert progress == sorted(progress)


def test_stream_reports_a_failure_with_its_code(settings: Settings, database: Database) -> None:
    job_id = insert_job(database)
    with serve(settings) as base_url:
        listener = Listener(base_url, job_id)
        listener.wait_for(lambda events: len(events) >= 1)
        run_job(database, job_id, [(Stage.probing, 5.0)], pause=2 * stream.POLL_SECONDS, fail=True)
        assert listener.ended.wait(10)
    assert listener.events[-1]["state"] == "failed"
    assert listener.events[-1]["error_code"] == "corrupt_media"


def test_a_finished_job_sends_one_event_and_closes(settings: Settings, database: Database) -> None:
    job_id = insert_job(database, state=JobState.succeeded, progress=100.0)
    with serve(settings) as base_url:
        listener = Listener(base_url, job_id)
        assert listener.ended.wait(10)
    assert [event["state"] for event in listener.events] == ["succeeded"]


def test_an_unknown_job_is_a_404_in_the_api_error_shape(settings: Settings) -> None:
    with serve(settings) as base_url:
        response = httpx.get(f"{base_url}/api/jobs/{'0' * 32}/events", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "request_id" in response.json()


def test_publishing_without_redis_is_a_no_op() -> None:
    assert publisher.publish_job_event(JobEvent(job_id="x", state=JobState.running)) is False


def test_publishing_to_an_unreachable_redis_never_raises() -> None:
    publisher.configure(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    assert publisher.publish_job_event(JobEvent(job_id="x", state=JobState.running)) is False


@pytest.mark.redis
def test_redis_relays_a_workers_events_through_every_api_replica(
    env: dict[str, str], database: Database, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The row is re-read only after 30 s of silence, so what arrives sooner came through Redis.
    monkeypatch.setattr(stream, "RECHECK_SECONDS", 30.0)
    settings = make_settings({**env, "REDIS_URL": redis_url})
    publisher.configure(redis_url)
    job_id = insert_job(database)
    with serve(settings) as replica_a, serve(settings) as replica_b:
        listeners = [Listener(replica_a, job_id), Listener(replica_b, job_id)]
        for listener in listeners:
            listener.wait_for(lambda events: len(events) >= 1)
        started = time.monotonic()
        run_job(database, job_id, STEPS, pause=0.2)
        for listener in listeners:
            assert listener.ended.wait(10), "the final event must end the stream at once"

    expected = [("queued", None)] + [("running", stage.value) for stage, _ in STEPS] + [("succeeded", "saving")]
    for listener in listeners:
        assert [(event["state"], event["stage"]) for event in listener.events] == expected
        assert listener.arrived[-1] - started < 5.0


@pytest.mark.redis
def test_another_jobs_events_never_reach_a_stream(
    env: dict[str, str], database: Database, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "RECHECK_SECONDS", 30.0)
    settings = make_settings({**env, "REDIS_URL": redis_url})
    publisher.configure(redis_url)
    watched, other = insert_job(database), insert_job(database)
    with serve(settings) as base_url:
        listener = Listener(base_url, watched)
        listener.wait_for(lambda events: len(events) >= 1)
        run_job(database, other, STEPS[:2], pause=0.1)
        time.sleep(0.5)
        run_job(database, watched, [], pause=0.1)
        assert listener.ended.wait(10)
    assert {event["job_id"] for event in listener.events} == {watched}


def subscribed_connections(redis_url: str) -> int:
    """Redis clients subscribed to anything, in this test's database (CLIENT LIST)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        db = client.connection_pool.connection_kwargs.get("db", 0)
        return sum(1 for c in client.client_list()
                   if int(c["db"]) == int(db) and (int(c.get("sub", 0)) or int(c.get("psub", 0))))
    finally:
        client.close()


@pytest.mark.redis
def test_one_redis_connection_serves_every_open_stream_of_an_api_process(
    env: dict[str, str], database: Database, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pub/sub subscriber per API process fans events out to its streams (not one connection per stream)."""
    monkeypatch.setattr(stream, "RECHECK_SECONDS", 30.0)  # what arrives sooner came through Redis
    settings = make_settings({**env, "REDIS_URL": redis_url})
    publisher.configure(redis_url)
    jobs = [insert_job(database) for _ in range(3)]
    with serve(settings) as base_url:
        listeners = [Listener(base_url, job_id) for job_id in jobs for _ in range(2)]  # 6 streams, 3 jobs
        for listener in listeners:
            listener.wait_for(lambda events: len(events) >= 1)
        assert subscribed_connections(redis_url) == 1
        started = time.monotonic()
        for job_id in jobs:
            run_job(database, job_id, STEPS[:2], pause=0.1)
        for listener in listeners:
            assert listener.ended.wait(10), "the final event must end the stream at once"

    expected = [("queued", None)] + [("running", stage.value) for stage, _ in STEPS[:2]] + [("succeeded", "detecting")]
    for job_id, listener in zip([j for j in jobs for _ in range(2)], listeners, strict=True):
        assert {event["job_id"] for event in listener.events} == {job_id}
        assert [(event["state"], event["stage"]) for event in listener.events] == expected
        assert listener.arrived[-1] - started < 10.0
    assert subscribed_connections(redis_url) == 0, "the subscriber closes with its API process"


def test_with_redis_unreachable_streams_follow_the_row(env: dict[str, str], database: Database) -> None:
    """The feed never connects: every stream polls its row, and the API still starts at once."""
    settings = make_settings({**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "REAPER_MODE": "off"})
    job_id = insert_job(database)
    with serve(settings) as base_url:
        listener = Listener(base_url, job_id)
        listener.wait_for(lambda events: len(events) >= 1)
        run_job(database, job_id, STEPS[:1], pause=2 * stream.POLL_SECONDS)
        assert listener.ended.wait(10)
    assert [event["state"] for event in listener.events][-1] == "succeeded"
