"""Worker tests run twice: the embedded stack (SQLite + kombu's SQLAlchemy broker) and the
distributed one (PostgreSQL + Redis), each with real `celery worker` processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import empty_database

DISTRIBUTED = pytest.param("distributed", marks=[pytest.mark.postgres, pytest.mark.redis])


@pytest.fixture(params=["embedded", DISTRIBUTED])
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(stack: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database("sqlite" if stack == "embedded" else "postgres", request, tmp_path)


@pytest.fixture
def worker_env(
    env: dict[str, str], stack: str, model_checkpoint: Path, request: pytest.FixtureRequest
) -> dict[str, str]:
    """Settings for the API under test and its workers: fast heartbeats, a real checkpoint, few frames."""
    values = {
        **env,
        "MODEL_CHECKPOINT": str(model_checkpoint),
        "HEARTBEAT_SECONDS": "1",
        "STALE_AFTER_SECONDS": "5",
        "REAPER_INTERVAL_SECONDS": "1",
        "PIPELINE_FRAMES": "8",
        "PIPELINE_EXPLAIN_TOP_K": "1",
    }
    if stack == "distributed":
        values["REDIS_URL"] = request.getfixturevalue("redis_url")
    return values
