"""The README's "API in five lines" work as written: each curl line is read from README.md and
sent to the real app, with a real worker step (JobRunner, real pipeline) between upload and reads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.jobs.storage import Storage
from core.settings import REPO_ROOT
from tests.backend.factories import mp4_bytes
from tests.conftest import api_client, make_settings
from worker.runner import JobRunner


def readme_curl_lines() -> list[list[str]]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The API in five lines", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block, "the README's API section has a bash block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def send(client: TestClient, argv: list[str], values: dict[str, str], upload: Path):  # noqa: ANN201
    """One curl command line, as the real app answers it (only the options the README uses)."""
    assert argv[0] == "curl"
    method, headers, files, url = "GET", {}, None, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(": ")
            headers[name] = value.replace("$TOKEN", values.get("TOKEN", ""))
        elif arg == "-F":
            field, _, source = next(args).partition("=@")
            files = {field: (Path(source).name, upload.read_bytes())}
            method = "POST"
        else:
            url = arg
    assert url is not None
    path = re.sub(r"^http://127\.0\.0\.1:8000", "", url).replace("$ID", values.get("ID", ""))
    if path.endswith("/events"):
        with client.stream(method, path, headers=headers) as response:
            body = "".join(response.iter_text())
        return response, body
    response = client.request(method, path, headers=headers, files=files)
    return response, response.text


def test_the_five_readme_lines_work_as_written(env: dict[str, str], model_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="a real analysis runs between the lines: needs the worker extra")
    lines = readme_curl_lines()
    assert len(lines) == 5
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4_bytes(seconds=1.0))
    settings = make_settings({**env, "MODEL_CHECKPOINT": str(model_checkpoint), "PIPELINE_FRAMES": "4",
                              "PIPELINE_EXPLAIN_TOP_K": "0"})
    client = TestClient(api_client(settings).app, raise_server_exceptions=False)  # no remembered tokens: curl
    with client:
        created, _ = send(client, lines[0], {}, clip)
        assert created.status_code == 202, created.text
        values = {"ID": created.json()["id"], "TOKEN": created.json()["access_token"]}
        app = client.app
        runner = JobRunner(settings, app.state.database, Storage(settings.storage_dir), app.state.job_queue)  # type: ignore[attr-defined]
        runner.run(values["ID"], worker="readme-test")

        job, _ = send(client, lines[1], values, clip)
        events, stream = send(client, lines[2], values, clip)
        report, _ = send(client, lines[3], values, clip)
        deleted, _ = send(client, lines[4], values, clip)
        gone = client.get(f"/api/jobs/{values['ID']}", headers={"X-Job-Token": values["TOKEN"]})

    assert job.status_code == 200
    assert job.json()["state"] == "succeeded", job.json()
    assert job.json()["result"]["label"] == "inconclusive", "grey frames: no face"
    assert events.status_code == 200
    assert '"state":"succeeded"' in stream
    assert report.status_code == 200
    assert report.json()["job"]["id"] == values["ID"]
    assert report.json()["signature"]["algorithm"] == "Ed25519"
    assert deleted.status_code == 204
    assert gone.status_code == 404
