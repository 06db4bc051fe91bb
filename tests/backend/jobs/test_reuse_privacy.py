"""Anonymous result reuse shares the work, never the other uploader's job: with accounts off, a
second uploader of the same file was told "Result reused from job c2583cab…" and given its id in
`reused_from` (issue 13)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.jobs.models import Job, JobState
from core.settings import Settings
from tests.backend.factories import make_result, png_bytes
from tests.backend.health.factories import write_beat
from tests.conftest import api_client


def test_a_second_anonymous_uploader_gets_the_result_but_not_the_first_job(
    client: TestClient, settings: Settings
) -> None:
    data = png_bytes(color=(7, 70, 140))
    first = client.post("/api/jobs", files={"file": ("a.png", data)}).json()["id"]
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        job = session.get(Job, first)
        job.state = JobState.succeeded
        job.result = make_result(score=0.2).model_dump(mode="json")
        job.model_sha256 = "ab" * 32
    write_beat(settings, model_sha256="ab" * 32)  # reuse needs a live worker serving that model
    (settings.storage_dir / "artifacts" / first).mkdir(parents=True)
    (settings.storage_dir / "artifacts" / first / "report.json").write_text('{"score": 0.2}')

    with api_client(settings) as stranger:
        created = stranger.post("/api/jobs", files={"file": ("b.png", data)})
        job_id = created.json()["id"]
        public = stranger.get(f"/api/jobs/{job_id}")
        listed = stranger.get("/api/jobs")
        report = stranger.get(f"/api/jobs/{job_id}/artifacts/report.json")

    assert created.status_code == 202
    assert public.json()["state"] == "succeeded", "the stored work is reused"
    assert public.json()["result"]["score"] == 0.2
    assert report.status_code == 200
    for response in (created, public, listed, report):
        assert first not in response.text, response.text
        assert first[:8] not in response.text
