"""Text no database can store (NUL, lone surrogates) in paths, query strings, headers, JSON bodies
and filenames: a 4xx in the one error shape on SQLite and PostgreSQL, never a 500 (psycopg raised
on both, and eight routes answered 500 on PostgreSQL without credentials)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.conftest import api_client, empty_database, make_settings
from tests.reliability.corpus import BOUNDARY, CORPUS, TEXT_CASES, multipart


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both databases (the reliability folder's default is SQLite only): PostgreSQL is the one that refused."""
    return empty_database(request.param, request, tmp_path)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return make_settings({
        **env, "AUTH_MODE": "optional", "PASSWORD_HASH_MEMORY_KIB": "1024", "PASSWORD_HASH_TIME_COST": "1",
    })


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with api_client(settings) as test_client:
        yield test_client


def test_nul_and_lone_surrogates_are_refused_with_a_4xx_everywhere(client: TestClient) -> None:
    signed_in = client.post("/api/auth/register", json={"email": "owner@example.com", "password": "a fine password"})
    assert signed_in.status_code == 201, signed_in.text
    bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    failures = {}
    for case in TEXT_CASES:
        headers = dict(case.headers) | (bearer if case.signed_in else {})
        if case.body is not None:
            headers["content-type"] = "application/json"
        response = client.request(case.method, case.path, content=case.body, headers=headers)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if not (400 <= response.status_code < 500 and set(body) == {"error", "request_id"}):
            failures[case.id] = f"{response.status_code} {response.text[:200]}"
        elif response.headers.get("x-request-id") != body["request_id"]:
            failures[case.id] = "no X-Request-ID matching the body"
    assert not failures, failures
    assert client.get("/api/auth/me", headers=bearer).status_code == 200, "the guard lets clean requests through"


@pytest.mark.parametrize("item", [item for item in CORPUS if item.id in {"filename-nul", "filename-lone-surrogate"}],
                         ids=lambda item: item.id)
def test_filenames_with_nul_or_surrogates_are_stored_clean(client: TestClient, item) -> None:  # noqa: ANN001
    response = client.post(
        "/api/jobs", content=multipart(item.build(), item.filename),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status_code == 202, response.text
    name = client.get(f"/api/jobs/{response.json()['id']}").json()["original_filename"]
    assert name
    assert "\x00" not in name
    assert name.isprintable()
    name.encode("utf-8")  # no lone surrogate
