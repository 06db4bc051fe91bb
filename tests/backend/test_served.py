"""The API started exactly as the repository starts it (scripts/run, the Docker CMD, docs/scaling.md),
as a real process whose output goes to a real log file: what reaches that file is what an
operator's log holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET, alembic_config
from tests.servers import ServedApi, documented_api_commands, free_port

LAUNCHES = list(documented_api_commands(0))


@pytest.fixture
def served_env(tmp_path: Path) -> dict[str, str]:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'deepscreen.db'}"
    command.upgrade(alembic_config(url), "head")
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"only hashed by the API")
    return {
        "ENVIRONMENT": "test", "SECRET_KEY": TEST_SECRET, "VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": url,
        "REDIS_URL": "", "MODEL_CHECKPOINT": str(checkpoint), "FRONTEND_DIST": str(tmp_path / "no-frontend"),
        "REAPER_MODE": "off", "LOG_LEVEL": "INFO", "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


@pytest.fixture(params=LAUNCHES)
def served(request: pytest.FixtureRequest, served_env: dict[str, str], tmp_path: Path) -> Iterator[ServedApi]:
    port = free_port()
    api = ServedApi(documented_api_commands(port)[request.param], served_env, tmp_path / "api.log", port)
    try:
        yield api
    finally:
        api.stop()


def test_job_tokens_never_reach_the_access_log(served: ServedApi) -> None:
    secret = "s3cretTOKENvalue0123456789"
    for path in (f"/api/jobs/abc?token={secret}", f"/api/jobs/abc/events?token={secret}",
                 f"/api/jobs?x=1&token={secret}&api_key={secret}"):
        assert httpx.get(served.url + path, timeout=10).status_code < 500
    served.stop()  # flushes and closes the log file

    log = served.log()
    assert secret not in log, [line for line in log.splitlines() if secret in line]
    assert log.count("token=[redacted]") >= 3, "the access lines are in the log, masked"
