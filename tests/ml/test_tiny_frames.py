"""Frames too small (or too thin) for any face the detector keeps: no detections, never a crash.
An empty MTCNN image pyramid raised `torch.cat(): expected a non-empty list`, and the job ended as
`internal` (issue 13: 32 px images, 1-2 px videos, and thin 4000x60 banners)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.config import PipelineConfig
from ml.faces import FaceDetector
from ml.pipeline import Pipeline
from tests.backend.factories import mp4_bytes, png_bytes

TINY_FRAMES = [(1, 1), (2, 2), (32, 32), (39, 200), (60, 4000), (100, 8000)]
"""(height, width): below the 40 px smallest face, or thin enough to be below it once downscaled."""


@pytest.mark.parametrize(("height", "width"), TINY_FRAMES)
def test_the_detector_finds_nothing_in_a_frame_no_face_fits(height: int, width: int) -> None:
    frame = np.full((height, width, 3), 128, dtype=np.uint8)
    assert FaceDetector("cpu").detect([frame]) == [[]]


@pytest.mark.parametrize("name", ["banner.png", "thin.mp4"])
def test_the_pipeline_reports_no_face_for_thin_media(name: str, tmp_path: Path, model_checkpoint: Path) -> None:
    path = tmp_path / name
    path.write_bytes(png_bytes(4000, 60) if name.endswith(".png") else mp4_bytes(seconds=0.3, width=3840, height=48))
    result = Pipeline(PipelineConfig(frames=2), device="cpu", checkpoint=model_checkpoint).run(path)
    assert result.faces == []
