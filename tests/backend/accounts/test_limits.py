"""Quotas, rate limits and the brute-force guard hold under pressure, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.accounts.ratelimit import MemoryCounter, RateLimiter, RedisCounter, rate_limiter
from backend.main import create_app
from tests.backend.accounts.conftest import PASSWORD, actor, register, upload
from tests.backend.factories import png_bytes
from tests.conftest import make_settings
from tests.servers import serve_api


def test_concurrent_uploads_at_the_quota_let_exactly_the_quota_through(accounts_env: dict[str, str]) -> None:
    settings = make_settings({**accounts_env, "FREE_DAILY_UPLOADS": "3"})
    with serve_api(settings) as base_url:
        registered = httpx.post(f"{base_url}/api/auth/register", json={"email": "a@example.com", "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        images = [png_bytes(color=(i, 2 * i, 3)) for i in range(10)]
        start = threading.Barrier(len(images))

        def send(data: bytes) -> httpx.Response:
            start.wait()
            return httpx.post(f"{base_url}/api/jobs", files={"file": ("a.png", data, "image/png")}, headers=bearer,
                              timeout=60)

        with ThreadPoolExecutor(len(images)) as pool:
            responses = list(pool.map(send, images))
        me = httpx.get(f"{base_url}/api/auth/me", headers=bearer).json()

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [202] * 3 + [429] * 7
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert me["quota"] == {"used": 3, "limit": 3, "resets_at": me["quota"]["resets_at"]}


def test_uploads_that_fail_validation_do_not_count(app: FastAPI) -> None:
    alice = register(app, "alice@example.com")
    headers = {"X-CSRF-Token": alice.csrf_token}

    assert upload(alice.client, data=b"just some text, not media", headers=headers).status_code == 415
    assert upload(alice.client, data=png_bytes()[:40], headers=headers).status_code == 422
    assert alice.client.get("/api/auth/me").json()["quota"]["used"] == 0
    assert upload(alice.client, headers=headers).status_code == 202
    assert alice.client.get("/api/auth/me").json()["quota"]["used"] == 1


def test_free_tier_has_a_smaller_size_limit_than_pro(accounts_env: dict[str, str]) -> None:
    application = create_app(make_settings({**accounts_env, "FREE_MAX_UPLOAD_BYTES": "500"}))
    with TestClient(application):
        alice = register(application, "alice@example.com")
        big = png_bytes(width=300, height=300, color=(1, 2, 3))
        assert len(big) > 500
        too_big = upload(actor(application), data=big, headers=alice.bearer)
        assert too_big.status_code == 413
        assert too_big.json()["error"]["details"]["max_upload_bytes"] == 500
        with application.state.database.session() as session:
            from core.accounts.models import User

            session.query(User).filter_by(email="alice@example.com").update({"tier": "pro"})
        assert upload(actor(application), data=big, headers=alice.bearer).status_code == 202
        assert actor(application).get("/api/auth/me", headers=alice.bearer).json()["limits"]["tier"] == "pro"


def test_the_auth_config_states_the_callers_limits_before_any_sign_in(accounts_env: dict[str, str]) -> None:
    """The home page states the limits to someone who has not signed in (issue 14: it said none)."""
    application = create_app(make_settings({**accounts_env, "FREE_MAX_UPLOAD_BYTES": "500", "FREE_DAILY_UPLOADS": "3"}))
    with TestClient(application):
        anonymous = actor(application).get("/api/auth/config").json()["limits"]
        alice = register(application, "alice@example.com")
        with application.state.database.session() as session:
            from core.accounts.models import User

            session.query(User).filter_by(email="alice@example.com").update({"tier": "pro"})
        signed_in = actor(application).get("/api/auth/config", headers=alice.bearer).json()["limits"]

    assert anonymous["max_upload_bytes"] == 500
    assert anonymous["daily_uploads"] == 3
    assert signed_in["tier"] == "pro"
    assert signed_in["max_upload_bytes"] > 500


def test_anonymous_quota_counts_per_client_address(accounts_env: dict[str, str]) -> None:
    application = create_app(make_settings({**accounts_env, "FREE_DAILY_UPLOADS": "1"}))
    with TestClient(application):
        first = actor(application, client=("203.0.113.7", 5000))
        assert upload(first, color=(1, 1, 1)).status_code == 202
        refused = upload(first, color=(2, 2, 2))
        assert refused.status_code == 429
        assert "retry-after" in refused.headers
        assert upload(actor(application, client=("203.0.113.8", 5000)), color=(3, 3, 3)).status_code == 202


def test_login_brute_force_limit_holds_per_address_and_per_account(accounts_env: dict[str, str]) -> None:
    settings = make_settings({**accounts_env, "LOGIN_RATE_LIMIT": "5", "TRUSTED_PROXIES": ["10.0.0.0/8"]})
    application = create_app(settings)
    with TestClient(application):
        register(application, "alice@example.com")
        attacker = actor(application, client=("198.51.100.1", 4000))
        for _ in range(4):  # registration counted one attempt from the default client, not this one
            wrong = attacker.post("/api/auth/login", json={"email": "alice@example.com", "password": "guess-guess-1"})
            assert wrong.status_code == 401
            assert wrong.json()["error"]["code"] == "invalid_credentials"
        # The account's limit (5, the registration counted) is reached: even the right password waits now.
        blocked = attacker.post("/api/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        # Rotating addresses through a trusted proxy does not reset the per-account limit...
        proxy = actor(application, client=("10.1.2.3", 4000))
        rotated = proxy.post("/api/auth/login", json={"email": "alice@example.com", "password": PASSWORD},
                             headers={"X-Forwarded-For": "192.0.2.55"})
        assert rotated.status_code == 429
        # ...and one address spraying many accounts hits the per-address limit.
        sprayer = actor(application, client=("198.51.100.2", 4000))
        codes = [sprayer.post("/api/auth/login", json={"email": f"u{i}@example.com", "password": "guess-guess-1"})
                 .status_code for i in range(6)]
        assert codes == [401] * 5 + [429]


def test_request_rate_limit_per_caller(accounts_env: dict[str, str]) -> None:
    application = create_app(make_settings({**accounts_env, "REQUEST_RATE_LIMIT": "5"}))
    with TestClient(application):
        client = actor(application, client=("198.51.100.9", 4000))
        codes = [client.get("/api/jobs").status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        assert actor(application, client=("198.51.100.10", 4000)).get("/api/jobs").status_code == 200


@pytest.mark.redis
def test_rate_limits_are_shared_across_replicas_through_redis(redis_url: str) -> None:
    replica_a, replica_b = RateLimiter(RedisCounter(redis_url)), RateLimiter(RedisCounter(redis_url))
    key = f"test:{threading.get_ident()}:{id(replica_a)}"
    try:
        assert replica_a.hit(key, limit=2, window_seconds=60) is None
        assert replica_b.hit(key, limit=2, window_seconds=60) is None
        retry_after = replica_a.hit(key, limit=2, window_seconds=60)
        assert retry_after is not None
        assert 0 < retry_after <= 60
    finally:
        replica_a.close()
        replica_b.close()


def test_rate_limits_fall_back_to_the_process_when_redis_is_down() -> None:
    limiter = RateLimiter(RedisCounter("redis://127.0.0.1:1/0"))
    assert limiter.hit("k", limit=1, window_seconds=60) is None
    assert limiter.hit("k", limit=1, window_seconds=60) is not None


def test_the_counter_is_chosen_once_from_redis_url(env: dict[str, str]) -> None:
    assert isinstance(rate_limiter(make_settings({**env, "REDIS_URL": ""})).counter, MemoryCounter)
    shared = rate_limiter(make_settings({**env, "REDIS_URL": "redis://127.0.0.1:1/0"}))
    assert isinstance(shared.counter, RedisCounter)
    shared.close()
