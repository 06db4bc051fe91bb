"""The report's shape (report.json), and the verify endpoint's answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.reports.signing import VerificationOutcome
from ml.contracts import AnalysisResult, Label, MediaKind, ModelInfo, OperatingPoint

REPORT_VERSION = "1.0"


class ReportJob(BaseModel):
    id: str
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    reused_from: str | None = Field(default=None, description="The job whose analysis of the same bytes this reuses.")


class ReportFile(BaseModel):
    name: str | None = Field(description="The file name the client gave, sanitised; None if it gave none.")
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the bytes analysed: check it against the file you hold.")
    kind: MediaKind
    format: str


class ReportSignature(BaseModel):
    algorithm: str = Field(description="Ed25519.")
    canonicalization: str = Field(description="The report without `signature`, keys sorted, no spaces, UTF-8.")
    key_id: str = Field(description="First 16 hex digits of the SHA-256 of the public key.")
    public_key: str = Field(description="Base64 of the 32-byte public key; trust only the one the server publishes.")
    value: str = Field(description="Base64 of the 64-byte signature.")


class Report(BaseModel):
    """What was analysed, when, by which model under which thresholds, and what was found."""

    report_version: str = REPORT_VERSION
    job: ReportJob
    file: ReportFile
    verdict: str = Field(description="The outcome in words, with the figures behind it.")
    label: Label
    score: float | None
    model: ModelInfo
    decision: OperatingPoint = Field(description="Thresholds, target false-alarm rate and calibration set.")
    pipeline: dict[str, Any] = Field(description="The pipeline settings the analysis ran with.")
    result: AnalysisResult
    signature: ReportSignature | None = None


class ReportVerification(BaseModel):
    valid: bool
    outcome: VerificationOutcome
    message: str
    key_id: str | None = Field(description="The key the report names (or this server's, when it matched).")
    job_id: str | None = Field(default=None, description="The job the report names, when it has one.")
    file_sha256: str | None = Field(default=None, description="The file hash the report names, when it has one.")


class PublicKey(BaseModel):
    algorithm: str
    key_id: str
    public_key: str = Field(description="Base64 of the 32-byte Ed25519 public key.")
