"""Operators' commands and housekeeping: tiers, deactivation, pruning, and cookie renewal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI

from backend.accounts import __main__ as cli
from core.accounts import service
from core.accounts.models import AuthSession, UploadQuota
from core.db import utcnow
from core.settings import get_settings
from tests.backend.accounts.conftest import PASSWORD, actor, register


@pytest.fixture
def process_settings(monkeypatch: pytest.MonkeyPatch, accounts_env: dict[str, str]) -> Iterator[None]:
    """The CLI reads the process settings, as an operator's shell would."""
    for name, value in accounts_env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_set_tier_and_deactivate_from_the_command_line(app: FastAPI, process_settings: None) -> None:
    alice = register(app, "alice@example.com")
    key = actor(app).post("/api/account/keys", json={}, headers=alice.bearer).json()["key"]

    assert cli.main(["set-tier", "Alice@Example.com", "pro"]) == 0
    assert actor(app).get("/api/auth/me", headers=alice.bearer).json()["limits"]["tier"] == "pro"

    assert cli.main(["deactivate", "alice@example.com"]) == 0
    assert actor(app).get("/api/auth/me", headers=alice.bearer).status_code == 401
    assert actor(app).get("/api/auth/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    refused = actor(app).post("/api/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
    assert refused.status_code == 401

    assert cli.main(["activate", "alice@example.com"]) == 0
    assert actor(app).get("/api/auth/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert cli.main(["set-tier", "nobody@example.com", "pro"]) == 1


def test_prune_removes_only_ended_sessions_and_past_counters(app: FastAPI) -> None:
    alice = register(app, "alice@example.com")
    now = utcnow()
    with app.state.database.session() as session:
        user_id = session.query(AuthSession).one().user_id
        session.add(AuthSession(user_id=user_id, created_at=now, expires_at=now - timedelta(days=2)))
        session.add(AuthSession(user_id=user_id, created_at=now, expires_at=now + timedelta(days=1),
                                revoked_at=now - timedelta(days=2)))
        session.add(UploadQuota(subject="addr:x", day=now.date() - timedelta(days=3), used=5))
        session.add(UploadQuota(subject="addr:x", day=now.date(), used=1))
    with app.state.database.session() as session:
        assert service.prune(session) == 3
    with app.state.database.session() as session:
        assert session.query(AuthSession).count() == 1
        assert session.query(UploadQuota).one().day == now.date()
    assert alice.client.get("/api/auth/me").status_code == 200


def test_a_cookie_in_use_is_renewed_but_never_outlives_its_session(app: FastAPI) -> None:
    alice = register(app, "alice@example.com")
    settings = app.state.settings
    with app.state.database.session() as session:
        auth_session = session.query(AuthSession).one()
        old = service.access_token_for(
            auth_session, settings=settings, now=utcnow() - timedelta(seconds=settings.ACCESS_TOKEN_TTL_SECONDS * 0.75)
        )
    client = actor(app, cookies={"deepscreen_session": old})

    response = client.get("/api/auth/me")

    assert response.status_code == 200
    renewed = response.cookies.get("deepscreen_session")
    assert renewed
    assert renewed != old
    # A fresh token is not renewed again.
    assert "deepscreen_session" not in alice.client.get("/api/auth/me").cookies


def test_api_key_use_is_recorded_outside_the_request_transaction(app: FastAPI) -> None:
    alice = register(app, "alice@example.com")
    created = actor(app).post("/api/account/keys", json={"name": "ci"}, headers=alice.bearer).json()
    assert created["last_used_at"] is None
    by_key = {"Authorization": f"Bearer {created['key']}"}

    assert actor(app).get("/api/jobs", headers=by_key).status_code == 200

    listed = actor(app).get("/api/account/keys", headers=alice.bearer).json()
    assert [key["prefix"] for key in listed] == [created["key"][:10]]
    assert listed[0]["last_used_at"] is not None
    assert "key" not in listed[0]
