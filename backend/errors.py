"""The one handler that renders every error response (domain errors are `core.errors`).

SQLAlchemy's pool timeouts and operational errors (database restarting or unreachable) are
answered 503 `unavailable` with Retry-After, not 500: the client can retry (the same code nginx
answers when no API replica is up, so a client handles both alike).

Every error body is `{"error": {"code", "message", "details"}, "request_id"}`, including
FastAPI's own 404/405/422 answers; an unexpected exception becomes a 500 with code `internal`
and no internals in the body. Every route documents `ErrorResponse` (`ERROR_RESPONSES`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ApiErrorCode, DomainError

logger = logging.getLogger(__name__)


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
