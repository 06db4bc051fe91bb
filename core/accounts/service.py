"""The rules about accounts and access: registration, sign-in sessions, API keys, tiers and
quotas, and who may see a job. Functions take a session and never commit.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.accounts import repository
from core.accounts.models import ApiKey, AuthSession, User
from core.accounts.network import address_key
from core.accounts.passwords import PasswordHasher, password_problem
from core.accounts.security import (
    InvalidToken,
    decode_access_token,
    issue_access_token,
    new_api_key,
    sha256_hex,
)
from core.db import utcnow
from core.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from core.jobs.models import Job
from core.settings import AuthMode, Settings, Tier
from ml.contracts import MediaLimits

logger = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_JOB_TOKENS = 100
"""Job tokens read from one request (history lists send one per job kept in the browser)."""


@dataclass(frozen=True)
class Caller:
    """Who is calling. `via` says how the user proved it; `job_tokens` are capabilities for jobs."""

    user: User | None
    via: Literal["anonymous", "cookie", "bearer", "api_key"]
    address: str
    job_tokens: tuple[str, ...] = ()
    session_id: str | None = None
    renew_cookie: bool = field(default=False, compare=False)

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user else None

    @property
    def subject(self) -> str:
        """The key for quotas and rate limits: the user, else the client address."""
        return f"user:{self.user.id}" if self.user else f"addr:{address_key(self.address)}"


@dataclass(frozen=True)
class TierLimits:
    tier: Tier
    daily_uploads: int
    max_upload_bytes: int
    media_limits: MediaLimits


def tier_limits(settings: Settings, user: User | None) -> TierLimits:
    tier = Tier(user.tier) if user else settings.anonymous_tier
    base = settings.media_limits
    if tier is Tier.pro:
        return TierLimits(tier, settings.PRO_DAILY_UPLOADS, settings.MAX_UPLOAD_BYTES, base)
    return TierLimits(
        tier, settings.FREE_DAILY_UPLOADS, min(settings.FREE_MAX_UPLOAD_BYTES, settings.MAX_UPLOAD_BYTES),
        base.model_copy(update={"max_video_seconds": min(settings.FREE_MAX_VIDEO_SECONDS, base.max_video_seconds)}),
    )


# --- registration and sign-in -----------------------------------------------------------------


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise BadRequest("Enter a valid email address.", code="invalid_email")
    return email


def register(session: Session, *, email: str, password: str, hasher: PasswordHasher, settings: Settings) -> User:
    email = normalize_email(email)
    problem = password_problem(password, email=email, min_length=settings.PASSWORD_MIN_LENGTH)
    if problem:
        raise BadRequest(problem, code="weak_password")
    if repository.user_by_email(session, email) is not None:
        raise Conflict("An account with this email already exists.", code="email_taken")
    user = User(email=email, password_hash=hasher.hash(password), tier=Tier.free, is_active=True)
    try:
        with session.begin_nested():
            repository.add(session, user)
    except IntegrityError as exc:  # registered concurrently
        raise Conflict("An account with this email already exists.", code="email_taken") from exc
    logger.info("user registered", extra={"user_id": user.id})
    return user


def login(
    session: Session, *, email: str, password: str, hasher: PasswordHasher, settings: Settings
) -> tuple[User, AuthSession, str]:
    """Check the password and open a session; the same Argon2 work is done for unknown emails."""
    try:
        email = normalize_email(email)
    except BadRequest:
        email = ""
    user = repository.user_by_email(session, email) if email else None
    valid, new_hash = hasher.verify_and_update(password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    if new_hash is not None:
        user.password_hash = new_hash
    return user, *open_session(session, user, settings=settings)


def open_session(session: Session, user: User, *, settings: Settings) -> tuple[AuthSession, str]:
    now = utcnow()
    expires_at = now + timedelta(seconds=settings.SESSION_TTL_SECONDS)
    auth_session = AuthSession(user_id=user.id, created_at=now, expires_at=expires_at)
    repository.add(session, auth_session)
    return auth_session, access_token_for(auth_session, settings=settings, now=now)


def access_token_for(auth_session: AuthSession, *, settings: Settings, now: datetime) -> str:
    """A fresh access token for the session, never outliving it."""
    ttl = min(settings.ACCESS_TOKEN_TTL_SECONDS, int((auth_session.expires_at - now).total_seconds()))
    return issue_access_token(
        settings.SECRET_KEY, user_id=auth_session.user_id, session_id=auth_session.id, now=now, ttl_seconds=max(ttl, 1)
    )


def logout(session: Session, session_id: str) -> None:
    repository.revoke_session(session, session_id, now=utcnow())
    logger.info("session revoked", extra={"session_id": session_id})


def authenticate_token(session: Session, token: str, *, settings: Settings) -> tuple[User, AuthSession, bool]:
    """The user and session of an access token, and whether it is old enough to renew.

    Raises `InvalidToken` for a forged, expired or foreign token and for a revoked or expired
    session: the signature alone never suffices, so logout ends access at once.
    """
    claims = decode_access_token(settings.SECRET_KEY, token)
    now = utcnow()
    found = repository.live_session(session, claims.session_id, now=now)
    if found is None or found[1].id != claims.user_id:
        raise InvalidToken("session ended")
    renew = (now - claims.issued_at).total_seconds() > settings.ACCESS_TOKEN_TTL_SECONDS / 2
    return found[1], found[0], renew


API_KEY_TOUCH_SECONDS = 300
"""`last_used_at` is refreshed at most this often, so busy scripts do not write on every request."""


def authenticate_api_key(session: Session, key: str) -> tuple[User, ApiKey]:
    """The key's user; reading only (the request's transaction may stay open for a whole stream)."""
    found = repository.live_api_key(session, sha256_hex(key))
    if found is None:
        raise InvalidToken("unknown or revoked API key")
    return found[1], found[0]


def api_key_needs_touch(key: ApiKey, now: datetime) -> bool:
    return key.last_used_at is None or (now - key.last_used_at).total_seconds() > API_KEY_TOUCH_SECONDS


def touch_api_key(session: Session, key_id: str) -> None:
    repository.touch_api_key(session, key_id, now=utcnow())


# --- API keys -----------------------------------------------------------------------------------


def create_api_key(session: Session, user: User, *, name: str) -> tuple[ApiKey, str]:
    """A new key for `user`; the key itself is returned only here and never stored."""
    key, key_hash = new_api_key()
    row = ApiKey(user_id=user.id, name=name.strip()[:100] or "API key", prefix=key[:10], key_hash=key_hash)
    repository.add(session, row)
    logger.info("API key created", extra={"user_id": user.id, "api_key_id": row.id})
    return row, key


def list_api_keys(session: Session, user: User) -> list[ApiKey]:
    return list(repository.api_keys_of(session, user.id))


def revoke_api_key(session: Session, user: User, key_id: str) -> None:
    if not repository.revoke_api_key(session, key_id, user_id=user.id, now=utcnow()):
        raise NotFound("No such API key.", details={"key_id": key_id})
    logger.info("API key revoked", extra={"user_id": user.id, "api_key_id": key_id})


# --- quotas ---------------------------------------------------------------------------------------


def _next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)


def quota_exceeded(limits: TierLimits, now: datetime) -> TooManyRequests:
    retry_after = max(1, int((_next_utc_midnight(now) - now).total_seconds()))
    return TooManyRequests(
        f"The daily upload quota of {limits.daily_uploads} ({limits.tier.value} tier) is used up; "
        "it resets at midnight UTC.",
        code="quota_exceeded", details={"limit": limits.daily_uploads, "tier": limits.tier.value},
        headers={"Retry-After": str(retry_after)},
    )


def check_upload_quota(session: Session, caller: Caller, limits: TierLimits) -> None:
    """Refuse before the upload is streamed when nothing is left (the slot is taken after validation)."""
    now = utcnow()
    if repository.uploads_used(session, caller.subject, now.date()) >= limits.daily_uploads:
        raise quota_exceeded(limits, now)


def take_upload_slot(session: Session, caller: Caller, limits: TierLimits) -> None:
    """Count one upload of a validated file, atomically; rolled back with the job if submission fails."""
    now = utcnow()
    if not repository.take_upload(session, caller.subject, now.date(), limit=limits.daily_uploads):
        raise quota_exceeded(limits, now)


def quota_usage(session: Session, caller: Caller, limits: TierLimits) -> tuple[int, datetime]:
    now = utcnow()
    return repository.uploads_used(session, caller.subject, now.date()), _next_utc_midnight(now)


# --- job access -----------------------------------------------------------------------------------


def token_hashes(caller: Caller, mode: AuthMode) -> list[str]:
    """Hashes of the caller's job tokens; none count when accounts are required."""
    return [] if mode is AuthMode.required else [sha256_hex(token) for token in caller.job_tokens]


def can_access_job(caller: Caller, job: Job, mode: AuthMode) -> bool:
    """The owner may; so may whoever holds the job's token, except when accounts are required."""
    if caller.user is not None and job.owner_id == caller.user.id:
        return True
    if mode is AuthMode.required or job.access_token_hash is None:
        return False
    return any(hmac.compare_digest(digest, job.access_token_hash) for digest in token_hashes(caller, mode))


# --- housekeeping and administration ------------------------------------------------------------------


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete sessions ended more than a day ago and upload counters of past days; safe to run anywhere, any time.

    Meant for the periodic maintenance pass (retention sweep); returns the rows removed.
    """
    now = now or utcnow()
    removed = repository.delete_ended_sessions(session, before=now - timedelta(days=1))
    return removed + repository.delete_quota_days(session, before=now.date() - timedelta(days=1))


def set_tier(session: Session, email: str, tier: Tier) -> None:
    if not repository.set_user(session, normalize_email(email), tier=tier.value, updated_at=utcnow()):
        raise NotFound("No such user.", details={"email": email})


def set_active(session: Session, email: str, active: bool) -> None:
    """Deactivating a user ends every session and API key at once (both are checked against the user)."""
    if not repository.set_user(session, normalize_email(email), is_active=active, updated_at=utcnow()):
        raise NotFound("No such user.", details={"email": email})
