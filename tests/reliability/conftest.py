"""Reliability tests: hostile input, fuzzing and fault injection (docs/reliability.md).

The API-side tests use a SQLite database only: what they check (status codes, leftovers) does not
depend on the database, and the PostgreSQL stack is exercised by the worker and integration tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from tests.conftest import alembic_config


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'deepscreen.db'}"
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """No rate limits: these tests send many requests from one address on purpose."""
    return {**env, "REQUEST_RATE_LIMIT": "0", "UPLOAD_RATE_LIMIT": "0", "READY_REQUIRES_WORKER": "false"}
