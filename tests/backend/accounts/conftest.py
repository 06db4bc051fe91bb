"""Accounts tests run the real app (SQLite and PostgreSQL) with AUTH_MODE=optional and a cheap
Argon2 cost, and drive it with one client per actor, so no cookie or token leaks between them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.main import create_app
from core.settings import Settings
from tests.backend.factories import png_bytes
from tests.conftest import make_settings

FAST_HASH = {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "1024"}
PASSWORD = "lantern-quietly-47"


@pytest.fixture
def accounts_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "AUTH_MODE": "optional", "UPLOAD_RATE_LIMIT": "0", **FAST_HASH}


@pytest.fixture
def app(accounts_env: dict[str, str]) -> Iterator[FastAPI]:
    application = create_app(make_settings(accounts_env))
    with TestClient(application):  # runs the lifespan once for every client below
        yield application


def actor(app: FastAPI, **kwargs: Any) -> TestClient:
    """A fresh client: its own cookie jar, no credentials."""
    return TestClient(app, raise_server_exceptions=False, **kwargs)


@dataclass
class Account:
    email: str
    access_token: str
    csrf_token: str
    client: TestClient
    """Signed in with the session cookie (browser-like)."""

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def register(app: FastAPI, email: str, password: str = PASSWORD) -> Account:
    client = actor(app)
    response = client.post("/api/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(email, body["access_token"], body["csrf_token"], client)


def upload(client: TestClient, *, color: tuple[int, int, int] = (10, 20, 30), headers: dict[str, str] | None = None,
           data: bytes | None = None) -> Any:
    return client.post(
        "/api/jobs", files={"file": ("photo.png", data or png_bytes(color=color), "image/png")}, headers=headers or {}
    )


def settings_of(app: FastAPI) -> Settings:
    return app.state.settings  # type: ignore[no-any-return]
