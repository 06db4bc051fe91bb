"""Factories for test media and job rows. Media is generated, never committed."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from core.db import utcnow
from core.jobs.models import Job, JobState, new_job_id
from ml.contracts import (
    Aggregation,
    AnalysisResult,
    Label,
    MediaInfo,
    MediaKind,
    ModelInfo,
    OperatingPoint,
    SampledFrame,
)


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, int, int] = (120, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and a valid IHDR claiming `width`x`height`, with almost no pixel data:
    what a decompression bomb looks like before anything is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def mp4_bytes(*, seconds: float = 1.0, fps: int = 10, width: int = 64, height: int = 48) -> bytes:
    """A small H.264 MP4 of moving grey frames."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast"}
        for i in range(max(1, round(seconds * fps))):
            image = np.full((height, width, 3), (i * 7) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_job(**overrides: Any) -> Job:
    """A job row with plausible defaults; override any column."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_job_id(),
        "state": JobState.queued,
        "kind": "image",
        "media_format": "png",
        "original_filename": "photo.png",
        "size_bytes": 1234,
        "sha256": "0" * 64,
        "model_sha256": "1" * 64,
        "force": False,
        "attempts": 0,
        "progress": 0.0,
        "created_at": now,
        "updated_at": now,
        "enqueued_at": now,
    }
    values.update(overrides)
    return Job(**values)


def make_result(*, low_confidence_reasons: list[str] | None = None, score: float | None = 0.8) -> AnalysisResult:
    """A structurally complete AnalysisResult, as the pipeline would return it."""
    reasons = low_confidence_reasons or []
    return AnalysisResult(
        media=MediaInfo(kind=MediaKind.image, format="png", width=64, height=48),
        frames=[SampledFrame(index=0, timestamp_seconds=0.0, face_count=0 if reasons else 1)],
        faces=[],
        tracks=[],
        score=None if reasons else score,
        label=Label.inconclusive if reasons else (Label.manipulated if (score or 0) >= 0.5 else Label.no_signs),
        predicted_manipulation=None if reasons else (score or 0) >= 0.5,
        low_confidence=bool(reasons),
        low_confidence_reasons=reasons,
        decision=OperatingPoint(media_kind=MediaKind.image, aggregation=Aggregation.confident, threshold=0.5,
                                inconclusive_threshold=0.5, calibration_set="test"),
        aggregation=Aggregation.confident,
        model=ModelInfo(model_id="test", version="test", sha256="2" * 64, architecture="efficientnet_lite0",
                        input_size=224),
        device="cpu",
    )
