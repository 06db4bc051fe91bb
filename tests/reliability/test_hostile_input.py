"""Hostile uploads (tests/reliability/corpus.py): each is refused with a 4xx in the one error shape
and leaves nothing behind, or is accepted as the valid media it also is and then ends in a final
state in a real worker — never a 500, never a stuck worker."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.main import create_app
from core.jobs.models import Job
from core.settings import Settings
from tests.conftest import WorkerProcess, api_client, make_settings, standalone_api_settings, wait_for
from tests.reliability.corpus import CORPUS, Hostile, body_of
from tests.worker.support import started

ERROR_SHAPE = {"error", "request_id"}
SERVER_PATH = re.compile(r"(?<![\w.])/(?:[\w.-]+/)+[\w.-]*")
"""An absolute path with at least one folder: what a temporary file's name looked like in a message."""


def assert_no_server_internals(text: str, settings: Settings) -> None:
    """No message a client sees names a server path, the storage folder or an errno (issue 13:
    corrupt_media said "...'/.../var/storage/tmp/25f1....part'")."""
    assert str(settings.storage_dir) not in text
    assert ".part" not in text
    assert "Errno" not in text
    assert not SERVER_PATH.search(text), text


def stored_files(settings: Settings) -> list[str]:
    return sorted(str(p.relative_to(settings.storage_dir)) for p in settings.storage_dir.rglob("*") if p.is_file())


def job_count(client: TestClient) -> int:
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def post(client: TestClient, item: Hostile):  # noqa: ANN201
    return client.post("/api/jobs", content=body_of(item), headers={"content-type": item.content_type})


@pytest.fixture(scope="module")
def corpus_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    """One API for the whole corpus (the items also run back to back against one process)."""
    settings = standalone_api_settings(
        tmp_path_factory.mktemp("corpus"), REQUEST_RATE_LIMIT="0", UPLOAD_RATE_LIMIT="0"
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, settings


@pytest.mark.parametrize("item", CORPUS, ids=[item.id for item in CORPUS])
def test_hostile_upload_is_refused_cleanly_or_accepted_as_media(
    corpus_api: tuple[TestClient, Settings], item: Hostile
) -> None:
    client, settings = corpus_api
    files_before, rows_before = stored_files(settings), job_count(client)

    response = post(client, item)

    assert response.status_code < 500, response.text
    assert not any(name.startswith("tmp/") for name in stored_files(settings)), "no temporary file is left"
    if response.status_code == 202:
        assert item.accept is not False, f"{item.id} must be refused, got 202: {response.text}"
        job_id = response.json()["id"]
        body = client.get(f"/api/jobs/{job_id}", headers={"X-Job-Token": response.json()["access_token"]}).json()
        assert body["state"] == "queued"
        name = body["original_filename"]
        if name is not None:  # display-only metadata: a base name without control characters
            assert len(name) <= settings.MAX_FILENAME_LENGTH
            assert not any(ch in name for ch in "/\\\x00\r\n")
            assert name.isprintable()
        new_files = sorted(set(stored_files(settings)) - set(files_before))
        assert new_files == [f"uploads/{job_id}.{body['media_format']}"]
        assert job_count(client) == rows_before + 1
        return

    assert item.accept is not True, f"{item.id} is valid media and must be accepted: {response.text}"
    assert 400 <= response.status_code < 500
    body = response.json()
    assert set(body) == ERROR_SHAPE, body
    assert body["error"]["message"]
    if item.codes:
        assert body["error"]["code"] in item.codes, body
    assert_no_server_internals(response.text, settings)
    assert stored_files(settings) == files_before, "a refused upload leaves no file"
    assert job_count(client) == rows_before, "a refused upload leaves no row"


def test_accepted_hostile_files_end_in_a_final_state_in_a_real_worker(
    env: dict[str, str], model_checkpoint: Path, start_worker: Callable[[dict[str, str]], WorkerProcess]
) -> None:
    """Valid media with nasty extras (appended archives, giant EXIF, lying containers) reach
    `succeeded` or `failed` with a reason, each exactly once, and the worker stays up."""
    worker_env = {
        **env, "MODEL_CHECKPOINT": str(model_checkpoint), "PIPELINE_FRAMES": "4", "PIPELINE_EXPLAIN_TOP_K": "1",
        "HEARTBEAT_SECONDS": "1", "STALE_AFTER_SECONDS": "5", "JOB_SOFT_TIME_LIMIT_SECONDS": "90",
        "JOB_TIME_LIMIT_SECONDS": "100",
    }
    candidates = [item for item in CORPUS if item.accept is not False]
    with api_client(make_settings(worker_env)) as api:
        worker = started(start_worker, worker_env)
        ids = {}
        for item in candidates:
            response = post(api, item)
            if item.accept is None and response.status_code != 202:
                continue
            assert response.status_code == 202, (item.id, response.text)
            ids[item.id] = response.json()["id"]

        def all_final() -> dict[str, dict] | None:
            bodies = {name: api.get(f"/api/jobs/{job_id}").json() for name, job_id in ids.items()}
            done = all(body["state"] in {"succeeded", "failed"} for body in bodies.values())
            return bodies if done else None

        try:
            bodies = wait_for(all_final, timeout=240, interval=1.0, what="every accepted hostile job to finish")
        except BaseException:
            print(worker.log()[-6000:])  # noqa: T201 - shown by pytest only when the test fails
            raise
        assert worker.process.poll() is None, "the worker survived the corpus"
    for name, body in bodies.items():  # type: ignore[union-attr]
        assert body["attempts"] == 1, (name, body)
        if body["state"] == "failed":
            assert body["error"]["message"], (name, body)
            assert_no_server_internals(str(body["error"]), make_settings(worker_env))
            assert body["error"]["code"] != "internal", (name, body["error"])
        else:
            assert body["result"] is not None, name
