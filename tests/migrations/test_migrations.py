"""Migrations run on SQLite and PostgreSQL, go down cleanly, and match the models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import core.jobs.models  # noqa: F401  (registers the tables)
import core.workers  # noqa: F401
from core.db import Base
from tests.conftest import alembic_config


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    url: str = request.getfixturevalue("postgres_url")
    command.downgrade(alembic_config(url), "base")  # the session database may already be migrated
    return url


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_then_downgrade_base(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)

    command.upgrade(config, "head")
    assert {"jobs", "alembic_version"} <= tables(empty_database_url)

    command.downgrade(config, "base")
    assert tables(empty_database_url) <= {"alembic_version"}

    command.upgrade(config, "head")  # and up again, as a deploy after a rollback would


def test_models_and_migrations_agree(empty_database_url: str) -> None:
    command.upgrade(alembic_config(empty_database_url), "head")
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    assert differences == []


def test_a_job_that_failed_for_want_of_a_face_becomes_an_inconclusive_success(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0002")
    engine = create_engine(empty_database_url)
    columns = ("id, state, kind, media_format, size_bytes, sha256, model_sha256, force, progress, attempts, "
               "created_at, updated_at, error_code, error_message, result")
    try:
        with engine.begin() as connection:
            for job_id, code, result in (("a" * 32, "no_face_found", '{"label": "inconclusive"}'),
                                         ("b" * 32, "corrupt_media", None)):
                connection.execute(text(
                    f"INSERT INTO jobs ({columns}) VALUES (:id, 'failed', 'image', 'png', 1, :h, :h, false, 100, 1, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :code, 'message', :result)"
                ), {"id": job_id, "h": "0" * 64, "code": code, "result": result})
        command.upgrade(config, "0003")
        with engine.connect() as connection:
            query = text("SELECT id, state || '/' || coalesce(error_code, '-') FROM jobs")
            rows = dict(connection.execute(query).all())
    finally:
        engine.dispose()
        command.upgrade(config, "head")  # the session's PostgreSQL database is shared with later tests

    assert rows == {"a" * 32: "succeeded/-", "b" * 32: "failed/corrupt_media"}
