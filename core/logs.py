"""Log setup shared by the API and the worker: one JSON object per line, carrying the request id
and the job id, so one upload can be followed from the API's request into the worker's task.

The request id travels to the worker in the task message's headers (`core.queue`); the
worker puts it and the job id into the context variables below for the task's duration
(`worker.tasks`). Records never carry uploaded bytes; credentials in URLs and values of
secret-looking fields are masked by the formatter as a last line of defence.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

# Set by the API's RequestIdMiddleware for a request and by the worker for a task; here, not in the
# middleware, so the worker shares the log context without importing the HTTP layer.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s job_id=%(job_id)s %(message)s"
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@", re.I)
_SECRET_KEYS = re.compile(r"password|secret|token|authorization|cookie|api_key", re.I)
_SECRET_QUERY = re.compile(r"(?P<key>[?&](?:token|access_token|api_key)=)[^&\s\"']*", re.I)
_SERVER_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")
"""uvicorn's own loggers; routed through our handler so access lines are JSON and redacted too. "uvicorn"
itself too: its handler (uvicorn's format, no redaction) caught the access lines propagating to it."""
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """Mask URL passwords (`scheme://user:password@host`) and job tokens or keys in query strings
    (`?token=`, used by <img> and EventSource URLs, would otherwise land in access logs)."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{REDACTED}", text)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record made while a request or a task is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class _ContextDefaults(logging.Filter):
    """Fills `job_id` from the task's context when the call did not pass `extra={"job_id": ...}`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = job_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "request_id", "job_id", ...extra, "exception"}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
            "job_id": getattr(record, "job_id", None),
        }
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRIBUTES or key in entry or key.startswith("_"):
                continue
            entry[key] = REDACTED if _SECRET_KEYS.search(key) else _jsonable(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): REDACTED if _SECRET_KEYS.search(str(k)) else _jsonable(v) for k, v in value.items()}
    return redact(str(value))


def configure_logging(level: str, log_format: str = "json") -> None:
    """Idempotent: safe to call from the API factory and from the worker's startup signals."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    formatter = JsonFormatter() if log_format == "json" else _RedactingTextFormatter(_TEXT_FORMAT)
    for handler in root.handlers:
        if getattr(handler, "_deepscreen", False):
            handler.setFormatter(formatter)
            return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdLogFilter())
    handler.addFilter(_ContextDefaults())
    handler._deepscreen = True  # type: ignore[attr-defined]
    root.addHandler(handler)


@contextmanager
def log_context(*, request_id: str | None, job_id: str | None) -> Iterator[None]:
    """Every record made inside carries these ids (used by the worker around one task)."""
    request_token = request_id_var.set(request_id)
    job_token = job_id_var.set(job_id)
    try:
        yield
    finally:
        job_id_var.reset(job_token)
        request_id_var.reset(request_token)
