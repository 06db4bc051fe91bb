"""Log setup shared by the API and the worker: one line per record, with request and job ids."""

from __future__ import annotations

import logging

from backend.middleware import RequestIdLogFilter

_FORMAT = "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s job_id=%(job_id)s %(message)s"


class _JobIdDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job_id"):
            record.job_id = None
        return True


def configure_logging(level: str) -> None:
    """Idempotent: safe to call from the API factory and from the worker's startup signal."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    if any(getattr(h, "_deepscreen", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RequestIdLogFilter())
    handler.addFilter(_JobIdDefault())
    handler._deepscreen = True  # type: ignore[attr-defined]
    root.addHandler(handler)
