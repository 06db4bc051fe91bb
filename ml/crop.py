"""Square face crops with a margin: the one crop used by inference, training and evaluation."""

from __future__ import annotations

import numpy as np

Box = tuple[float, float, float, float]


def square_box(box: Box, margin: float, frame_width: int, frame_height: int) -> tuple[int, int, int, int]:
    """The square around a detector box, grown by `margin` of its longer side on each side.

    Clipped to the frame; near an edge the square is shifted inward rather than shrunk where
    the frame allows, so the face keeps its context on the other side.
    """
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    side = min(side, float(frame_width), float(frame_height))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left = min(max(cx - side / 2.0, 0.0), frame_width - side)
    top = min(max(cy - side / 2.0, 0.0), frame_height - side)
    size = max(int(round(side)), 1)
    left_i, top_i = int(round(left)), int(round(top))
    return left_i, top_i, min(left_i + size, frame_width), min(top_i + size, frame_height)


def crop_face(frame: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """The square RGB crop of `frame` (HxWx3 uint8) around `box`; a copy, safe to keep."""
    height, width = frame.shape[:2]
    left, top, right, bottom = square_box(box, margin, width, height)
    return np.ascontiguousarray(frame[top:bottom, left:right])
