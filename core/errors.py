"""Typed domain errors, shared by the API and the worker (which records `public_message` on failed jobs).

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
    ├── UnprocessableMedia      422 (empty, truncated, corrupt, over a media limit)
    └── InsufficientStorage     507 (core.retention.quota: the storage quota or the disk is full)

Every code is an `ApiErrorCode` (the OpenAPI enum a generated client switches on). The HTTP
rendering of these errors (the one handler, `ErrorResponse`) is `backend/errors.py`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from ml.contracts import AnalysisError, ErrorCode


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
