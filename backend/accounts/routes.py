"""HTTP routes for accounts: `/api/auth/*` (sign-in) and `/api/account/*` (the signed-in user's things)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from backend.accounts.deps import (
    CallerDep,
    PasswordHasherDep,
    RateLimiterDep,
    UserCallerDep,
    clear_session_cookies,
    limit_login_attempts,
    set_session_cookies,
)
from backend.accounts.schemas import (
    Account,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    AuthConfig,
    Credentials,
    Limits,
    LoginResult,
    Quota,
    UserPublic,
)
from backend.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from backend.errors import error_responses
from core.accounts import service
from core.accounts.models import ApiKey, AuthSession, User
from core.accounts.security import csrf_token
from core.errors import NotFound
from core.settings import AuthMode, Settings

router = APIRouter(prefix="/api", tags=["accounts"], route_class=UnitOfWorkRoute)

_AUTH_ERRORS = error_responses({
    401: "Not signed in, or the credentials are invalid, expired or revoked.",
    403: "A cookie-authenticated change without the X-CSRF-Token header.",
    429: "Too many attempts; Retry-After says when to try again.",
})


def _accounts_enabled(settings: Settings) -> None:
    if settings.AUTH_MODE is AuthMode.off:
        raise NotFound("Accounts are turned off on this server (AUTH_MODE=off).", code="accounts_disabled")


def _user_public(user: User) -> UserPublic:
    return UserPublic(id=user.id, email=user.email, tier=user.tier, created_at=user.created_at)  # type: ignore[arg-type]


def _signed_in(
    response: Response, user: User, auth_session: AuthSession, token: str, settings: Settings
) -> LoginResult:
    set_session_cookies(response, settings, token=token, session_id=auth_session.id)
    return LoginResult(
        user=_user_public(user), access_token=token, expires_in=settings.ACCESS_TOKEN_TTL_SECONDS,
        csrf_token=csrf_token(settings.SECRET_KEY, auth_session.id),
    )


def _key_public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(id=row.id, name=row.name, prefix=row.prefix, created_at=row.created_at,
                        last_used_at=row.last_used_at)


@router.get("/auth/config", response_model=AuthConfig)
def auth_config(settings: SettingsDep, caller: CallerDep) -> AuthConfig:
    """Whether accounts exist on this server, whether this request is signed in, and its upload limits."""
    return AuthConfig(
        mode=settings.AUTH_MODE, password_min_length=settings.PASSWORD_MIN_LENGTH, signed_in=caller.user is not None,
        limits=_limits_public(service.tier_limits(settings, caller.user)),
    )


def _limits_public(limits: service.TierLimits) -> Limits:
    return Limits(tier=limits.tier, daily_uploads=limits.daily_uploads, max_upload_bytes=limits.max_upload_bytes,
                  max_video_seconds=limits.media_limits.max_video_seconds)


@router.post("/auth/register", status_code=status.HTTP_201_CREATED, response_model=LoginResult,
             responses={**error_responses({400: "Invalid email or weak password.", 409: "Email taken."}),
                        **_AUTH_ERRORS})
def register(
    body: Credentials, response: Response, session: SessionDep, settings: SettingsDep, caller: CallerDep,
    hasher: PasswordHasherDep, limiter: RateLimiterDep,
) -> LoginResult:
    """Create an account (free tier) and sign in."""
    _accounts_enabled(settings)
    limit_login_attempts(limiter, settings, caller, body.email)
    user = service.register(session, email=body.email, password=body.password, hasher=hasher, settings=settings)
    auth_session, token = service.open_session(session, user, settings=settings)
    return _signed_in(response, user, auth_session, token, settings)


@router.post("/auth/login", response_model=LoginResult, responses=_AUTH_ERRORS)
def login(
    body: Credentials, response: Response, session: SessionDep, settings: SettingsDep, caller: CallerDep,
    hasher: PasswordHasherDep, limiter: RateLimiterDep,
) -> LoginResult:
    """Sign in: sets the session cookie and returns a Bearer access token for scripts."""
    _accounts_enabled(settings)
    limit_login_attempts(limiter, settings, caller, body.email)
    user, auth_session, token = service.login(
        session, email=body.email, password=body.password, hasher=hasher, settings=settings
    )
    return _signed_in(response, user, auth_session, token, settings)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=_AUTH_ERRORS)
def logout(session: SessionDep, settings: SettingsDep, caller: CallerDep) -> Response:
    """End this session now (its cookie and access tokens stop working)."""
    if caller.session_id is not None:
        service.logout(session, caller.session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookies(response, settings)
    return response


@router.get("/auth/me", response_model=Account, responses=_AUTH_ERRORS)
def me(session: SessionDep, settings: SettingsDep, caller: UserCallerDep) -> Account:
    """The signed-in user, their tier's limits and today's upload quota."""
    assert caller.user is not None
    limits = service.tier_limits(settings, caller.user)
    used, resets_at = service.quota_usage(session, caller, limits)
    return Account(
        user=_user_public(caller.user),
        limits=_limits_public(limits),
        quota=Quota(used=used, limit=limits.daily_uploads, resets_at=resets_at),
        csrf_token=csrf_token(settings.SECRET_KEY, caller.session_id) if caller.via == "cookie" and caller.session_id
        else None,
    )


@router.get("/account/keys", response_model=list[ApiKeyPublic], responses=_AUTH_ERRORS)
def list_api_keys(session: SessionDep, caller: UserCallerDep) -> list[ApiKeyPublic]:
    """The signed-in user's active API keys (never the keys themselves)."""
    assert caller.user is not None
    return [_key_public(row) for row in service.list_api_keys(session, caller.user)]


@router.post("/account/keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated,
             responses=_AUTH_ERRORS)
def create_api_key(body: ApiKeyCreate, session: SessionDep, caller: UserCallerDep) -> ApiKeyCreated:
    """Create an API key; the key is in this response only."""
    assert caller.user is not None
    row, key = service.create_api_key(session, caller.user, name=body.name)
    return ApiKeyCreated(**_key_public(row).model_dump(), key=key)


@router.delete("/account/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={**error_responses({404: "No such key."}), **_AUTH_ERRORS})
def revoke_api_key(key_id: str, session: SessionDep, caller: UserCallerDep) -> Response:
    """Revoke an API key at once."""
    assert caller.user is not None
    service.revoke_api_key(session, caller.user, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
