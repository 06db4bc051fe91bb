"""Augmentations for real-world uploads, and the JPEG round trip every training image takes.

The JPEG round trip is not optional: in `lfw-faceswap` the file size alone separates real from
fake (ROC AUC 0.92), so every training image, real or fake, is decoded from the cache and
re-encoded at a random quality before the model sees it; compression then carries no label.
"""

from __future__ import annotations

import cv2
import numpy as np

JPEG_QUALITY = (40, 95)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode RGB uint8 `image` as JPEG at `quality` and decode it again."""
    ok, encoded = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV fails only on invalid input
        raise ValueError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None:  # pragma: no cover - a buffer OpenCV just encoded always decodes
        raise ValueError("JPEG decoding failed")
    return np.ascontiguousarray(decoded[:, :, ::-1])


def square_crop_resize(
    image: np.ndarray, center: tuple[float, float], side: float, size: int
) -> np.ndarray:
    """The square of `side` px around `center` (shifted inside the image), resized to `size`."""
    height, width = image.shape[:2]
    side = min(side, float(width), float(height))
    left = int(round(min(max(center[0] - side / 2, 0.0), width - side)))
    top = int(round(min(max(center[1] - side / 2, 0.0), height - side)))
    extent = max(1, int(round(side)))
    crop = image[top : top + extent, left : left + extent]
    interpolation = cv2.INTER_AREA if extent > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def frame(image: np.ndarray, fraction: float, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """Cut the production framing (a centred square of `fraction` of the side) at `size` px.

    With `rng`, jitter its scale (+-15 %, never beyond the image) and position (+-4 % of the side),
    so the model tolerates detector jitter and the DFDC/production framing difference.
    """
    height, width = image.shape[:2]
    side = fraction * min(height, width)
    center = (width / 2, height / 2)
    if rng is not None:
        side *= rng.uniform(0.85, 1.15)
        center = (center[0] + rng.uniform(-0.04, 0.04) * side, center[1] + rng.uniform(-0.04, 0.04) * side)
    return square_crop_resize(image, center, side, size)


def upload_augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What happens to photos and video frames on the way to us: flip, colour, blur, rescale, JPEG."""
    out = image
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.3:
        hsv = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[:, :, 0] = (hsv[:, :, 0] + rng.uniform(-5, 5)) % 180
        hsv[:, :, 1] *= rng.uniform(0.8, 1.2)
        hsv[:, :, 2] = hsv[:, :, 2] * rng.uniform(0.8, 1.2) + rng.uniform(-10, 10)
        out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.3:
        size = out.shape[0]
        small = max(16, int(size * rng.uniform(0.4, 0.9)))
        out = cv2.resize(np.ascontiguousarray(out), (small, small), interpolation=cv2.INTER_AREA)
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_LINEAR)
    return jpeg_roundtrip(np.ascontiguousarray(out), int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
