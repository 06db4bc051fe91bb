"""The small, torch-free contracts the pipeline shares with the API and the worker.

The API imports this module (never torch): it stores and serves `AnalysisResult`, maps
`AnalysisError.code` to job error codes and reports `Stage` progress. Bump
`RESULT_SCHEMA_VERSION` on any change a client could notice.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

RESULT_SCHEMA_VERSION = "2.1"

DEFAULT_CHECKPOINT = Path(__file__).parent / "weights" / "deepscreen-effnet-lite0.safetensors"
"""The shipped model; here rather than in `ml.model` so the API can name it without importing torch."""


class MediaKind(StrEnum):
    image = "image"
    video = "video"


class Stage(StrEnum):
    """Pipeline stages in execution order; the worker adds `saving` after the pipeline."""

    probing = "probing"
    sampling = "sampling"
    detecting = "detecting"
    classifying = "classifying"
    aggregating = "aggregating"
    explaining = "explaining"
    saving = "saving"


class ErrorCode(StrEnum):
    """Stable machine-readable failure codes, shared by the API's 4xx answers and failed jobs.

    A file without a face is not a failure: it is an `inconclusive` result with the reason
    `LowConfidenceReason.no_face_found`.
    """

    corrupt_media = "corrupt_media"
    unsupported_media = "unsupported_media"
    empty_file = "empty_file"
    too_long = "too_long"
    too_large = "too_large"
    dimensions_too_large = "dimensions_too_large"
    dimensions_too_small = "dimensions_too_small"
    timeout = "timeout"
    internal = "internal"


class AnalysisError(Exception):
    """A failure the user can act on: the media itself is the problem, not the service.

    `code` is an `ErrorCode`; `details` is JSON-safe context (the limit that was exceeded, say).
    Raised by probing and by the pipeline; never swallowed into a made-up score.
    """

    def __init__(self, code: ErrorCode, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class MediaLimits(BaseModel):
    """Limits checked before a file is queued and again by the pipeline; values come from settings."""

    model_config = ConfigDict(frozen=True)

    max_video_seconds: float = 600.0
    max_frame_pixels: int = 3840 * 2160
    max_image_pixels: int = 50_000_000
    max_image_side: int = 16_384


class MediaInfo(BaseModel):
    kind: MediaKind
    format: str = Field(description="Detected container or image format, e.g. 'mp4', 'jpeg'.")
    width: int
    height: int
    duration_seconds: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    rotation_degrees: int = 0
    codec: str | None = None


class Aggregation(StrEnum):
    """How the face scores of one person become that person's score (`ml.aggregate`)."""

    mean = "mean"
    trimmed_top = "trimmed_top"
    confident = "confident"


class Signal(StrEnum):
    """What a classifier head looks for; each has its own calibrated operating point."""

    face_manipulation = "face_manipulation"
    """A real face altered: swapped, blended or re-enacted."""
    synthetic_face = "synthetic_face"
    """A face generated whole (StyleGAN and the like): there is no real person behind it."""


class Label(StrEnum):
    """The three outcomes of a calibrated decision, used by the API, the web app and the CLI alike."""

    no_signs = "no_signs"
    """No signs of manipulation found. Not proof that the media is authentic."""
    inconclusive = "inconclusive"
    """The analysis ran, but the score is in the band between the thresholds or the evidence is thin."""
    manipulated = "manipulated"
    """Signs of manipulation: the score reached the threshold fitted for the stated false-alarm rate."""


class LowConfidenceReason(StrEnum):
    """Why a result is inconclusive."""

    no_face_found = "no_face_found"
    too_few_faces = "too_few_faces"
    scores_disagree = "scores_disagree"
    borderline = "borderline"
    """The score lies between the inconclusive and the manipulated threshold."""


class ArtifactKind(StrEnum):
    gradcam = "gradcam"
    """Grad-CAM heat map over the face crop."""
    frame = "frame"
    """The whole frame with the face's box drawn."""
    report = "report"
    """The JSON report of the analysis."""


class OperatingPoint(BaseModel):
    """The calibrated rule that turns a score into one of three outcomes, with how often it erred.

    Fitted per signal, media kind and aggregation on real and manipulated media, and checked on
    sources that were not used to fit it: a verdict is only as honest as these figures.
    """

    model_config = ConfigDict(frozen=True)

    signal: Signal = Signal.face_manipulation
    media_kind: MediaKind
    aggregation: Aggregation
    threshold: float = Field(description="Scores at or above it: signs of manipulation. Above 1 where the "
                             "signal can only make a file inconclusive (the synthetic-face signal on video).")
    inconclusive_threshold: float = Field(
        description="Scores at or above it and below `threshold`: inconclusive. Equal to `threshold` when "
        "there is no inconclusive band."
    )
    target_false_alarm_rate: float | None = Field(
        default=None, description="The largest share of real media the threshold was allowed to flag when fitted."
    )
    false_alarm_rate: float | None = Field(
        default=None, description="Share of real media flagged at `threshold` on sources not used to fit it."
    )
    catch_rate: float | None = Field(
        default=None, description="Share of manipulated media flagged at `threshold` on sources not used to fit it."
    )
    calibration_set: str = Field(description="Where the thresholds were fitted and checked.")


class SampledFrame(BaseModel):
    index: int = Field(description="Position among the sampled frames, 0-based.")
    timestamp_seconds: float
    face_count: int = 0


Box = Annotated[
    tuple[float, float, float, float],
    # An array of four numbers rather than JSON Schema's tuple form (prefixItems): the generated
    # TypeScript client turns a tuple into number[] on responses, which no longer fits its own type.
    WithJsonSchema({"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}),
]


class Face(BaseModel):
    frame_index: int
    timestamp_seconds: float
    box: Box = Field(description="x1, y1, x2, y2 in original frame pixels.")
    detector_probability: float
    track_id: int
    p_fake: float = Field(description="Calibrated probability that this face is manipulated.")
    p_synthetic: float | None = Field(
        default=None, description="Calibrated probability that this face is generated whole; None without that head."
    )


class Track(BaseModel):
    """One person followed across frames; `score` is the aggregated probability of manipulation."""

    track_id: int
    face_count: int
    score: float
    max_p_fake: float
    synthetic_score: float | None = None
    first_seconds: float
    last_seconds: float


class SignalResult(BaseModel):
    """One signal's file-level outcome under its operating point."""

    signal: Signal
    score: float | None
    label: Label
    operating_point: OperatingPoint


class ModelInfo(BaseModel):
    model_id: str
    version: str
    sha256: str
    architecture: str
    input_size: int


class Artifact(BaseModel):
    name: str = Field(description="File name under the job's artifact folder, e.g. 'gradcam_0.png'.")
    kind: ArtifactKind
    face_rank: int | None = Field(default=None, description="1 = most suspicious face.")
    track_id: int | None = None
    timestamp_seconds: float | None = None
    p_fake: float | None = None


class ClassifierBatch(BaseModel):
    """One classifier forward as it ran: face crops in it and its measured wall time (preprocessing
    included), what the worker's batch-latency histogram records."""

    size: int
    seconds: float


class AnalysisResult(BaseModel):
    """What one analysis found. Stored by the API as JSON and served verbatim."""

    schema_version: str = RESULT_SCHEMA_VERSION
    media: MediaInfo
    frames: list[SampledFrame]
    faces: list[Face]
    tracks: list[Track]
    score: float | None = Field(description="Aggregated probability that a face in the media is manipulated.")
    label: Label = Field(description="The outcome over every signal: the most severe one, or inconclusive.")
    predicted_manipulation: bool | None = Field(description="None when the outcome is inconclusive.")
    low_confidence: bool
    low_confidence_reasons: list[LowConfidenceReason] = Field(default_factory=list)
    decision: OperatingPoint = Field(description="The face-manipulation operating point that produced `label`.")
    signals: list[SignalResult] = Field(default_factory=list, description="Each signal's own outcome.")
    aggregation: Aggregation
    model: ModelInfo
    device: str
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    classifier_batches: list[ClassifierBatch] = Field(
        default_factory=list, description="Every classifier batch of this analysis, in order, with its wall time."
    )
    artifacts: list[Artifact] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


ProgressCallback = Callable[[Stage, float], None]
"""Called with the current stage and overall percent (0-100); must be cheap and must not raise."""
