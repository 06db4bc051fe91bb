"""Build small test media with PyAV: videos whose frames say which frame they are."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

LEVEL_STEP = 24
LEVEL_BASE = 16


def index_pattern(i: int, height: int = 64, width: int = 96) -> np.ndarray:
    """A frame whose left half encodes i // 10 and right half i % 10 in grey levels 24 apart.

    Flat halves survive H.264 compression, so the decoded frame still says its index.
    """
    if not 0 <= i < 100:
        raise ValueError("index_pattern encodes 0..99")
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:, : width // 2] = LEVEL_BASE + LEVEL_STEP * (i // 10)
    frame[:, width // 2 :] = LEVEL_BASE + LEVEL_STEP * (i % 10)
    return frame


def read_index(frame: np.ndarray) -> int:
    width = frame.shape[1]
    tens = round((float(frame[8:-8, 4 : width // 2 - 4].mean()) - LEVEL_BASE) / LEVEL_STEP)
    ones = round((float(frame[8:-8, width // 2 + 4 : -4].mean()) - LEVEL_BASE) / LEVEL_STEP)
    return tens * 10 + ones


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int = 10,
    times_ms: Sequence[int] | None = None,
    b_frames: bool = False,
    gop: int | None = None,
    display_matrix: Sequence[int] | None = None,
) -> Path:
    """An H.264 MP4 of RGB `frames`; `times_ms` gives explicit (variable-rate) presentation times."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        options = {"bf": "3" if b_frames else "0", "preset": "ultrafast" if not b_frames else "veryfast"}
        if gop is not None:
            options["g"] = str(gop)
        stream.codec_context.options = options
        if times_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if display_matrix is not None:
            stream.set_display_matrix(list(display_matrix))
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_long_clip(path: Path, seconds: float, faces: Sequence[np.ndarray], *, face_from: float,
                    size: tuple[int, int] = (480, 270), fps: int = 5, face_px: int = 128) -> Path:
    """A long, cheap-to-encode clip: a plain stage, and from `face_from` seconds on the `faces`
    side by side (each `face_px` square, a little apart), standing still.

    Few distinct frames and x264's ultrafast preset keep 10 minutes to a few seconds of encoding.
    """
    import cv2

    width, height = size
    empty = np.full((height, width, 3), 96, dtype=np.uint8)
    with_faces = empty.copy()
    gap = (width - len(faces) * face_px) // (len(faces) + 1)
    for i, face in enumerate(faces):
        left = gap + i * (face_px + gap)
        top = (height - face_px) // 2
        with_faces[top : top + face_px, left : left + face_px] = cv2.resize(face, (face_px, face_px),
                                                                            interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "bf": "0", "g": str(fps * 10)}
        cached: dict[bool, av.VideoFrame] = {}
        for i in range(round(seconds * fps)):
            shown = i / fps >= face_from
            if shown not in cached:
                cached[shown] = av.VideoFrame.from_ndarray(with_faces if shown else empty, format="rgb24")
            frame = cached[shown]
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
