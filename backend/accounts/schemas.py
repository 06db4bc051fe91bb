"""What clients send and receive about accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.accounts.passwords import MAX_PASSWORD_LENGTH
from core.settings import AuthMode, Tier


class Credentials(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class UserPublic(BaseModel):
    id: str
    email: str
    tier: Tier
    created_at: datetime


class LoginResult(BaseModel):
    user: UserPublic
    access_token: str = Field(description="For scripts: send as `Authorization: Bearer …`; browsers use the cookie.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid; sign in again (or use an API key) after.")
    csrf_token: str = Field(description="Send as X-CSRF-Token with cookie-authenticated POST/PUT/PATCH/DELETE.")


class Limits(BaseModel):
    tier: Tier
    daily_uploads: int
    max_upload_bytes: int
    max_video_seconds: float


class Quota(BaseModel):
    used: int
    limit: int
    resets_at: datetime


class Account(BaseModel):
    user: UserPublic
    limits: Limits
    quota: Quota
    csrf_token: str | None = Field(description="Present when signed in with the session cookie.")


class AuthConfig(BaseModel):
    mode: AuthMode
    password_min_length: int
    signed_in: bool
    limits: Limits = Field(description="The limits this caller's uploads get (signed in: their tier; else anonymous).")


class ApiKeyCreate(BaseModel):
    name: str = Field(default="API key", max_length=100)


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself, shown only now: send it as `Authorization: Bearer …`.")
