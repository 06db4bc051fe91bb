"""`POST /api/reports/verify` and `GET /api/reports/public-key`: anyone may check a report."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request

from backend.deps import SettingsDep, UnitOfWorkRoute
from backend.errors import error_responses
from core.errors import ApiErrorCode, DomainError, PayloadTooLarge
from core.reports.schemas import PublicKey, ReportVerification
from core.reports.signing import ALGORITHM, report_signer

router = APIRouter(prefix="/api/reports", tags=["reports"], route_class=UnitOfWorkRoute)


class InvalidReport(DomainError):
    status_code = 422
    code = ApiErrorCode.validation_error

MAX_REPORT_BYTES = 20 * 1024 * 1024
"""Far above any report (a 512-frame video with 8 faces a frame is ~1.5 MB), far below harm."""

_REPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The report.json file as downloaded, unchanged.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


async def _read_json_object(request: Request) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REPORT_BYTES:
            raise PayloadTooLarge("That is larger than any report.", details={"max_bytes": MAX_REPORT_BYTES})
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidReport("The body is not JSON; send report.json as it was downloaded.") from exc
    if not isinstance(document, dict):
        raise InvalidReport("A report is a JSON object.")
    return document


@router.post(
    "/verify", response_model=ReportVerification, openapi_extra=_REPORT_BODY,
    responses=error_responses({413: "Larger than any report.", 422: "Not a JSON object."}),
)
async def verify_report(request: Request, settings: SettingsDep) -> ReportVerification:
    """Whether a report.json was signed by this server and is unaltered (200 either way; see `valid`)."""
    document = await _read_json_object(request)
    checked = report_signer(settings).verify(document)
    job = document.get("job")
    file = document.get("file")
    return ReportVerification(
        valid=checked.valid, outcome=checked.outcome, message=checked.message, key_id=checked.key_id,
        job_id=_text(job.get("id")) if isinstance(job, dict) else None,
        file_sha256=_text(file.get("sha256")) if isinstance(file, dict) else None,
    )


@router.get("/public-key", response_model=PublicKey)
def public_key(settings: SettingsDep) -> PublicKey:
    """The key that signs reports, to verify them anywhere (`python -m backend.reports verify --public-key`)."""
    signer = report_signer(settings)
    return PublicKey(algorithm=ALGORITHM, key_id=signer.key_id, public_key=signer.public_key_text)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
