"""Worker tests run twice: the embedded stack (SQLite + kombu's SQLAlchemy broker) and the
distributed one (PostgreSQL + Redis), each with real `celery worker` processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import alembic_config

DISTRIBUTED = pytest.param("distributed", marks=[pytest.mark.postgres, pytest.mark.redis])


@pytest.fixture(params=["embedded", DISTRIBUTED])
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(stack: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if stack == "embedded":
        from alembic import command

        url = f"sqlite:///{tmp_path / 'deepscreen.db'}"
        command.upgrade(alembic_config(url), "head")
        return url
    url: str = request.getfixturevalue("migrated_postgres_url")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE jobs"))
    engine.dispose()
    return url


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
