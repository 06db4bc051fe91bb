"""Share links: the owner makes a read-only link that opens the job and its files without an
account, until it expires (410) or is revoked (410); an unknown link is a 404; nobody else can
make or revoke one."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from core.db import utcnow
from core.jobs.models import JobState
from core.settings import Settings
from core.shares.models import JobShare
from ml.contracts import Artifact, ArtifactKind
from tests.backend.factories import make_job, make_result, png_bytes
from tests.conftest import api_client, grant_job_token, make_settings
from tests.openapi import schema_errors


def finished_job(client: TestClient, settings: Settings) -> str:
    result = make_result(score=0.9).model_copy(update={"artifacts": [
        Artifact(name="gradcam_0.png", kind=ArtifactKind.gradcam, face_rank=1),
        Artifact(name="report.json", kind=ArtifactKind.report),
    ]})
    job = grant_job_token(client, make_job(state=JobState.succeeded, result=result.model_dump(mode="json"),
                                           attempts=1, finished_at=utcnow()))
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        session.add(job)
    folder = settings.storage_dir / "artifacts" / job.id
    folder.mkdir(parents=True)
    (folder / "gradcam_0.png").write_bytes(png_bytes())
    (folder / "report.json").write_text('{"verdict": "shared"}')
    return job.id


def test_a_share_link_opens_the_job_and_its_files_to_anyone(client: TestClient, settings: Settings) -> None:
    job_id = finished_job(client, settings)

    created = client.post(f"/api/jobs/{job_id}/shares", json={"expires_in_seconds": 3600})
    assert created.status_code == 201, created.text
    share = created.json()
    stranger = TestClient(client.app)  # another browser: no account, no job token
    shared = stranger.get(share["api_url"])
    listing = stranger.get(shared.json()["links"]["artifacts"]).json()
    image = stranger.get(listing["items"][0]["url"])
    report = stranger.get(shared.json()["links"]["report"])
    document = client.get(client.app.openapi_url).json()  # type: ignore[attr-defined]

    assert share["url"] == f"/shared/{share['token']}"
    assert share["active"] is True
    assert 3590 <= (_parse(share["expires_at"]) - utcnow()).total_seconds() <= 3600
    assert shared.status_code == 200, shared.text
    body = shared.json()
    assert body["id"] == job_id
    assert body["result"]["label"] == "manipulated"
    assert body["share_expires_at"] == share["expires_at"]
    assert not {"attempts", "queue_position", "reused_from"} & set(body), "owner-only fields stay with the owner"
    assert schema_errors(document, "SharedJob", body) == []
    assert [item["name"] for item in listing["items"]] == ["gradcam_0.png", "report.json"]
    assert image.content == png_bytes()
    assert report.json() == {"verdict": "shared"}
    assert stranger.get(f"/api/jobs/{job_id}").status_code == 404, "the link opens the shared view only"
    assert [s["id"] for s in client.get(f"/api/jobs/{job_id}/shares").json()["items"]] == [share["id"]]


def test_a_revoked_link_is_gone_at_once_and_an_unknown_one_not_found(client: TestClient, settings: Settings) -> None:
    job_id = finished_job(client, settings)
    share = client.post(f"/api/jobs/{job_id}/shares", json={}).json()

    revoked = client.delete(f"/api/jobs/{job_id}/shares/{share['id']}")
    stranger = TestClient(client.app)
    after = stranger.get(share["api_url"])
    files = stranger.get(share["api_url"] + "/artifacts/report.json")
    unknown = stranger.get("/api/shared/" + "x" * 43)

    assert revoked.status_code == 204
    assert after.status_code == 410
    assert after.json()["error"]["code"] == "gone"
    assert after.json()["error"]["details"]["reason"] == "revoked"
    assert files.status_code == 410
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert client.get(f"/api/jobs/{job_id}/shares").json()["items"][0]["active"] is False
    assert client.delete(f"/api/jobs/{job_id}/shares/{share['id']}").status_code == 204, "revoking twice is fine"
    assert client.delete(f"/api/jobs/{job_id}/shares/nope").status_code == 404


def test_an_expired_link_is_gone(client: TestClient, settings: Settings) -> None:
    job_id = finished_job(client, settings)
    share = client.post(f"/api/jobs/{job_id}/shares", json={"expires_in_seconds": 60}).json()
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        session.execute(update(JobShare).where(JobShare.id == share["id"])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))

    response = TestClient(client.app).get(share["api_url"])

    assert response.status_code == 410
    assert response.json()["error"]["details"]["reason"] == "expired"


def test_only_who_may_read_the_job_may_share_or_revoke(client: TestClient, settings: Settings) -> None:
    job_id = finished_job(client, settings)
    share = client.post(f"/api/jobs/{job_id}/shares", json={}).json()
    stranger = TestClient(client.app)

    assert stranger.post(f"/api/jobs/{job_id}/shares", json={}).status_code == 404
    assert stranger.get(f"/api/jobs/{job_id}/shares").status_code == 404
    assert stranger.delete(f"/api/jobs/{job_id}/shares/{share['id']}").status_code == 404
    assert stranger.get(share["api_url"]).status_code == 200, "the link still works"
    # The link's token is not a job token: it cannot be used to change or share the job.
    as_token = stranger.post(f"/api/jobs/{job_id}/shares", json={}, headers={"X-Job-Token": share["token"]})
    assert as_token.status_code == 404


def test_link_lifetimes_are_bounded(client: TestClient, settings: Settings) -> None:
    job_id = finished_job(client, settings)

    for seconds in (0, 59, 30 * 24 * 3600 + 1):
        response = client.post(f"/api/jobs/{job_id}/shares", json={"expires_in_seconds": seconds})
        assert response.status_code == 422, seconds
        assert response.json()["error"]["code"] == "validation_error"


def test_deleting_the_job_ends_its_links(client: TestClient, settings: Settings) -> None:
    job_id = finished_job(client, settings)
    share = client.post(f"/api/jobs/{job_id}/shares", json={}).json()

    assert client.delete(f"/api/jobs/{job_id}").status_code == 204

    assert TestClient(client.app).get(share["api_url"]).status_code == 404


def test_a_link_works_without_an_account_when_accounts_are_required(env: dict[str, str]) -> None:
    settings = make_settings({**env, "AUTH_MODE": "required", "PASSWORD_HASH_TIME_COST": "1",
                              "PASSWORD_HASH_MEMORY_KIB": "1024"})
    with api_client(settings) as owner:
        registered = owner.post("/api/auth/register", json={"email": "a@example.com", "password": "lantern-quietly-47"})
        bearer = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        job_id = owner.post("/api/jobs", files={"file": ("a.png", png_bytes())}, headers=bearer).json()["id"]
        share = owner.post(f"/api/jobs/{job_id}/shares", json={}, headers=bearer).json()
        anonymous = TestClient(owner.app)

        assert anonymous.get(f"/api/jobs/{job_id}").status_code == 401
        assert anonymous.get(share["api_url"]).json()["state"] == "queued"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
