"""The pipeline's knobs, in one frozen object passed in by the caller (worker, CLI, evaluation).

The pipeline never reads environment variables: the worker builds this from its settings, the
CLI from its flags. Defaults are the ones `docs/performance.md` measured on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ml.contracts import Aggregation, MediaLimits

DEFAULT_AGGREGATION = Aggregation.trimmed_top
"""The strategy `python -m ml.train.calibrate` found best for 2.1.x on held-out video sources (UADFV,
TIMIT, leave-one-source-out): `trimmed_top` is the only one within 5 % false alarms (4.9 %; confident
7.1 %, mean 10.6 %), catching 64.4 % (docs/model-card.md). For 2.0.0 it was `confident`."""
Backend = Literal["auto", "torch", "onnx"]


class PipelineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    frames: int = Field(default=32, ge=1, le=512, description="Frames sampled from a video up to a minute long "
                        "(evenly spread); longer videos get more, see `frames_per_minute`.")
    frames_per_minute: float = Field(
        default=16.0, ge=0.0, description="Beyond a minute the frame budget grows by this many per minute of "
        "video, up to `max_frames`."
    )
    max_frames: int = Field(default=128, ge=1, le=1024, description="Most frames sampled from any video.")
    burst_length: int = Field(
        default=4, ge=1, description="When samples would be over 2 s apart, they come in bursts of this many "
        "frames a few frames apart, so detection and tracking compare faces a fraction of a second apart."
    )
    skip_b_frames: bool = Field(
        default=True,
        description="Decode only I/P frames when sampled frames are at least 3 frames apart: 3-4x less "
        "decoding, timestamps stay exact (each sampled frame is the decoded frame nearest its target).",
    )
    decode_threads: int = Field(default=0, ge=0, description="FFmpeg decoder threads; 0 lets FFmpeg choose.")

    face_crops: bool = Field(
        default=False,
        description="Inputs are already face crops (e.g. the DFDC crop set): skip detection and use the "
        "whole image as the face box.",
    )
    detect_every: int = Field(
        default=4, ge=1, description="In videos, search every Nth sampled frame whole and only around known "
        "faces between (1: every frame whole).",
    )
    detect_width: int = Field(default=640, ge=64, description="Frames wider than this are downscaled for detection.")
    min_face_px: int = Field(default=40, ge=1, description="Smallest face side kept, in original pixels.")
    face_confidence: float = Field(default=0.9, ge=0.0, le=1.0, description="Smallest MTCNN probability kept.")
    max_faces_per_frame: int = Field(default=8, ge=1, description="Most probable faces kept per frame.")
    track_max_gap_seconds: float = Field(
        default=2.0, ge=0.0, description="Seconds a track may go without a face and still take the next one "
        "in its place; longer gaps are bridged only by re-linking fragments (ml.tracking)."
    )
    track_cut_similarity: float = Field(
        default=0.9, ge=0.0, le=1.0, description="Appearance similarity (cosine of the classifier's pooled "
        "features) that links two fragments across a cut, wherever the face moved."
    )

    batch_size: int = Field(default=16, ge=1, description="Face crops per classifier call.")
    backend: Backend = Field(
        default="auto", description="'auto': ONNX Runtime on CPU, torch elsewhere. Grad-CAM always uses torch."
    )
    onnx_path: Path | None = Field(
        default=None, description="The ONNX export to score with; None: beside the checkpoint, <name>.onnx "
        "(built ahead of time by `python -m ml.onnx_export`)."
    )

    aggregation: Aggregation = DEFAULT_AGGREGATION
    min_track_faces: int = Field(
        default=3,
        ge=1,
        description="Faces a track needs to count towards the file score (capped at the frames sampled).",
    )
    disagreement_std: float = Field(
        default=0.3, gt=0.0, description="Standard deviation of the deciding track's face scores above which "
        "the result is flagged low-confidence ('scores_disagree')."
    )

    explain_top_k: int = Field(default=3, ge=0, description="Grad-CAM overlays for the K most suspicious faces.")
    explain_budget_seconds: float = Field(default=10.0, ge=0.0, description="Explanations stop when this is spent.")

    decode_ahead: int = Field(
        default=4, ge=1, description="Frames decoded ahead of detection in a second thread (bounds memory)."
    )

    limits: MediaLimits = Field(default_factory=MediaLimits)
