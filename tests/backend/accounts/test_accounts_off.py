"""With AUTH_MODE=off the account routes do not exist: 404 accounts_disabled, as docs/security.md
says, including those that need a signed-in user (they answered 401 "Sign in first.")."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

ACCOUNT_ROUTES = [
    ("GET", "/api/auth/me"), ("GET", "/api/account/keys"), ("POST", "/api/account/keys"),
    ("DELETE", "/api/account/keys/k1"), ("POST", "/api/auth/login"), ("POST", "/api/auth/register"),
]


@pytest.mark.parametrize(("method", "path"), ACCOUNT_ROUTES)
def test_account_routes_are_404_with_accounts_off(client: TestClient, method: str, path: str) -> None:
    body = {"email": "a@example.com", "password": "a fine password"} if method == "POST" else None
    response = client.request(method, path, json=body)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "accounts_disabled"
