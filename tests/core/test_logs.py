"""JSON log lines: request and job ids, extras, and no credentials."""

from __future__ import annotations

import json
import logging

import pytest

from core.logs import JsonFormatter, configure_logging, log_context, redact
from tests.backend.factories import png_bytes
from tests.conftest import api_client, make_settings


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("test").makeRecord("test", logging.INFO, __file__, 1, message, args, None, extra=extra)
    for log_filter in next(h for h in logging.getLogger().handlers if getattr(h, "_deepscreen", False)).filters:
        log_filter.filter(made)
    return made


def test_a_line_is_one_json_object_with_the_context_ids() -> None:
    configure_logging("INFO", "json")
    with log_context(request_id="req-1", job_id="job-1"):
        line = JsonFormatter().format(record("job %s done", "x", queue="images"))

    entry = json.loads(line)
    assert entry["message"] == "job x done"
    assert (entry["request_id"], entry["job_id"], entry["queue"]) == ("req-1", "job-1", "images")
    assert entry["level"] == "INFO"


def test_credentials_are_masked() -> None:
    configure_logging("INFO", "json")
    line = JsonFormatter().format(
        record("broker redis://user:hunter2@redis:6379/0 down", password="hunter2", url="postgresql://a:hunter2@db/x")
    )

    assert "hunter2" not in line
    assert redact("postgresql+psycopg://deepscreen:pw@db:5432/d") == "postgresql+psycopg://deepscreen:[redacted]@db:5432/d"


def test_job_tokens_in_query_strings_are_masked_in_access_lines() -> None:
    configure_logging("INFO", "json")
    access = logging.getLogger("uvicorn.access")
    line = JsonFormatter().format(
        access.makeRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", "/api/jobs/j1/events?token=s3cret&x=1", "1.1", 200), None,
        )
    )

    assert "s3cret" not in line
    assert "token=[redacted]&x=1" in line
    # uvicorn's access lines go through this formatter, not uvicorn's own handler
    assert access.propagate
    assert not access.handlers


def test_api_log_lines_carry_the_request_id_and_never_the_upload(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    secret_bytes = png_bytes(67, 41)
    with api_client(make_settings(env)) as client:
        caplog.clear()
        response = client.post("/api/jobs", files={"file": ("private-name.png", secret_bytes)},
                               headers={"X-Request-ID": "req-logs-1"})
    assert response.status_code == 202
    # The records as DeepScreen's handler saw them (its filters add the ids to the record itself).
    lines = [json.loads(JsonFormatter().format(rec)) for rec in caplog.records]

    queued = [line for line in lines if line["message"] == "job queued"]
    assert queued
    assert queued[0]["request_id"] == "req-logs-1"
    assert queued[0]["job_id"] == response.json()["id"]
    text = json.dumps(lines)
    assert "private-name" not in text
    assert secret_bytes.hex()[:64] not in text
