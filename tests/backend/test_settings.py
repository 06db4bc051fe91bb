"""Settings: safe defaults for the embedded setup, refusals for unsafe production values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.settings import REPO_ROOT, Settings


def test_embedded_defaults_need_no_server(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, VAR_DIR=tmp_path)

    assert settings.database_url == f"sqlite:///{tmp_path / 'deepscreen.db'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    assert settings.storage_dir == tmp_path / "storage"


def test_redis_url_makes_redis_the_broker() -> None:
    settings = Settings(_env_file=None, REDIS_URL="redis://cache:6379/0", DATABASE_URL="postgresql+psycopg://db/x")

    assert settings.broker_url == "redis://cache:6379/0"
    assert settings.database_url == "postgresql+psycopg://db/x"


@pytest.mark.parametrize("secret", [None, "short"])
def test_default_or_weak_secret_is_refused_outside_development(secret: str | None) -> None:
    values = {"ENVIRONMENT": "production"} | ({"SECRET_KEY": secret} if secret else {})
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_strong_secret_is_accepted_in_production() -> None:
    assert Settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY="k" * 40).SECRET_KEY == "k" * 40


def test_hard_time_limit_must_exceed_the_soft_one() -> None:
    with pytest.raises(ValidationError, match="JOB_TIME_LIMIT_SECONDS"):
        Settings(_env_file=None, JOB_SOFT_TIME_LIMIT_SECONDS=100, JOB_TIME_LIMIT_SECONDS=100)


def test_stale_threshold_must_allow_for_missed_heartbeats() -> None:
    with pytest.raises(ValidationError, match="STALE_AFTER_SECONDS"):
        Settings(_env_file=None, HEARTBEAT_SECONDS=10, STALE_AFTER_SECONDS=15)


def test_env_example_lists_every_setting_with_its_default() -> None:
    example = REPO_ROOT / ".env.example"
    text = example.read_text()
    for name in Settings.model_fields:
        assert f"{name}=" in text, f"{name} is missing from .env.example"
    assert Settings(_env_file=example) == Settings(_env_file=None)
