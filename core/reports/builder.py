"""report.json: built by the worker when a job finishes, and again by the API for a reused result
(it names the new job). Signed in both places with the one server key."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from core.jobs.models import Job
from core.reports.schemas import Report, ReportFile, ReportJob
from core.reports.signing import ReportSigner
from ml.contracts import AnalysisResult, Label, LowConfidenceReason, MediaKind

_REASONS = {
    LowConfidenceReason.no_face_found: "no face was found, so nothing could be screened",
    LowConfidenceReason.too_few_faces: "no person was seen in enough frames",
    LowConfidenceReason.scores_disagree: "the scores of the same face disagree from frame to frame",
    LowConfidenceReason.borderline: "the score lies between the inconclusive and the manipulated threshold",
}


def _rate(value: float | None) -> str:
    return "an unmeasured false-alarm rate" if value is None else f"a false-alarm rate of {value:.1%}"


def verdict_text(result: AnalysisResult) -> str:
    """The outcome in words, with the score and the threshold behind it."""
    point = result.decision
    score = "no score" if result.score is None else f"score {result.score:.3f}"
    fitted = f"fitted on {point.calibration_set} for {_rate(point.target_false_alarm_rate)}"
    if result.label is Label.manipulated:
        return (f"Signs of manipulation: {score}, at or above the threshold {point.threshold:.3f} "
                f"({fitted}).")
    if result.label is Label.no_signs:
        return (f"No signs of manipulation found: {score}, below {point.inconclusive_threshold:.3f} "
                f"({fitted}). This is not proof that the media is authentic.")
    reasons = "; ".join(_REASONS.get(reason, reason.value) for reason in result.low_confidence_reasons)
    return f"Inconclusive: {reasons or 'the evidence is too thin for either answer'} ({score})."


def build_report(job: Job, result: AnalysisResult, *, pipeline: dict[str, Any], finished_at: datetime | None,
                 started_at: datetime | None = None) -> dict[str, Any]:
    """The unsigned report of `job` (its row's file and times) for `result`, as JSON-ready data."""
    report = Report(
        job=ReportJob(id=job.id, submitted_at=job.created_at, started_at=started_at or job.started_at,
                      finished_at=finished_at, reused_from=job.visible_reused_from),
        file=ReportFile(name=job.original_filename, size_bytes=job.size_bytes, sha256=job.sha256,
                        kind=MediaKind(job.kind), format=job.media_format),
        verdict=verdict_text(result), label=result.label, score=result.score, model=result.model,
        decision=result.decision, pipeline=pipeline, result=result,
    )
    return report.model_dump(mode="json", exclude={"signature"})


def write_report(path: Path, document: dict[str, Any], signer: ReportSigner) -> None:
    """Sign and write; indented for people, which the canonical form ignores."""
    path.write_text(json.dumps(signer.sign(document), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
