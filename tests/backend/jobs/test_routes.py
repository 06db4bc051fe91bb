"""The jobs API against a real database (SQLite and PostgreSQL), with real files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.accounts.security import new_job_token
from core.jobs.models import Job, JobState
from core.settings import Settings
from ml.contracts import Artifact, ArtifactKind
from tests.backend.factories import jpeg_bytes, make_job, make_result, mp4_bytes, png_bytes
from tests.backend.health.factories import write_beat
from tests.conftest import broker_messages

MODEL_A, MODEL_B = "a" * 64, "b" * 64


def submit(client: TestClient, data: bytes, filename: str = "photo.png", path: str = "/api/jobs", **params: str):
    return client.post(path, files={"file": (filename, data, "application/octet-stream")}, params=params)


def stored_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.storage_dir.rglob("*") if p.is_file())


def insert(client: TestClient, job: Job) -> Job:
    """Store a job row and give this client its access token, as if it had submitted it."""
    token, job.access_token_hash = new_job_token()
    client.auth.tokens.append(token)  # type: ignore[attr-defined]
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        session.add(job)
    return job


def test_submit_image_returns_202_with_links_and_stores_the_file(client: TestClient, settings: Settings) -> None:
    response = submit(client, png_bytes(), filename="holiday photo.png")

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "queued"
    assert body["links"]["self"] == f"/api/jobs/{body['id']}"
    assert response.headers["location"] == body["links"]["self"]
    assert response.headers["x-request-id"]
    job = client.get(body["links"]["self"]).json()
    assert job["kind"] == "image"
    assert job["media_format"] == "png"
    assert job["original_filename"] == "holiday photo.png"
    assert job["media"]["width"] == 64
    assert job["queue_position"] == 1
    assert job["progress"] == 0
    assert job["result"] is None
    assert [p.name for p in stored_files(settings)] == [f"{body['id']}.png"]
    assert not list((settings.storage_dir / "tmp").iterdir())
    assert broker_messages(client.app.state.job_queue.celery) == [(body["id"], "images")]  # type: ignore[attr-defined]


def test_submit_video_detects_kind_from_bytes_not_name(client: TestClient) -> None:
    response = submit(client, mp4_bytes(seconds=1.0), filename="not-a-video.png")

    assert response.status_code == 202, response.text
    job = client.get(response.json()["links"]["self"]).json()
    assert broker_messages(client.app.state.job_queue.celery) == [(job["id"], "videos")]  # type: ignore[attr-defined]
    assert job["kind"] == "video"
    assert job["media"]["duration_seconds"] == pytest.approx(1.0, abs=0.15)
    assert job["media"]["fps"] == pytest.approx(10)


@pytest.mark.parametrize("path", ["/api/analyze-image", "/api/analyze-video"])
def test_analyze_aliases_submit_jobs(client: TestClient, path: str) -> None:
    response = submit(client, jpeg_bytes(), filename="a.jpg", path=path)

    assert response.status_code == 202, response.text
    assert client.get(f"/api/jobs/{response.json()['id']}").json()["media_format"] == "jpeg"


def test_queue_position_counts_earlier_jobs_of_the_same_kind(client: TestClient) -> None:
    first = submit(client, png_bytes(color=(1, 2, 3))).json()["id"]
    submit(client, mp4_bytes())
    third = submit(client, png_bytes(color=(4, 5, 6))).json()["id"]

    assert client.get(f"/api/jobs/{first}").json()["queue_position"] == 1
    assert client.get(f"/api/jobs/{third}").json()["queue_position"] == 2


def test_list_is_paginated_newest_first(client: TestClient) -> None:
    ids = [submit(client, png_bytes(color=(i, i, i))).json()["id"] for i in range(3)]

    page = client.get("/api/jobs", params={"limit": 2}).json()
    assert page["total"] == 3
    assert [item["id"] for item in page["items"]] == [ids[2], ids[1]]
    rest = client.get("/api/jobs", params={"limit": 2, "offset": 2}).json()
    assert [item["id"] for item in rest["items"]] == [ids[0]]


def test_list_rejects_bad_pagination_with_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/jobs", params={"limit": 0})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_unknown_job_is_404_with_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/jobs/does-not-exist")

    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "No such job.",
                                         "details": {"job_id": "does-not-exist"}}


def test_delete_queued_job_cancels_it(client: TestClient) -> None:
    job_id = submit(client, png_bytes()).json()["id"]

    response = client.delete(f"/api/jobs/{job_id}")

    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert response.json()["finished_at"] is not None


def test_delete_finished_job_removes_row_and_files(client: TestClient, settings: Settings) -> None:
    job_id = submit(client, png_bytes()).json()["id"]
    client.delete(f"/api/jobs/{job_id}")  # cancel
    artifacts = settings.storage_dir / "artifacts" / job_id
    artifacts.mkdir(parents=True)
    (artifacts / "gradcam_0.png").write_bytes(png_bytes())

    response = client.delete(f"/api/jobs/{job_id}")

    assert response.status_code == 204
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    assert stored_files(settings) == []


def test_same_file_reuses_the_stored_result_unless_forced(client: TestClient, settings: Settings) -> None:
    write_beat(settings, model_sha256=MODEL_A)  # a live worker serves model A
    data = png_bytes(color=(9, 9, 9))
    first_id = submit(client, data).json()["id"]
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        job = session.get(Job, first_id)
        job.state = JobState.succeeded
        job.result = make_result(score=0.1).model_dump(mode="json")
    artifacts = settings.storage_dir / "artifacts" / first_id
    artifacts.mkdir(parents=True)
    (artifacts / "report.json").write_text("{}")

    reused = submit(client, data).json()
    fresh = submit(client, data, force="true").json()

    assert reused["state"] == "succeeded"
    assert reused["reused_from"] is None, "anonymous: the source job is not named"
    body = client.get(f"/api/jobs/{reused['id']}").json()
    assert body["result"]["score"] == 0.1
    assert any("reused" in note for note in body["result"]["notes"])
    assert client.get(f"/api/jobs/{reused['id']}/artifacts/report.json").status_code == 200
    assert fresh["state"] == "queued"
    assert fresh["reused_from"] is None
    sent = [job_id for job_id, _queue in broker_messages(client.app.state.job_queue.celery)]  # type: ignore[attr-defined]
    assert sent == [first_id, fresh["id"]]


def finished_job(client: TestClient, settings: Settings, data: bytes, model: str) -> str:
    """A succeeded job for `data` that ran with `model` (the sha256 its result records)."""
    job_id = submit(client, data, force="true").json()["id"]
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        job = session.get(Job, job_id)
        job.state, job.model_sha256 = JobState.succeeded, model
        job.result = make_result().model_dump(mode="json")
    return str(job_id)


def stored_reuse(client: TestClient, answer: dict) -> str | None:
    """The job a submission reused, as the server recorded it (an anonymous caller is not told)."""
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        return session.get(Job, answer["id"]).reused_from


def test_reuse_follows_the_model_the_workers_serve_not_the_apis_checkpoint(
    client: TestClient, settings: Settings
) -> None:
    data = png_bytes(color=(8, 8, 8))
    old = finished_job(client, settings, data, MODEL_A)
    settings.MODEL_CHECKPOINT.write_bytes(b"the API's own copy, changed: never consulted")

    nobody = submit(client, data).json()
    write_beat(settings, worker="old@w:1", model_sha256=MODEL_A)
    write_beat(settings, worker="new@w:2", model_sha256=MODEL_B)
    rolling = submit(client, data).json()
    write_beat(settings, worker="old@w:1", model_sha256=MODEL_A, age=600)  # gone (stale)
    upgraded = submit(client, data).json()
    new = finished_job(client, settings, data, MODEL_B)
    after = submit(client, data).json()

    assert stored_reuse(client, nobody) is None, "no live worker: no model to match"
    assert stored_reuse(client, rolling) is None, "workers disagree during a rolling upgrade"
    assert stored_reuse(client, upgraded) is None, "the old model's result is not served once workers run the new one"
    assert stored_reuse(client, after) == new
    assert old != new
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        queued = [session.get(Job, j["id"]) for j in (nobody, rolling, upgraded)]
        assert [j.model_sha256 for j in queued] == ["unknown", "unknown", MODEL_B]


def test_reuse_only_counts_workers_of_the_jobs_queue(client: TestClient, settings: Settings) -> None:
    data = png_bytes(color=(7, 7, 7))
    finished_job(client, settings, data, MODEL_A)
    write_beat(settings, worker="images@w:1", queues=["images"], model_sha256=MODEL_A)
    write_beat(settings, worker="videos@w:2", queues=["videos"], model_sha256=MODEL_B)

    assert stored_reuse(client, submit(client, data).json()) is not None


def test_artifacts_are_served_by_safe_name_only(client: TestClient, settings: Settings) -> None:
    job = insert(client, make_job(state=JobState.succeeded))
    artifacts = settings.storage_dir / "artifacts" / job.id
    artifacts.mkdir(parents=True)
    (artifacts / "gradcam_0.png").write_bytes(png_bytes())
    (settings.storage_dir / "secret.txt").write_text("secret")

    ok = client.get(f"/api/jobs/{job.id}/artifacts/gradcam_0.png")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "image/png"
    for name in ["..%2F..%2Fsecret.txt", "..%5Csecret.txt", ".hidden", "missing.png", "%2Fetc%2Fpasswd"]:
        response = client.get(f"/api/jobs/{job.id}/artifacts/{name}")
        assert response.status_code == 404, name
        assert response.json()["error"]["code"] == "not_found"


def test_failed_job_shows_error_code_and_message(client: TestClient) -> None:
    job = insert(client, make_job(state=JobState.failed, error_code="corrupt_media", error_message="Unreadable."))

    body = client.get(f"/api/jobs/{job.id}").json()

    assert body["error"] == {"code": "corrupt_media", "message": "Unreadable.", "details": {}}
    assert body["queue_position"] is None


def test_method_not_allowed_uses_the_error_shape(client: TestClient) -> None:
    response = client.put("/api/jobs")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_stored_error_code_no_release_writes_is_served_as_internal_not_500(client: TestClient) -> None:
    job = insert(client, make_job(state=JobState.failed, error_code="no_face_found", error_message="No face."))

    response = client.get(f"/api/jobs/{job.id}")

    assert response.status_code == 200
    assert response.json()["error"]["code"] == "internal"


def test_links_artifacts_lists_the_artifacts_on_disk_with_sizes(client: TestClient, settings: Settings) -> None:
    job = insert(client, make_job(state=JobState.succeeded, result=make_result().model_copy(update={"artifacts": [
        Artifact(name="gradcam_0.png", kind=ArtifactKind.gradcam, face_rank=1, track_id=0, timestamp_seconds=1.5),
        Artifact(name="report.json", kind=ArtifactKind.report),
        Artifact(name="gone.png", kind=ArtifactKind.frame),  # listed in the result, not on disk
    ]}).model_dump(mode="json")))
    folder = settings.storage_dir / "artifacts" / job.id
    folder.mkdir(parents=True)
    (folder / "gradcam_0.png").write_bytes(png_bytes())
    (folder / "report.json").write_text("{}")
    queued = insert(client, make_job())

    links = client.get(f"/api/jobs/{job.id}").json()["links"]
    listing = client.get(links["artifacts"])
    with_slash = client.get(links["artifacts"] + "/")

    assert listing.status_code == 200, listing.text
    items = listing.json()["items"]
    assert [(i["name"], i["kind"], i["size_bytes"]) for i in items] == [
        ("gradcam_0.png", "gradcam", len(png_bytes())), ("report.json", "report", 2),
    ]
    assert items[0]["face_rank"] == 1
    assert client.get(items[0]["url"]).content == png_bytes()
    assert links["report"] == items[1]["url"]
    assert with_slash.json() == listing.json()
    assert client.get(f"/api/jobs/{queued.id}/artifacts").json() == {"items": []}
    assert TestClient(client.app).get(links["artifacts"]).status_code == 404, "a stranger sees nothing"


def test_results_route_is_an_alias_of_the_job_route(client: TestClient) -> None:
    job = insert(client, make_job(state=JobState.succeeded, result=make_result().model_dump(mode="json")))

    alias = client.get(f"/api/results/{job.id}")

    assert alias.status_code == 200
    assert alias.json() == client.get(f"/api/jobs/{job.id}").json()
    assert client.get("/api/results/" + "0" * 32).status_code == 404
