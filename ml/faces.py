"""Find faces in frames (facenet-pytorch's MTCNN) and link them across frames into tracks.

Detection runs on frames downscaled to `detect_width` (a 1080p frame holds faces far larger
than MTCNN needs, and its cost grows with pixels), batched over frames of equal size, and the
boxes are mapped back to original pixels. Every face above the size and confidence thresholds
is kept, not only the largest: a video with two people gets a track, and a score, per person.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

from ml.crop import Box

logger = logging.getLogger(__name__)

MTCNN_MIN_FACE_PX = 20
"""Smallest face MTCNN looks for at detection resolution (its own default). Going lower adds an
image-pyramid level above 0.6x scale, the most expensive one, for faces too small to judge."""

DETECT_CHUNK = 16
"""Frames per MTCNN call: bounds memory on long batches without losing the batching gain."""


@dataclass(frozen=True)
class Detection:
    """One face: `box` is (x1, y1, x2, y2) in original frame pixels, clipped to the frame."""

    box: Box
    probability: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


class FaceDetector:
    """MTCNN with every face kept, batched over frames, on downscaled copies of the frames.

    `min_face_px` is the smallest face side kept, in original pixels; `confidence` the smallest
    MTCNN probability kept; frames wider than `detect_width` are downscaled before detection.
    The weights ship inside the facenet-pytorch wheel: nothing is downloaded.
    """

    def __init__(
        self,
        device: torch.device | str,
        *,
        min_face_px: int = 40,
        confidence: float = 0.9,
        detect_width: int = 640,
    ) -> None:
        self.device = torch.device(device)
        self.min_face_px = min_face_px
        self.confidence = confidence
        self.detect_width = detect_width
        self._mtcnn = MTCNN(keep_all=True, select_largest=False, min_face_size=MTCNN_MIN_FACE_PX, device=self.device)
        self._mtcnn.eval()

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Faces in each RGB uint8 HxWx3 frame, most probable first, boxes in original pixels."""
        results: list[list[Detection]] = [[] for _ in frames]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, frame in enumerate(frames):
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"Frame {index} must be an RGB uint8 HxWx3 array, got {frame.shape} {frame.dtype}.")
            groups.setdefault(frame.shape[:2], []).append(index)
        for (height, width), indices in groups.items():
            size = _detect_size(width, height, self.detect_width)
            for start in range(0, len(indices), DETECT_CHUNK):
                chunk = indices[start : start + DETECT_CHUNK]
                batch = np.stack([_resize(frames[i], size) for i in chunk])
                for index, detections in zip(chunk, self._detect_batch(batch, width, height), strict=True):
                    results[index] = detections
        return results

    def _detect_batch(self, batch: np.ndarray, width: int, height: int) -> list[list[Detection]]:
        scale_x, scale_y = width / batch.shape[2], height / batch.shape[1]
        with torch.inference_mode():
            batch_boxes, batch_probs = self._mtcnn.detect(batch)
        out: list[list[Detection]] = []
        for boxes, probs in zip(batch_boxes, batch_probs, strict=True):
            found: list[Detection] = []
            if boxes is not None:
                for box, prob in zip(boxes, probs, strict=True):
                    if prob is None or prob < self.confidence:
                        continue
                    x1, x2 = max(0.0, float(box[0]) * scale_x), min(float(width), float(box[2]) * scale_x)
                    y1, y2 = max(0.0, float(box[1]) * scale_y), min(float(height), float(box[3]) * scale_y)
                    if min(x2 - x1, y2 - y1) < self.min_face_px:
                        continue
                    found.append(Detection((x1, y1, x2, y2), float(prob)))
            found.sort(key=lambda d: d.probability, reverse=True)
            out.append(found)
        return out


def _detect_size(width: int, height: int, detect_width: int) -> tuple[int, int]:
    """(width, height) to detect at: `detect_width` wide, never upscaled."""
    if width <= detect_width:
        return width, height
    return detect_width, max(1, round(height * detect_width / width))


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def link_tracks(per_frame: Sequence[Sequence[Detection]], *, min_iou: float = 0.2, max_gap: int = 4) -> list[list[int]]:
    """A track id for every detection (same nesting as `per_frame`), one track per person.

    Frames are walked in order; each face joins the live track whose last box overlaps it most
    (IoU >= `min_iou`), pairs taken greedily from the best overlap down, so two people never share
    a track in one frame. A track survives `max_gap` frames without a face (a turned head, a
    missed detection) before a face in its place starts a new one. Ids count from 0 in order of
    first appearance.
    """
    ids: list[list[int]] = []
    last_box: list[Box] = []
    last_frame: list[int] = []
    for frame_index, detections in enumerate(per_frame):
        live = [t for t in range(len(last_box)) if frame_index - last_frame[t] <= max_gap + 1]
        pairs = sorted(
            ((box_iou(d.box, last_box[t]), di, t) for di, d in enumerate(detections) for t in live),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        taken: set[int] = set()
        for iou, di, track in pairs:
            if iou < min_iou:
                break
            if di in assigned or track in taken:
                continue
            assigned[di] = track
            taken.add(track)
        frame_ids: list[int] = []
        for di, detection in enumerate(detections):
            track = assigned.get(di)
            if track is None:
                track = len(last_box)
                last_box.append(detection.box)
                last_frame.append(frame_index)
            else:
                last_box[track] = detection.box
                last_frame[track] = frame_index
            frame_ids.append(track)
        ids.append(frame_ids)
    return ids
