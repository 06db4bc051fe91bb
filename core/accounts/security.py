"""Tokens and keys: signed access tokens (JWT, HS256), random secrets stored only as hashes,
and CSRF tokens bound to a session.

Every key is derived from SECRET_KEY for one purpose (HMAC with a label), so a value that leaks
from one use (a CSRF token in a page) says nothing about another (the JWT key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "deepscreen"
API_KEY_PREFIX = "ds_"
JOB_TOKEN_BYTES = 32
API_KEY_BYTES = 32


class InvalidToken(Exception):
    """The access token is malformed, expired, or not signed with this deployment's secret."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    issued_at: datetime
    expires_at: datetime


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"deepscreen:{purpose}".encode(), hashlib.sha256).digest()


def issue_access_token(secret: str, *, user_id: str, session_id: str, now: datetime, ttl_seconds: int) -> str:
    claims = {
        "iss": ISSUER, "sub": user_id, "sid": session_id, "typ": "access",
        "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, derive_key(secret, "jwt"), algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """The token's claims; raises `InvalidToken` for any token this deployment did not issue or that expired."""
    try:
        claims = jwt.decode(
            token, derive_key(secret, "jwt"), algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if claims.get("typ") != "access" or not isinstance(claims["sub"], str) or not isinstance(claims["sid"], str):
        raise InvalidToken("not an access token")

    return AccessClaims(
        user_id=claims["sub"], session_id=claims["sid"],
        issued_at=datetime.fromtimestamp(claims["iat"], UTC), expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_job_token() -> tuple[str, str]:
    """A job access token and the hash to store: 256 random bits, so SHA-256 suffices."""
    token = secrets.token_urlsafe(JOB_TOKEN_BYTES)
    return token, sha256_hex(token)


def new_api_key() -> tuple[str, str]:
    """An API key ('ds_' + 256 random bits) and the hash to store."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_BYTES)
    return key, sha256_hex(key)


def csrf_token(secret: str, session_id: str) -> str:
    """The double-submit token of one session: a cross-site page can neither read nor compute it."""
    mac = hmac.new(derive_key(secret, "csrf"), session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
