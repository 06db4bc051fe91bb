"""Fuzz every API operation from its own OpenAPI schema (schemathesis), bounded in examples:
no input may cause a server error, and every documented response must match its schema.

schemathesis' pytest plugin (`from_fixture`) does not work with pytest 9, so the test drives the
operations' Hypothesis strategies itself, one bounded `@given` run per operation. It runs on both
databases: PostgreSQL refuses text SQLite stores (NUL, lone surrogates), which SQLite alone hid.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.openapi import from_asgi

from backend.main import create_app
from tests.conftest import empty_database, make_settings

MAX_EXAMPLES = int(os.environ.get("DEEPSCREEN_FUZZ_EXAMPLES", "8"))
"""Examples per operation; CI keeps the default (well under a minute), a long run raises it."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database(request.param, request, tmp_path)


def test_no_server_error_and_responses_match_the_schema(env: dict[str, str]) -> None:
    app = create_app(make_settings({**env, "PASSWORD_HASH_MEMORY_KIB": "1024", "PASSWORD_HASH_TIME_COST": "1"}))
    failures: dict[str, str] = {}
    with TestClient(app):  # runs the lifespan (storage folders)
        schema = from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10, "the schema lists the API's operations"
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
            )
            def fuzz(case) -> None:  # noqa: ANN001
                case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

            try:
                fuzz()
            except Exception as exc:  # collect every operation's failure, then report them all
                failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
