"""Secrets, passwords, tokens and client addresses: the pieces the access checks rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from backend.accounts import deps
from backend.main import create_app
from core.accounts.network import address_key, client_address
from core.accounts.passwords import PasswordHasher, common_passwords, password_problem
from core.accounts.security import InvalidToken, decode_access_token, issue_access_token, new_job_token, sha256_hex
from core.db import utcnow
from core.settings import REPO_ROOT, Settings
from tests.backend.accounts.conftest import PASSWORD, actor, register
from tests.servers import free_port

SECRET = "q3Vt9-LmX2pR7sKd8wZyB4nF6hJcA1eG0uTiOoNvWbE"
"""A fixed key of production strength (40 x 's' is now refused: no entropy)."""


def start_api(tmp_path: Path, **env: str) -> tuple[bool, str]:
    """Start the real API under uvicorn with `env`: (whether it answered its liveness probe, its stderr)."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "ENVIRONMENT", "DATABASE_URL"))},
        "PYTHONPATH": str(REPO_ROOT), "VAR_DIR": str(tmp_path / "var"), "REDIS_URL": "", "REAPER_MODE": "off", **env,
    }
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=tmp_path, env=environment, stderr=subprocess.PIPE, text=True)
    started = False
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                started = httpx.get(f"http://127.0.0.1:{port}/api/health/live", timeout=1).status_code == 200
            except httpx.HTTPError:
                started = False
            if started:
                break
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.terminate()
        _, stderr = process.communicate(timeout=20)
    return started, stderr


def test_the_api_refuses_to_start_with_a_weak_secret_outside_development(tmp_path: Path) -> None:
    started, stderr = start_api(tmp_path, ENVIRONMENT="production", SECRET_KEY="too-short-secret", AUTH_MODE="optional")

    assert not started
    assert "SECRET_KEY must be a random value of at least 32 bytes" in stderr


@pytest.mark.parametrize("secret", ["", "development-only-secret-change-me", "x" * 31])
def test_weak_secrets_are_refused_before_an_app_exists(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        create_app(Settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY=secret, VAR_DIR=tmp_path))


def test_a_strong_secret_builds_the_app_in_production(tmp_path: Path) -> None:
    app = create_app(Settings(_env_file=None, ENVIRONMENT="production", SECRET_KEY=SECRET, VAR_DIR=tmp_path))
    assert app.state.settings.SECRET_KEY == SECRET


def test_access_tokens_are_refused_when_expired_forged_or_tampered() -> None:
    now = utcnow()
    token = issue_access_token(SECRET, user_id="u1", session_id="s1", now=now, ttl_seconds=60)
    assert decode_access_token(SECRET, token).session_id == "s1"

    expired = issue_access_token(SECRET, user_id="u1", session_id="s1", now=now - timedelta(minutes=5), ttl_seconds=60)
    header, payload, signature = token.split(".")
    for bad in [
        expired,
        issue_access_token("o" * 40, user_id="u1", session_id="s1", now=now, ttl_seconds=60),
        f"{header}.{payload}.{signature[:-2]}AA",
        "eyJhbGciOiJub25lIn0." + payload + ".",  # alg=none
        "not a token",
    ]:
        with pytest.raises(InvalidToken):
            decode_access_token(SECRET, bad)


def test_job_tokens_are_random_and_stored_only_as_their_hash() -> None:
    tokens = {new_job_token() for _ in range(50)}
    assert len({token for token, _ in tokens}) == 50
    for token, digest in tokens:
        assert len(token) >= 43
        assert digest == sha256_hex(token)
        assert token not in digest


def test_password_policy() -> None:
    assert password_problem("short", email="a@b.co", min_length=10)
    assert password_problem("password123", email="a@b.co", min_length=10)
    assert password_problem("qwertyuiop", email="a@b.co", min_length=10)
    assert password_problem("aaaaaaaaaaaa", email="a@b.co", min_length=10)
    assert password_problem("margaret-2026!", email="margaret@example.com", min_length=10)
    assert password_problem("x" * 300, email="a@b.co", min_length=10)
    assert password_problem(PASSWORD, email="a@b.co", min_length=10) is None
    assert len(common_passwords()) > 100


def test_registration_refuses_weak_passwords_and_taken_emails(app: FastAPI) -> None:
    client = actor(app)
    weak = client.post("/api/auth/register", json={"email": "a@example.com", "password": "password123"})
    assert weak.status_code == 400
    assert weak.json()["error"]["code"] == "weak_password"
    assert client.post("/api/auth/register", json={"email": "nope", "password": PASSWORD}).status_code == 400
    register(app, "a@example.com")
    taken = client.post("/api/auth/register", json={"email": " A@Example.com ", "password": PASSWORD})
    assert taken.status_code == 409


def test_login_does_the_same_password_work_whether_or_not_the_email_exists(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(app, "alice@example.com")
    verified: list[bool] = []
    original = PasswordHasher.verify_and_update

    def counting(self: PasswordHasher, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        verified.append(password_hash is None)
        return original(self, password, password_hash)

    monkeypatch.setattr(PasswordHasher, "verify_and_update", counting)
    unknown = actor(app).post("/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    wrong = actor(app).post("/api/auth/login", json={"email": "alice@example.com", "password": "wrong-wrong-1"})

    assert verified == [True, False]  # one Argon2 verification each, the first against the dummy hash
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["error"] == wrong.json()["error"]


def test_dummy_verification_costs_as_much_as_a_real_one() -> None:
    """Same Argon2 variant, memory, iterations and parallelism: the same work, by construction rather
    than by a wall-clock comparison that a busy machine makes flaky."""
    hasher = PasswordHasher(time_cost=2, memory_kib=19_456)
    stored = hasher.hash(PASSWORD)

    def parameters(password_hash: str) -> str:
        return "$".join(password_hash.split("$")[:4])  # "$argon2id$v=19$m=19456,t=2,p=1"

    assert parameters(hasher._dummy) == parameters(stored)
    assert "m=19456,t=2" in parameters(stored)
    assert hasher.verify("wrong-wrong-1", None) is False


def test_session_cookie_is_httponly_with_configured_flags(accounts_env: dict[str, str]) -> None:
    from fastapi.testclient import TestClient

    from backend.main import create_app
    from tests.conftest import make_settings

    application = create_app(make_settings({**accounts_env, "COOKIE_SECURE": "true", "COOKIE_SAMESITE": "strict"}))
    with TestClient(application, base_url="https://testserver"):
        response = actor(application, base_url="https://testserver").post(
            "/api/auth/register", json={"email": "a@example.com", "password": PASSWORD}
        )
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(f"{deps.SESSION_COOKIE}="))
    csrf = next(c for c in cookies if c.startswith(f"{deps.CSRF_COOKIE}="))
    assert "HttpOnly" in session
    assert "Secure" in session
    assert "SameSite=strict" in session
    assert "HttpOnly" not in csrf  # the page reads it to echo it in X-CSRF-Token


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.5", "1.2.3.4", [], "203.0.113.5"),  # no trusted proxies: the header is ignored
        ("203.0.113.5", "1.2.3.4", ["10.0.0.0/8"], "203.0.113.5"),  # spoofed by an untrusted client
        ("10.0.0.2", "198.51.100.7", ["10.0.0.0/8"], "198.51.100.7"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.9", ["10.0.0.0/8"], "198.51.100.7"),  # client-written left part
        ("10.0.0.2", "garbage", ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", None, ["10.0.0.0/8"], "10.0.0.2"),
    ],
)
def test_client_address_trusts_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: str | None, trusted: list[str], expected: str
) -> None:
    assert client_address(peer, forwarded, trusted) == expected


def test_anonymous_limits_count_ipv6_clients_by_their_64_prefix() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:198.51.100.4") == "198.51.100.4"
    assert address_key("198.51.100.4") == "198.51.100.4"
    assert address_key("testclient") == "testclient"


def test_raising_the_argon2_cost_rehashes_at_the_next_sign_in(accounts_env: dict[str, str]) -> None:
    from fastapi.testclient import TestClient

    from core.accounts.models import User
    from tests.conftest import make_settings

    first = create_app(make_settings(accounts_env))
    with TestClient(first):
        register(first, "alice@example.com")
    stronger = create_app(make_settings({**accounts_env, "PASSWORD_HASH_MEMORY_KIB": "2048"}))
    with TestClient(stronger):
        with stronger.state.database.session() as session:
            before = session.query(User).one().password_hash
        login = actor(stronger).post("/api/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
        assert login.status_code == 200
        with stronger.state.database.session() as session:
            after = session.query(User).one().password_hash
    assert "m=1024" in before
    assert "m=2048" in after
