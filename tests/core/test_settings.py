"""Settings: safe defaults for the embedded setup, refusals for unsafe production values."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from dotenv import dotenv_values
from pydantic import ValidationError

from core.settings import REPO_ROOT, Settings


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


@pytest.mark.parametrize("secret", ["a" * 32, "k" * 40, "ab" * 32, "abcd" * 16, "0123456789" * 4])
def test_low_entropy_secret_is_refused_in_production(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is too predictable"):
        Settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY=secret)


@pytest.mark.parametrize("make", [lambda: secrets.token_urlsafe(32), lambda: secrets.token_hex(32),
                                  lambda: secrets.token_urlsafe(24)])
def test_strong_secret_is_accepted_in_production(make: Callable[[], str]) -> None:
    secret = make()
    assert Settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY=secret).SECRET_KEY == secret


@pytest.mark.parametrize("mode", ["optional", "required"])
def test_insecure_cookies_are_refused_in_production_with_accounts(mode: str) -> None:
    strong = secrets.token_urlsafe(32)
    with pytest.raises(ValidationError, match="COOKIE_SECURE=false is refused"):
        Settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY=strong, AUTH_MODE=mode)
    assert Settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY=strong, AUTH_MODE=mode, COOKIE_SECURE=True)
    assert Settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY=strong, AUTH_MODE="off"), "no cookie is set"


def test_copying_env_example_keeps_compose_in_production_with_a_secret_to_set() -> None:
    """docs: `cp .env.example .env && docker compose up`. Compose reads .env for its `${...}`; the
    example must not turn ENVIRONMENT to development nor supply the repository's default secret."""
    example = dotenv_values(REPO_ROOT / ".env.example")
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    assert "ENVIRONMENT" not in example, "Compose's ${ENVIRONMENT:-production} would take the example's value"
    assert "ENVIRONMENT: ${ENVIRONMENT:-production}" in compose
    assert example.get("SECRET_KEY") in (None, ""), "an operator must set the secret"
    assert "SECRET_KEY: ${SECRET_KEY:?" in compose, "Compose refuses to start while SECRET_KEY is unset or empty"
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=REPO_ROOT / ".env.example", ENVIRONMENT="production")


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
