"""Find faces in frames (facenet-pytorch's MTCNN); `ml.tracking` links them into tracks.

Detection runs on frames downscaled to `detect_width` (a 1080p frame holds faces far larger
than MTCNN needs, and its cost grows with pixels), batched over frames of equal size, and the
boxes are mapped back to original pixels. Every face above the size and confidence thresholds
is kept, not only the largest: a video with two people gets a track, and a score, per person.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import cv2
import numpy as np
import torch

from ml.crop import Box, square_box

logger = logging.getLogger(__name__)

MTCNN_MIN_FACE_PX = 20
"""Smallest face MTCNN looks for at detection resolution (its own default). Going lower adds an
image-pyramid level above 0.6x scale, the most expensive one, for faces too small to judge.
Above it, `min_face_px` (scaled to detection resolution) sets where the pyramid starts, so
small frames are not searched for faces that would be thrown away."""
STAGE_THRESHOLDS = (0.8, 0.9)
"""P-Net and R-Net thresholds (MTCNN's defaults are 0.6, 0.7). Faces kept need >= 0.9 from O-Net
anyway; the stricter early stages pass fewer candidates on, the main cost on busy frames (CPU
time -30% on the shared clips with the same faces found, docs/performance.md)."""

DETECT_CHUNK = 16
"""Frames per MTCNN call: bounds memory on long batches without losing the batching gain."""
ROI_SCALE = 2.5
"""Between key frames a face is searched for in a square this many times its size around where it was."""
ROI_PX = 128
"""Side the search squares are resized to: the face spans about 50 px, well inside MTCNN's range."""
ROI_MIN_FACE_PX = 24
"""Smallest face searched for in a square (at `ROI_PX`): a face may shrink to half between key frames."""
ROI_CHUNK = 64
ROI_MERGE_IOU = 0.3
"""Faces from the two key frames around a gap overlapping more than this share one search square."""
DUPLICATE_IOU = 0.5
"""Overlapping squares can find one face twice; boxes overlapping more than this are one face."""
REGION_MAX_STEP_SECONDS = 1.0
"""Region search only between samples at most this far apart; beyond, frames are searched whole."""
REGION_MAX_SPAN_SECONDS = 2.0
"""Key frames at most this far apart, whatever `full_every` says: a face moves little in 2 s."""


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

    The detection copy of each frame gets its 1st-99th percentile levels stretched to the full
    range: MTCNN misses faces in dark, flat footage (a dim DFDC clip: 2 of 32 frames found, 20
    after stretching) and the stretch is nearly the identity on well-exposed frames. The crops
    the classifier sees come from the untouched frame.

    On a CPU detection runs with `threads` torch threads (default 1): MTCNN makes thousands of
    tiny per-candidate resizes, which ran 4x slower with 2 threads on a 2-core machine.
    """

    def __init__(
        self,
        device: torch.device | str,
        *,
        min_face_px: int = 40,
        confidence: float = 0.9,
        detect_width: int = 640,
        threads: int | None = 1,
    ) -> None:
        self.device = torch.device(device)
        self.min_face_px = min_face_px
        self.confidence = confidence
        self.detect_width = detect_width
        self.threads = threads
        from facenet_pytorch import MTCNN  # imports torchvision (~1.7 s): only when a detector is built

        thresholds = [*STAGE_THRESHOLDS, min(STAGE_THRESHOLDS[1], confidence)]
        self._mtcnn = MTCNN(keep_all=True, select_largest=False, min_face_size=MTCNN_MIN_FACE_PX,
                            thresholds=thresholds, device=self.device)
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
            scale = width / size[0]
            min_face = max(MTCNN_MIN_FACE_PX, int(self.min_face_px / scale))
            if min(size) < min_face:  # no face this size fits: MTCNN's image pyramid would be empty (it raised)
                continue
            for start in range(0, len(indices), DETECT_CHUNK):
                chunk = indices[start : start + DETECT_CHUNK]
                batch = np.stack([_stretch_levels(_resize(frames[i], size)) for i in chunk])
                found = self._run_mtcnn(batch, min_face)
                for index, raw in zip(chunk, found, strict=True):
                    results[index] = self._keep(raw, (0.0, 0.0, width / size[0], height / size[1]), width, height)
        return results

    def detect_sequence(self, frames: Sequence[np.ndarray], *, full_every: int = 4,
                        times: Sequence[float] | None = None) -> list[list[Detection]]:
        """Faces in the sampled frames of one video, in time order (`SequenceDetector` on a list).

        `times` are the frames' timestamps in seconds; without them frames are taken as close.
        """
        stream = SequenceDetector(self, full_every=full_every)
        found: dict[int, list[Detection]] = {}
        for i, frame in enumerate(frames):
            found.update(stream.push(i, times[i] if times is not None else 0.0, frame))
        found.update(stream.finish())
        return [found[i] for i in range(len(frames))]

    def search_regions(self, frames: Sequence[np.ndarray], seeds: Sequence[Detection]) -> list[list[Detection]]:
        """Faces in `frames` looked for only in squares around `seeds` (faces of nearby key frames).

        Each square is `ROI_SCALE` times a seed, resized to `ROI_PX`; all squares of all frames
        go through MTCNN in batches.
        """
        results: list[list[Detection]] = [[] for _ in frames]
        if not frames or not seeds:
            return results
        height, width = frames[0].shape[:2]
        squares = [square_box(seed.box, (ROI_SCALE - 1) / 2, width, height) for seed in _suppress(list(seeds),
                                                                                                   ROI_MERGE_IOU)]
        regions = [(j, square) for j in range(len(frames)) for square in squares]
        for start in range(0, len(regions), ROI_CHUNK):
            chunk = regions[start : start + ROI_CHUNK]
            batch = np.stack([
                _stretch_levels(_resize(frames[j][top:bottom, left:right], (ROI_PX, ROI_PX)))
                for j, (left, top, right, bottom) in chunk
            ])
            found = self._run_mtcnn(batch, ROI_MIN_FACE_PX)
            for (j, (left, top, right, bottom)), raw in zip(chunk, found, strict=True):
                mapping = (float(left), float(top), (right - left) / ROI_PX, (bottom - top) / ROI_PX)
                results[j].extend(self._keep(raw, mapping, width, height))
        return [_suppress(r, DUPLICATE_IOU) for r in results]

    def _run_mtcnn(self, batch: np.ndarray, min_face_size: int) -> list[list[tuple[np.ndarray, float]]]:
        """Raw MTCNN boxes (detection pixels) and probabilities for a batch of equal-size images."""
        self._mtcnn.min_face_size = min_face_size
        with torch.inference_mode(), _torch_threads(self.threads if self.device.type == "cpu" else None):
            batch_boxes, batch_probs = self._mtcnn.detect(batch)
        return [
            [] if boxes is None else [(box, float(p)) for box, p in zip(boxes, probs, strict=True) if p is not None]
            for boxes, probs in zip(batch_boxes, batch_probs, strict=True)
        ]

    def _keep(self, raw: list[tuple[np.ndarray, float]], mapping: tuple[float, float, float, float],
              width: int, height: int) -> list[Detection]:
        """Detections mapped to frame pixels (offset x, y and scale x, y), clipped and filtered."""
        left, top, scale_x, scale_y = mapping
        found = []
        for box, prob in raw:
            if prob < self.confidence:
                continue
            x1 = max(0.0, left + float(box[0]) * scale_x)
            y1 = max(0.0, top + float(box[1]) * scale_y)
            x2 = min(float(width), left + float(box[2]) * scale_x)
            y2 = min(float(height), top + float(box[3]) * scale_y)
            if min(x2 - x1, y2 - y1) < self.min_face_px:
                continue
            found.append(Detection((x1, y1, x2, y2), prob))
        found.sort(key=lambda d: d.probability, reverse=True)
        return found


K = TypeVar("K")


class SequenceDetector(Generic[K]):
    """Faces in the sampled frames of one video, pushed in time order, each returned once final.

    Key frames are searched whole: the first, every `full_every`-th after it, the last, and
    any frame that would put two key frames more than `REGION_MAX_SPAN_SECONDS` apart. In the
    frames between two key frames only squares around the faces found in either key frame are
    searched (`FaceDetector.search_regions`): about a third of the cost of searching every frame
    whole. Region search assumes the face has barely moved, so it is used only where samples are
    close in time: a gap over `REGION_MAX_STEP_SECONDS` between two samples (long videos are
    sampled in bursts minutes apart) ends a run, and the next sample is a key frame again.

    Streaming is what lets detection overlap decoding (`ml.pipeline`), and it holds at most
    `full_every` frames. A face that appears and vanishes between two key frames is missed;
    `full_every=1` searches every frame whole.
    """

    def __init__(self, detector: FaceDetector, *, full_every: int = 4) -> None:
        self.detector = detector
        self.full_every = max(1, full_every)
        self._key: tuple[float, list[Detection]] | None = None
        self._between: list[tuple[K, float, np.ndarray]] = []

    def push(self, key: K, seconds: float, frame: np.ndarray) -> list[tuple[K, list[Detection]]]:
        """Faces of the frames that became final with this one (possibly none yet)."""
        if self._key is not None:
            previous = self._between[-1][1] if self._between else self._key[0]
            if seconds - previous <= REGION_MAX_STEP_SECONDS and self.full_every > 1:
                self._between.append((key, seconds, frame))
                if len(self._between) < self.full_every and seconds - self._key[0] <= REGION_MAX_SPAN_SECONDS:
                    return []
                return self._close()
            done = self.finish()
        else:
            done = []
        (found,) = self.detector.detect([frame])
        self._key = (seconds, found)
        return [*done, (key, found)]

    def finish(self) -> list[tuple[K, list[Detection]]]:
        """Faces of the frames still held (call after the last frame)."""
        return self._close() if self._between else []

    def _close(self) -> list[tuple[K, list[Detection]]]:
        """The last held frame becomes a key frame; the ones before it get a region search."""
        assert self._key is not None
        key, seconds, frame = self._between.pop()
        (found,) = self.detector.detect([frame])
        between = self._between
        regions = self.detector.search_regions([f for _, _, f in between], [*self._key[1], *found])
        self._key, self._between = (seconds, found), []
        return [*((k, r) for (k, _, _), r in zip(between, regions, strict=True)), (key, found)]


def _suppress(detections: list[Detection], max_iou: float) -> list[Detection]:
    """Most probable first, dropping any that overlaps a kept one by more than `max_iou`."""
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda d: d.probability, reverse=True):
        if all(box_iou(detection.box, k.box) <= max_iou for k in kept):
            kept.append(detection)
    return kept


def _detect_size(width: int, height: int, detect_width: int) -> tuple[int, int]:
    """(width, height) to detect at: `detect_width` wide, never upscaled."""
    if width <= detect_width:
        return width, height
    return detect_width, max(1, round(height * detect_width / width))


def _stretch_levels(image: np.ndarray) -> np.ndarray:
    """Levels stretched so the 1st-99th percentiles span 0-255 (for detection only)."""
    low, high = np.percentile(image[::4, ::4], (1, 99))
    if high - low < 8 or (low <= 2 and high >= 253):
        return image
    lut = np.clip((np.arange(256, dtype=np.float32) - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
    return lut[image]


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` intra-op threads, then restore the previous setting."""
    if threads is None or threads == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
