"""Who is calling, and what they may touch: dependencies for every job, live and account route.

Credentials, strongest first: `Authorization: Bearer <access token | API key>` (scripts; a bad
one is a 401), then the session cookie (browsers; an expired or revoked one is dropped and the
caller is anonymous; changes need the X-CSRF-Token header). Job tokens come from `X-Job-Token`
(comma-separated for lists) or the `token` query parameter (for <img> and EventSource URLs).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from backend.accounts.ratelimit import RateLimiter
from backend.deps import DatabaseDep, SessionDep, SettingsDep
from core.accounts import service
from core.accounts.network import address_key, client_address
from core.accounts.passwords import PasswordHasher
from core.accounts.security import API_KEY_PREFIX, InvalidToken, csrf_token, same_secret
from core.accounts.service import Caller, TierLimits
from core.errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from core.jobs import service as job_service
from core.jobs.models import Job
from core.settings import AuthMode, Settings

SESSION_COOKIE = "deepscreen_session"
CSRF_COOKIE = "deepscreen_csrf"
CSRF_HEADER = "x-csrf-token"
JOB_TOKEN_HEADER = "x-job-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BEARER = {"WWW-Authenticate": "Bearer"}

# The credentials as OpenAPI security schemes, so generated clients and "Try it out" can send them.
# auto_error=False: `get_caller` reads the headers itself and decides what is an error.
_BEARER_SCHEME = HTTPBearer(
    auto_error=False, scheme_name="Bearer", description="An access token from sign-in, or an API key (dsk_...)."
)
_JOB_TOKEN_HEADER_SCHEME = APIKeyHeader(
    name="X-Job-Token", auto_error=False, scheme_name="JobToken",
    description="A job's access_token (from its submission); several comma-separated for lists.",
)
_JOB_TOKEN_QUERY_SCHEME = APIKeyQuery(
    name="token", auto_error=False, scheme_name="JobTokenQuery",
    description="A job's access_token as ?token=, for <img> and EventSource URLs that cannot send headers.",
)
_SESSION_COOKIE_SCHEME = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, scheme_name="SessionCookie",
    description="The browser's session; changes also need the X-CSRF-Token header.",
)


@cache
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_kib=memory_kib)


async def get_password_hasher(settings: SettingsDep) -> PasswordHasher:
    return _hasher(settings.PASSWORD_HASH_TIME_COST, settings.PASSWORD_HASH_MEMORY_KIB)


async def get_rate_limiter(request: Request) -> RateLimiter:
    return request.app.state.rate_limiter  # type: ignore[no-any-return]


PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


def set_session_cookies(response: Response, settings: Settings, *, token: str, session_id: str) -> None:
    common = {"secure": settings.COOKIE_SECURE, "samesite": settings.COOKIE_SAMESITE}
    max_age = settings.SESSION_TTL_SECONDS
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, path="/api", **common)  # type: ignore[arg-type]
    csrf = csrf_token(settings.SECRET_KEY, session_id)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, path="/", **common)  # type: ignore[arg-type]


def clear_session_cookies(response: Response, settings: Settings) -> None:
    common = {"secure": settings.COOKIE_SECURE, "samesite": settings.COOKIE_SAMESITE}
    response.delete_cookie(SESSION_COOKIE, path="/api", httponly=True, **common)  # type: ignore[arg-type]
    response.delete_cookie(CSRF_COOKIE, path="/", **common)  # type: ignore[arg-type]


def _job_tokens(request: Request) -> tuple[str, ...]:
    values = [*request.headers.getlist(JOB_TOKEN_HEADER), *request.query_params.getlist("token")]
    tokens = [token.strip() for value in values for token in value.split(",") if token.strip()]
    return tuple(dict.fromkeys(tokens))[: service.MAX_JOB_TOKENS]


def get_caller(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep, database: DatabaseDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER_SCHEME)] = None,
    _job_token: Annotated[str | None, Security(_JOB_TOKEN_HEADER_SCHEME)] = None,
    _job_token_query: Annotated[str | None, Security(_JOB_TOKEN_QUERY_SCHEME)] = None,
    _session_cookie: Annotated[str | None, Security(_SESSION_COOKIE_SCHEME)] = None,
) -> Caller:
    """The caller of this request; raises 401 only for a bad `Authorization` header.

    The `_` parameters only declare the security schemes; the request is read below, where several
    job tokens and a session's CSRF rule are handled."""
    peer = request.client.host if request.client else None
    address = client_address(peer, request.headers.get("x-forwarded-for"), settings.TRUSTED_PROXIES)
    tokens = _job_tokens(request)
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthorized("Use `Authorization: Bearer <token or API key>`.", headers=_BEARER)
        try:
            if credential.startswith(API_KEY_PREFIX):
                user, key = service.authenticate_api_key(session, credential)
                if service.api_key_needs_touch(key, service.utcnow()):
                    # Its own short unit of work: the request's may last as long as an event stream.
                    with database.session() as own:
                        service.touch_api_key(own, key.id)
                return Caller(user, "api_key", address, tokens)
            user, auth_session, _renew = service.authenticate_token(session, credential, settings=settings)
        except InvalidToken as exc:
            raise Unauthorized(
                "The credentials are invalid, expired or revoked.", code="invalid_credentials", headers=_BEARER
            ) from exc
        return Caller(user, "bearer", address, tokens, session_id=auth_session.id)

    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            user, auth_session, renew = service.authenticate_token(session, cookie, settings=settings)
        except InvalidToken:
            clear_session_cookies(response, settings)
            return Caller(None, "anonymous", address, tokens)
        if request.method not in SAFE_METHODS:
            expected = csrf_token(settings.SECRET_KEY, auth_session.id)
            if not same_secret(request.headers.get(CSRF_HEADER, ""), expected):
                raise Forbidden(
                    "This change needs the X-CSRF-Token header (from the deepscreen_csrf cookie or sign-in).",
                    code="csrf_failed",
                )
        if renew:
            token = service.access_token_for(auth_session, settings=settings, now=service.utcnow())
            set_session_cookies(response, settings, token=token, session_id=auth_session.id)
        return Caller(user, "cookie", address, tokens, session_id=auth_session.id)
    return Caller(None, "anonymous", address, tokens)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_user_caller(caller: CallerDep, settings: SettingsDep) -> Caller:
    """A signed-in caller; with accounts off the route does not exist (404, as the account routes say)."""
    if settings.AUTH_MODE is AuthMode.off:
        raise NotFound("Accounts are turned off on this server (AUTH_MODE=off).", code="accounts_disabled")
    if caller.user is None:
        raise Unauthorized("Sign in first.", headers=_BEARER)
    return caller


UserCallerDep = Annotated[Caller, Depends(get_user_caller)]


async def get_job_caller(caller: CallerDep, settings: SettingsDep) -> Caller:
    """The caller of a job route: anyone, unless AUTH_MODE=required asks for an account."""
    if settings.AUTH_MODE is AuthMode.required and caller.user is None:
        raise Unauthorized("Sign in to use DeepScreen.", headers=_BEARER)
    return caller


JobCallerDep = Annotated[Caller, Depends(get_job_caller)]


def get_visible_job(job_id: str, session: SessionDep, caller: JobCallerDep, settings: SettingsDep) -> Job:
    """The job, if the caller owns it or holds its token; otherwise the same 404 as a missing id."""
    job = job_service.get(session, job_id)
    if not service.can_access_job(caller, job, settings.AUTH_MODE):
        raise NotFound("No such job.", details={"job_id": job_id})
    return job


VisibleJobDep = Annotated[Job, Depends(get_visible_job)]


def _too_many(what: str, retry_after: float) -> TooManyRequests:
    seconds = math.ceil(retry_after)
    return TooManyRequests(f"Too many {what}; try again in {seconds} s.", headers={"Retry-After": str(seconds)})


def limit_requests(caller: CallerDep, settings: SettingsDep, limiter: RateLimiterDep) -> None:
    """The per-user (or per-address) request rate limit, on every job, live and account route."""
    retry_after = limiter.hit(f"requests:{caller.subject}", limit=settings.REQUEST_RATE_LIMIT, window_seconds=60)
    if retry_after is not None:
        raise _too_many("requests", retry_after)


def limit_login_attempts(limiter: RateLimiter, settings: Settings, caller: Caller, email: str) -> None:
    """Brute-force guard: attempts per client address and per account, counted before the password is checked.

    Every attempt counts (not only failures), so parallel guesses cannot all slip in under the limit.
    """
    keys = [f"login:{address_key(caller.address)}", f"login-email:{service.sha256_hex(email.strip().lower())}"]
    window = settings.LOGIN_RATE_WINDOW_SECONDS
    for key in keys:
        retry_after = limiter.hit(key, limit=settings.LOGIN_RATE_LIMIT, window_seconds=window)
        if retry_after is not None:
            raise _too_many("sign-in attempts", retry_after)


async def get_upload_limits(caller: JobCallerDep, settings: SettingsDep) -> TierLimits:
    return service.tier_limits(settings, caller.user)


UploadLimitsDep = Annotated[TierLimits, Depends(get_upload_limits)]


def admit_upload(
    caller: JobCallerDep, limits: UploadLimitsDep, session: SessionDep, settings: SettingsDep, limiter: RateLimiterDep
) -> Caller:
    """Before the body is streamed: the upload rate limit and a look at the daily quota."""
    retry_after = limiter.hit(f"uploads:{caller.subject}", limit=settings.UPLOAD_RATE_LIMIT, window_seconds=60)
    if retry_after is not None:
        raise _too_many("uploads", retry_after)
    service.check_upload_quota(session, caller, limits)
    return caller


UploaderDep = Annotated[Caller, Depends(admit_upload)]


