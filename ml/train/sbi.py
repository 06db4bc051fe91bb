"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): pseudo-fakes made from one real face.

A real crop is blended with a slightly altered copy of itself (colour, contrast, frequency, a few
pixels of scale/shift) inside a soft face mask. The result has no generator fingerprint, only the
traces every face swap leaves: a blending boundary and a colour/frequency mismatch between the
inner face and its surroundings. Learning those is what carries to generators not in our data.

As in the paper (and its reference code), the mask is the convex hull of the 68 facial landmarks
(`ml.train.landmarks`, computed once at cache time), in one of several hull types, warped by an
elastic deformation, then eroded and blurred at a random scale (`blend_mask`), and scaled by a
blend ratio from {0.25, 0.5, 0.75, 1, 1, 1}. Images without landmarks (none found) fall back to
an ellipse in the face box (`ellipse_mask`), the stand-in the 1.1.0 model was trained with.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

import cv2
import numpy as np

from ml.train.landmarks import BROWS, INNER, NOSE_TIP, POINTS

FaceBox = tuple[float, float, float, float]
"""Face box as fractions of the image side: (x1, y1, x2, y2)."""

DFDC_FACE_BOX: FaceBox = (0.08, 0.0, 0.92, 1.0)
"""Where the face lies in a DFDC crop: these crops are ~0.68x an MTCNN box, eyes at ~0.25/0.74
of the width, mouth at ~0.74 of the height (measured on 300 crops, see docs/training.md)."""

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
"""The paper's choice: full blends are most common, partial ones teach subtle boundaries."""

ELASTIC_ALPHA = 50.0
ELASTIC_SIGMA = 7.0
"""The paper's elastic deformation of the mask (albumentations' ElasticTransform(alpha=50,
sigma=7) on 380 px crops), scaled to our image size by `REFERENCE_PX`."""
REFERENCE_PX = 380
MASK_RESIZE = (192, 257)
"""The paper's blend mask is eroded and blurred at a random 192-256 px scale, then resized back."""
BLUR_KERNELS = tuple(range(5, 26, 2))


class BlendMask(StrEnum):
    """Where a self-blend's mask comes from (`--blend-mask`; the ablation of docs/training.md)."""

    landmarks = "landmarks"
    """The paper's convex hull of the 68 landmarks, elastically deformed (the ellipse where none)."""
    ellipse = "ellipse"
    """The 1.x stand-in: a jittered ellipse in the detector box, landmarks ignored."""


class Hull(IntEnum):
    """Which landmarks span the mask (after the paper's `random_get_hull`)."""

    FACE = 0
    """All 68 points: jaw line, brows, the whole face."""
    EXTENDED = 1
    """All 68 with the brows raised by a third of their distance to the nose tip: with forehead."""
    INNER = 2
    """Brows, eyes, nose and mouth without the jaw: a swap that keeps the face outline."""


def hull_points(landmarks: np.ndarray, hull: Hull) -> np.ndarray:
    """The 2-D points whose convex hull is the mask of `hull` (landmarks: 68 x 2 pixels)."""
    if hull == Hull.INNER:
        return landmarks[list(INNER)]
    if hull == Hull.EXTENDED:
        raised = landmarks.copy()
        nose_tip = landmarks[NOSE_TIP]
        brows = list(BROWS)
        raised[brows] = landmarks[brows] + (landmarks[brows] - nose_tip) / 3.0
        return raised
    return landmarks


def hull_mask(height: int, width: int, points: np.ndarray) -> np.ndarray:
    """uint8 mask (0/255) of the convex hull of `points`."""
    mask: np.ndarray = np.zeros((height, width), np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    return mask


def elastic_field(height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A smooth random displacement field (dx, dy) in pixels and its bound (max |d| <= bound).

    Uniform noise in [-1, 1] smoothed by a normalised Gaussian stays in [-1, 1]; times alpha it
    is bounded by alpha, and in practice a few pixels (the smoothing averages the noise out).
    """
    scale = max(height, width) / REFERENCE_PX
    alpha, sigma = ELASTIC_ALPHA * scale, ELASTIC_SIGMA * scale
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (height, width)).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (height, width)).astype(np.float32), (0, 0), sigma) * alpha
    return dx, dy, alpha


def elastic_deform(mask: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """`mask` resampled at (x + dx, y + dy)."""
    height, width = mask.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def blend_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's `get_blend_mask`: at a random 192-256 px scale, blur, keep only the inside
    (an erosion), blur again with a random kernel and sigma, normalise, resize back. float32 in [0, 1]."""
    height, width = mask.shape
    small_h, small_w = (int(rng.integers(*MASK_RESIZE)) for _ in range(2))
    small = cv2.resize(mask.astype(np.float32) / 255.0, (small_w, small_h), interpolation=cv2.INTER_LINEAR)
    k1, k2 = (int(rng.choice(BLUR_KERNELS)) for _ in range(2))
    blurred = cv2.GaussianBlur(small, (k1, k1), 0)
    peak = float(blurred.max())
    if peak <= 0:
        return np.zeros((height, width), np.float32)
    blurred = blurred / peak
    blurred[blurred < 1] = 0
    blurred = cv2.GaussianBlur(blurred, (k2, k2), float(rng.integers(5, 46)))
    peak = float(blurred.max())
    if peak <= 0:  # the erosion removed a tiny hull: keep it unblurred
        blurred = small
        peak = max(float(blurred.max()), 1e-6)
    out = cv2.resize(blurred / peak, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def mask_spread_px(height: int, width: int) -> float:
    """How far past the (deformed) hull the soft mask can reach: the largest second blur's
    radius at the smallest working scale, plus a pixel of each resize's interpolation."""
    scale = max(height, width) / MASK_RESIZE[0]
    return (max(BLUR_KERNELS) // 2 + 2) * scale


def landmark_mask(height: int, width: int, landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Soft float32 mask in [0, 1]: hull of a random type, elastic, eroded, blurred, blend ratio."""
    hull = Hull(int(rng.integers(len(Hull))))
    hard = hull_mask(height, width, hull_points(landmarks, hull))
    dx, dy, _ = elastic_field(height, width, rng)
    return blend_mask(elastic_deform(hard, dx, dy), rng) * float(rng.choice(BLEND_RATIOS))


def ellipse_mask(height: int, width: int, box: FaceBox, rng: np.random.Generator) -> np.ndarray:
    """Fallback without landmarks: a jittered ellipse in `box`, eroded or dilated, blurred."""
    x1, y1, x2, y2 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    cx = (x1 + x2) / 2 + rng.uniform(-0.03, 0.03) * width
    cy = (y1 + y2) / 2 + rng.uniform(-0.03, 0.03) * height
    ax = (x2 - x1) / 2 * rng.uniform(0.75, 1.0)
    ay = (y2 - y1) / 2 * rng.uniform(0.75, 1.0)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radius = 1.0 + rng.uniform(-0.08, 0.08, size=angles.shape)
    radius = (radius + np.roll(radius, 1) + np.roll(radius, -1)) / 3  # smooth, no spikes
    points = np.stack([cx + ax * radius * np.cos(angles), cy + ay * radius * np.sin(angles)], axis=1)
    mask: np.ndarray = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 255)
    side = max(3, int(min(height, width) * 0.06))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    blur = int(min(height, width) * rng.uniform(0.03, 0.12)) | 1
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (blur, blur), 0)
    return np.clip(soft, 0.0, 1.0) * float(rng.choice(BLEND_RATIOS))


face_mask = ellipse_mask
"""The 1.1.0 name of the ellipse mask."""


def _colour_transform(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's source colour change: RGB shift (p 0.3), hue/saturation/value, brightness/contrast."""
    out: np.ndarray = image.astype(np.float32)
    if rng.random() < 0.3:
        out += rng.uniform(-20, 20, size=3).astype(np.float32)
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[:, :, 0] = (hsv[:, :, 0] + rng.uniform(-5, 5)) % 180
    hsv[:, :, 1:] *= rng.uniform(0.9, 1.1, size=2).astype(np.float32)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    out = (out - 127.5) * rng.uniform(0.9, 1.1) + 127.5 + rng.uniform(-0.1, 0.1) * 255
    return np.clip(out, 0, 255).astype(np.uint8)


def _frequency_transform(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's OneOf(downscale x2-x4 and back, sharpen alpha 0.2-0.5)."""
    height, width = image.shape[:2]
    if rng.random() < 0.5:
        ratio = rng.uniform(2, 4)
        small = cv2.resize(image, (max(1, int(width / ratio)), max(1, int(height / ratio))),
                           interpolation=cv2.INTER_LINEAR)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    alpha = rng.uniform(0.2, 0.5)
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    sharp = cv2.addWeighted(image, 1.0 + alpha, blurred, -alpha, 0)
    return np.asarray(sharp, dtype=np.uint8)


def _affine(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's source affine: translate +-3 % x, +-1.5 % y, scale 0.95-1/0.95."""
    height, width = image.shape[:2]
    matrix: np.ndarray = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, rng.uniform(0.95, 1 / 0.95))
    matrix[:, 2] += (rng.uniform(-0.03, 0.03) * width, rng.uniform(-0.015, 0.015) * height)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def self_blend(
    image: np.ndarray, box: FaceBox, rng: np.random.Generator, landmarks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A pseudo-fake of the RGB uint8 `image` and the mask used; the shape and dtype are kept.

    With `landmarks` (68 x 2 pixels, no NaN) the mask is the paper's landmark hull; otherwise the
    ellipse in `box`. As in the paper, the colour/frequency change goes to the inner face (the
    source) or to the surroundings (the target) with equal chance, and the source is shifted.
    """
    height, width = image.shape[:2]
    altered = _frequency_transform(_colour_transform(image, rng), rng)
    if rng.random() < 0.5:
        source, target = altered, image
    else:
        source, target = image.copy(), altered
    source = _affine(source, rng)
    usable = landmarks is not None and landmarks.shape == (POINTS, 2) and bool(np.isfinite(landmarks).all())
    if usable:
        assert landmarks is not None
        mask = landmark_mask(height, width, landmarks, rng)
    else:
        mask = ellipse_mask(height, width, box, rng)
    soft = mask[:, :, None]
    blended = source.astype(np.float32) * soft + target.astype(np.float32) * (1.0 - soft)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out, mask
