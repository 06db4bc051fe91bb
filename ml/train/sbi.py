"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): pseudo-fakes made from one real face.

A real crop is blended with a slightly altered copy of itself (colour, contrast, sharpness,
a few pixels of scale/shift) inside a soft face mask. The result has no generator fingerprint,
only the traces every face swap leaves: a blending boundary and a colour/frequency mismatch
between the inner face and its surroundings. Learning those is what carries to generators that
are not in our data.

We have no dense landmarks, so the mask is an ellipse inscribed in the face box with a randomly
perturbed outline (a stand-in for the paper's landmark hull + elastic deformation), randomly
eroded/dilated, blurred, and scaled by a random blend ratio.
"""

from __future__ import annotations

import cv2
import numpy as np

FaceBox = tuple[float, float, float, float]
"""Face box as fractions of the image side: (x1, y1, x2, y2)."""

DFDC_FACE_BOX: FaceBox = (0.08, 0.0, 0.92, 1.0)
"""Where the face lies in a DFDC crop: these crops are ~0.68x an MTCNN box, eyes at ~0.25/0.74
of the width, mouth at ~0.74 of the height (measured on 300 crops, see docs/training.md)."""

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
"""The paper's choice: full blends are most common, partial ones teach subtle boundaries."""


def face_mask(height: int, width: int, box: FaceBox, rng: np.random.Generator) -> np.ndarray:
    """A soft float32 mask in [0, 1]: a jittered ellipse in `box`, blurred at its border."""
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
    if rng.random() < 0.5:
        mask = cv2.erode(mask, kernel)
    else:
        mask = cv2.dilate(mask, kernel)
    blur = int(min(height, width) * rng.uniform(0.03, 0.12)) | 1
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (blur, blur), 0)
    return np.clip(soft, 0.0, 1.0) * float(rng.choice(BLEND_RATIOS))


def _source_transform(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The altered copy: colour/contrast/sharpness change and a small scale/shift."""
    out: np.ndarray = image.astype(np.float32)
    out = out * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15)  # contrast, brightness
    out += rng.uniform(-12, 12, size=3).astype(np.float32)  # colour shift per channel
    out = np.clip(out, 0, 255).astype(np.uint8)
    kind = rng.integers(3)
    if kind == 0:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    elif kind == 1:
        blurred = cv2.GaussianBlur(out, (0, 0), 1.0)
        out = cv2.addWeighted(out, 1.5, blurred, -0.5, 0)
    height, width = image.shape[:2]
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.03, 0.03, size=2) * (width, height)
    matrix: np.ndarray = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(out, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def self_blend(image: np.ndarray, box: FaceBox, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A pseudo-fake of the RGB uint8 `image` and the mask used; the shape and dtype are kept."""
    height, width = image.shape[:2]
    source = _source_transform(image, rng)
    mask = face_mask(height, width, box, rng)[:, :, None]
    blended = source.astype(np.float32) * mask + image.astype(np.float32) * (1.0 - mask)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    out[mask[:, :, 0] == 0] = image[mask[:, :, 0] == 0]
    return out, mask[:, :, 0]
