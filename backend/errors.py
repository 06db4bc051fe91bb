"""Typed domain errors and the one handler that renders every error response.

Exception tree::

    DomainError                 status + stable code + message + JSON-safe details
    ├── NotFound                404 (also for ids a caller may not see, so ids cannot be probed)
    ├── Gone                    410 (a share link that expired or was revoked)
    ├── Conflict                409
    ├── BadRequest              400 (malformed multipart, missing form fields)
    ├── Unauthorized            401 (no, expired, revoked or forged credentials where they are required)
    ├── Forbidden               403 (a cookie-authenticated change without its CSRF token)
    ├── TooManyRequests         429 (rate limit or daily quota; carries Retry-After)
    ├── PayloadTooLarge         413
    ├── UnsupportedMedia        415 (lists the accepted types)
    └── UnprocessableMedia      422 (empty, truncated, corrupt, over a media limit)

SQLAlchemy's pool timeouts and operational errors (database restarting or unreachable) are
answered 503 `unavailable` with Retry-After, not 500: the client can retry (the same code nginx
answers when no API replica is up, so a client handles both alike).

Every error body is `{"error": {"code", "message", "details"}, "request_id"}`, including
FastAPI's own 404/405/422 answers; an unexpected exception becomes a 500 with code `internal`
and no internals in the body. Every code is an `ApiErrorCode` (the OpenAPI enum a generated
client switches on), and every route documents `ErrorResponse` (`ERROR_RESPONSES`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from ml.contracts import AnalysisError, ErrorCode

logger = logging.getLogger(__name__)


class ApiErrorCode(StrEnum):
    """Every `error.code` the API answers with: a closed set, so a client can word each one.

    Includes every job `ErrorCode` (media refused at upload carries the same code as a job that
    failed on it). A new code must be added here: `DomainError` refuses one that is not.
    """

    # media, shared with failed jobs (ml.contracts.ErrorCode)
    corrupt_media = "corrupt_media"
    unsupported_media = "unsupported_media"
    empty_file = "empty_file"
    too_long = "too_long"
    too_large = "too_large"
    dimensions_too_large = "dimensions_too_large"
    dimensions_too_small = "dimensions_too_small"
    timeout = "timeout"
    internal = "internal"
    # requests
    bad_request = "bad_request"
    invalid_text = "invalid_text"
    malformed_multipart = "malformed_multipart"
    missing_file = "missing_file"
    client_disconnected = "client_disconnected"
    validation_error = "validation_error"
    not_found = "not_found"
    gone = "gone"
    method_not_allowed = "method_not_allowed"
    conflict = "conflict"
    rate_limited = "rate_limited"
    quota_exceeded = "quota_exceeded"
    insufficient_storage = "insufficient_storage"
    unavailable = "unavailable"
    # accounts
    not_authenticated = "not_authenticated"
    invalid_credentials = "invalid_credentials"
    forbidden = "forbidden"
    csrf_failed = "csrf_failed"
    invalid_email = "invalid_email"
    weak_password = "weak_password"
    email_taken = "email_taken"
    accounts_disabled = "accounts_disabled"


class ErrorDetail(BaseModel):
    code: ApiErrorCode
    message: str = Field(description="A sentence for a person; the code is what a program should test.")
    details: dict[str, Any] = Field(default_factory=dict, description="JSON-safe context, e.g. the limit exceeded.")


class ErrorResponse(BaseModel):
    """The body of every error answer, the API's and nginx's alike."""

    error: ErrorDetail
    request_id: str | None = Field(description="Quote it when reporting a problem; it is in the server's logs.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {"model": ErrorResponse, "description": "An error, in the shape every error has."},
}
"""Added to every router, so each route documents the error shape (and FastAPI's own 422 schema,
which is not what this API answers, is not advertised)."""


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` for the error statuses it names, each with the `ErrorResponse` body."""
    return {status: {"model": ErrorResponse, "description": text} for status, text in descriptions.items()}


class DomainError(Exception):
    status_code = 400
    code: ApiErrorCode = ApiErrorCode.bad_request

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = ApiErrorCode(code)
        self.details = details or {}
        self.headers = headers


class NotFound(DomainError):
    status_code = 404
    code = ApiErrorCode.not_found


class Conflict(DomainError):
    status_code = 409
    code = ApiErrorCode.conflict


class Gone(DomainError):
    status_code = 410
    code = ApiErrorCode.gone


class BadRequest(DomainError):
    status_code = 400
    code = ApiErrorCode.bad_request


class Unauthorized(DomainError):
    status_code = 401
    code = ApiErrorCode.not_authenticated


class Forbidden(DomainError):
    status_code = 403
    code = ApiErrorCode.forbidden


class TooManyRequests(DomainError):
    status_code = 429
    code = ApiErrorCode.rate_limited


class PayloadTooLarge(DomainError):
    status_code = 413
    code = ApiErrorCode.too_large


class UnsupportedMedia(DomainError):
    status_code = 415
    code = ApiErrorCode.unsupported_media


class UnprocessableMedia(DomainError):
    status_code = 422
    code = ApiErrorCode.corrupt_media


_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
_QUOTED_PATH = re.compile(r"""(['"])(?:[A-Za-z]:)?[\\/][^'"]*\1""")
_BARE_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[\\/](?:[\w.-]+[\\/])*[\w.-]+")


def public_message(message: str) -> str:
    """`message` without server paths or errno numbers, for anything a client sees.

    Decoder errors (PIL, FFmpeg) name the temporary file they read and its errno ("[Errno
    1094995529] Invalid data ...: '/srv/var/storage/tmp/25f1....part'"); the reason stays, the
    server's layout does not."""
    message = _ERRNO.sub("", message)
    message = _QUOTED_PATH.sub("the file", message)
    return _BARE_PATH.sub("the file", message)


def from_analysis_error(exc: AnalysisError) -> DomainError:
    """The HTTP answer for media the pipeline contracts refused before queueing."""
    cls = UnsupportedMedia if exc.code is ErrorCode.unsupported_media else UnprocessableMedia
    return cls(public_message(exc.message), code=exc.code.value, details=exc.details)


_HTTP_CODES = {
    401: ApiErrorCode.not_authenticated, 403: ApiErrorCode.forbidden, 404: ApiErrorCode.not_found,
    405: ApiErrorCode.method_not_allowed, 413: ApiErrorCode.too_large, 429: ApiErrorCode.rate_limited,
}
"""Starlette's own HTTP errors in the API's codes (anything else: bad_request or internal)."""


def error_body(
    request: Request, code: ApiErrorCode, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "error": {"code": code.value, "message": message, "details": jsonable_encoder(details or {})},
        "request_id": getattr(request.state, "request_id", None),
    }


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(
            error_body(request, exc.code, exc.message, exc.details), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        body = error_body(request, ApiErrorCode.validation_error, "The request is not valid.", {"errors": errors})
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code) or (
            ApiErrorCode.internal if exc.status_code >= 500 else ApiErrorCode.bad_request
        )
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
        return JSONResponse(
            error_body(request, code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Pool exhausted, or the database restarting or unreachable: the client may retry; not a bug.
        request_id = getattr(request.state, "request_id", None)
        logger.warning("database unavailable: %s", exc, extra={"request_id": request_id})
        body = error_body(request, ApiErrorCode.unavailable, "The service is busy or restarting; try again shortly.")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    for database_error in (sqlalchemy_exc.TimeoutError, sqlalchemy_exc.OperationalError, sqlalchemy_exc.InterfaceError):
        app.add_exception_handler(database_error, _database_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", None)
        logger.exception("unhandled error", extra={"request_id": request_id})
        body = error_body(request, ApiErrorCode.internal, "An internal error occurred; it has been logged.")
        # Starlette answers unhandled errors outside every middleware, RequestIdMiddleware included,
        # so the header it adds to every other response is set here.
        return JSONResponse(body, status_code=500, headers={"X-Request-ID": request_id} if request_id else None)
