"""report.json is evidence: it names the file, job, times, model and thresholds, says the verdict in
words, and its Ed25519 signature refuses any change, by the API, the CLI and the public key alike."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.reports.__main__ import main as report_cli
from core.db import utcnow
from core.jobs.models import JobState
from core.reports.builder import build_report, verdict_text, write_report
from core.reports.signing import ReportSigner, VerificationOutcome, canonical_json, report_signer
from core.settings import Settings
from ml.contracts import Label
from tests.backend.factories import make_job, make_result, png_bytes
from tests.backend.health.factories import write_beat
from tests.conftest import TEST_SECRET

SERVED_MODEL = "ab" * 32


def signed_report(settings: Settings, **job_values: object) -> dict:
    now = utcnow()
    job = make_job(state=JobState.succeeded, original_filename="clip.mp4", size_bytes=4321, sha256="ab" * 32,
                   created_at=now - timedelta(seconds=9), started_at=now - timedelta(seconds=5), **job_values)
    document = build_report(job, make_result(score=0.93), pipeline={"frames": 32}, finished_at=now)
    return report_signer(settings).sign(document)


def test_the_report_names_file_job_times_model_thresholds_and_the_verdict(settings: Settings) -> None:
    report = signed_report(settings)

    assert report["file"] == {"name": "clip.mp4", "size_bytes": 4321, "sha256": "ab" * 32, "kind": "image",
                              "format": "png"}
    assert set(report["job"]) >= {"id", "submitted_at", "started_at", "finished_at"}
    assert report["job"]["submitted_at"] < report["job"]["started_at"] < report["job"]["finished_at"]
    assert report["model"] == {**report["model"], "model_id": "test", "sha256": "2" * 64}
    assert report["decision"]["threshold"] == 0.5
    assert report["decision"]["calibration_set"] == "test"
    assert report["pipeline"] == {"frames": 32}
    assert report["label"] == "manipulated"
    assert report["verdict"].startswith("Signs of manipulation: score 0.930, at or above the threshold 0.500")
    assert report["signature"]["algorithm"] == "Ed25519"


def test_verdicts_in_words_for_the_three_outcomes() -> None:
    assert verdict_text(make_result(score=0.2)).startswith("No signs of manipulation found: score 0.200")
    assert "not proof" in verdict_text(make_result(score=0.2))
    no_face = make_result(low_confidence_reasons=["no_face_found"])
    assert no_face.label is Label.inconclusive
    assert verdict_text(no_face) == "Inconclusive: no face was found, so nothing could be screened (no score)."


def test_a_signed_report_verifies_and_any_change_is_refused(settings: Settings) -> None:
    signer = report_signer(settings)
    report = signed_report(settings)
    reordered = json.loads(json.dumps(report, indent=4, sort_keys=False))
    tampered = {**report, "score": 0.01}
    renamed = {**report, "file": {**report["file"], "name": "other.mp4"}}
    unsigned = {key: value for key, value in report.items() if key != "signature"}
    forged = ReportSigner.from_secret("someone else's secret" * 2).sign(tampered)

    assert signer.verify(report).outcome is VerificationOutcome.valid
    assert signer.verify(reordered).valid, "layout and key order are not part of the signed form"
    assert signer.verify(tampered).outcome is VerificationOutcome.altered
    assert signer.verify(renamed).outcome is VerificationOutcome.altered
    assert signer.verify(unsigned).outcome is VerificationOutcome.not_signed
    assert signer.verify(forged).outcome is VerificationOutcome.unknown_key, "the embedded key is never trusted"
    assert canonical_json(report) == canonical_json(unsigned)
    assert b" " not in canonical_json({"a": [1, 2], "b": {"c": 1}})


def test_the_key_is_derived_from_secret_key_unless_configured(settings: Settings) -> None:
    seed = base64.b64encode(bytes(range(32))).decode()
    derived = ReportSigner.from_secret(TEST_SECRET)

    assert derived.key_id == ReportSigner.from_secret(TEST_SECRET).key_id, "every replica and worker agrees"
    assert derived.key_id != ReportSigner.from_secret(TEST_SECRET + "x").key_id
    assert ReportSigner.from_secret(TEST_SECRET, seed).key_id == ReportSigner.from_secret("other" * 8, seed).key_id
    assert report_signer(settings).key_id == derived.key_id
    with pytest.raises(ValueError, match="32 bytes"):
        ReportSigner.from_secret(TEST_SECRET, base64.b64encode(b"short").decode())


def test_verify_endpoint_answers_valid_or_why_not(client: TestClient, settings: Settings) -> None:
    report = signed_report(settings)

    valid = client.post("/api/reports/verify", content=json.dumps(report, indent=2))
    tampered = client.post("/api/reports/verify", json={**report, "verdict": "No signs of manipulation found."})
    unsigned = client.post("/api/reports/verify", json={"job": {"id": "x"}})
    not_json = client.post("/api/reports/verify", content=b"\x89PNG not json")
    not_object = client.post("/api/reports/verify", json=[1, 2])
    key = client.get("/api/reports/public-key").json()

    assert valid.status_code == 200
    assert valid.json() == {"valid": True, "outcome": "valid", "message": valid.json()["message"],
                            "key_id": report["signature"]["key_id"], "job_id": report["job"]["id"],
                            "file_sha256": "ab" * 32}
    assert tampered.json()["valid"] is False
    assert tampered.json()["outcome"] == "altered"
    assert unsigned.json()["outcome"] == "not_signed"
    assert not_json.status_code == 422
    assert not_json.json()["error"]["code"] == "validation_error"
    assert not_object.status_code == 422
    assert key == {"algorithm": "Ed25519", "key_id": report["signature"]["key_id"],
                   "public_key": report["signature"]["public_key"]}


def test_verify_endpoint_refuses_a_huge_body(client: TestClient) -> None:
    from backend.reports.routes import MAX_REPORT_BYTES

    response = client.post("/api/reports/verify", content=b"{" + b" " * MAX_REPORT_BYTES + b"}")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_the_cli_verifies_with_the_servers_or_a_published_key(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    signer = report_signer(settings)
    good, bad, broken = tmp_path / "report.json", tmp_path / "tampered.json", tmp_path / "broken.json"
    document = signed_report(settings)
    write_report(good, document, signer)
    bad.write_text(good.read_text().replace('"score": 0.93', '"score": 0.03'))
    broken.write_text("{not json")
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("REPORT_SIGNING_KEY", "")
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        assert report_cli(["verify", str(good)]) == 0
        assert report_cli(["verify", str(bad)]) == 1
        assert report_cli(["verify", str(bad), "--public-key", signer.public_key_text]) == 1
        assert report_cli(["verify", str(good), "--public-key", signer.public_key_text, "--json"]) == 0
        assert report_cli(["verify", str(broken)]) == 2
        assert report_cli(["verify", str(good), "--public-key", "not-a-key"]) == 2
        assert report_cli(["public-key"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "VALID (valid)" in out
    assert "NOT VALID (altered)" in out
    assert json.loads(out.splitlines()[3])["valid"] is True
    assert out.splitlines()[-1] == signer.public_key_text


def test_a_reused_result_gets_a_report_naming_the_new_job(client: TestClient, settings: Settings) -> None:
    data = png_bytes(color=(7, 7, 7))
    first = client.post("/api/jobs", files={"file": ("a.png", data)}).json()["id"]
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        from core.jobs.models import Job

        job = session.get(Job, first)
        job.state, job.result = JobState.succeeded, make_result(score=0.2).model_dump(mode="json")
        job.model_sha256 = SERVED_MODEL
        folder = settings.storage_dir / "artifacts" / first
        folder.mkdir(parents=True)
        write_report(folder / "report.json", build_report(job, make_result(score=0.2), pipeline={"frames": 8},
                                                          finished_at=utcnow()), report_signer(settings))

    write_beat(settings, model_sha256=SERVED_MODEL)  # reuse needs a live worker serving that model
    reused = client.post("/api/jobs", files={"file": ("b.png", data)}).json()
    report = client.get(reused["links"]["report"]).json()

    assert reused["reused_from"] is None, "an anonymous uploader is never told another uploader's job"
    assert report["job"]["id"] == reused["id"]
    assert report["job"]["reused_from"] is None
    assert first not in json.dumps(report)
    assert report["file"]["name"] == "b.png"
    assert report["pipeline"] == {"frames": 8}
    assert client.post("/api/reports/verify", json=report).json()["valid"] is True
