"""Self-blended pseudo-fakes: the landmark-hull mask (inside the hull, bounded elastic warp,
deterministic by seed) and the ellipse fallback, on synthetic inputs and one real crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.train.augment import jpeg_roundtrip, upload_augment
from ml.train.sbi import (
    DFDC_FACE_BOX,
    Hull,
    elastic_deform,
    elastic_field,
    face_mask,
    hull_mask,
    hull_points,
    landmark_mask,
    mask_spread_px,
    self_blend,
)


def synthetic_landmarks(size: int = 256) -> np.ndarray:
    """68 points in the iBUG layout on a face centred in a `size` image (jaw, brows, nose, eyes, mouth)."""
    c, r = size / 2, size * 0.3
    jaw = [(c + r * np.cos(a), c + r * 0.2 + r * np.sin(a)) for a in np.linspace(np.pi * 1.05, -0.05 * np.pi, 17)]
    jaw = [(x, 2 * c + r * 0.2 - y + c * 0.0) for x, y in jaw]  # the jaw hangs below the eyes
    brows = [(c - r * 0.8 + i * r * 0.18, c - r * 0.45) for i in range(5)]
    brows += [(c + r * 0.08 + i * r * 0.18, c - r * 0.45) for i in range(5)]
    nose = [(c, c - r * 0.3 + i * r * 0.12) for i in range(4)] + [(c - r * 0.2 + i * r * 0.1, c + r * 0.2)
                                                                  for i in range(5)]
    eyes = [(c - r * 0.6 + i * r * 0.08, c - r * 0.25) for i in range(6)]
    eyes += [(c + r * 0.2 + i * r * 0.08, c - r * 0.25) for i in range(6)]
    mouth = [(c - r * 0.4 + i * r * (0.8 / 19), c + r * 0.5 + (i % 3) * 2) for i in range(20)]
    points = np.array(jaw + brows + nose + eyes + mouth, np.float32)
    assert points.shape == (68, 2)
    return points


@pytest.fixture(scope="module")
def real_crop(shared_data: Path) -> np.ndarray:
    import csv

    from ml.train.data import read_rgb

    root = shared_data / "dfdc-faces"
    with (root / "labels.csv").open() as handle:
        first_real = next(row for row in csv.DictReader(handle) if row["label"] == "real")
    return read_rgb(root / first_real["file"])


@pytest.mark.parametrize("seed", range(8))
def test_landmark_mask_stays_within_the_hull_plus_its_blur(seed: int) -> None:
    landmarks = synthetic_landmarks()
    mask = landmark_mask(256, 256, landmarks, np.random.default_rng(seed))
    assert mask.dtype == np.float32
    assert 0.0 <= mask.min()
    assert mask.max() <= 1.0
    assert mask.max() >= 0.25 - 1e-6, "some face is blended (the smallest blend ratio is 0.25)"
    # Every hull type lies inside the extended hull; the warp moves it by at most alpha, the
    # blurs spread it by at most `mask_spread_px`.
    outer = hull_mask(256, 256, hull_points(landmarks, Hull.EXTENDED))
    _, _, alpha = elastic_field(256, 256, np.random.default_rng(0))
    reach = int(np.ceil(alpha + mask_spread_px(256, 256)))
    allowed = cv2.dilate(outer, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    assert not (mask[allowed == 0] > 0).any()
    # and its core is the face: the centre of the inner face is fully weighted.
    centre = landmarks[list(range(17, 68))].mean(axis=0).round().astype(int)
    assert mask[centre[1], centre[0]] == pytest.approx(mask.max(), abs=1e-3)


def test_landmark_hull_types_differ() -> None:
    landmarks = synthetic_landmarks()
    areas = {hull: int((hull_mask(256, 256, hull_points(landmarks, hull)) > 0).sum()) for hull in Hull}
    assert areas[Hull.INNER] < areas[Hull.FACE] < areas[Hull.EXTENDED]


@pytest.mark.parametrize("size", [128, 224, 380])
def test_elastic_deformation_is_bounded_and_smooth(size: int) -> None:
    dx, dy, alpha = elastic_field(size, size, np.random.default_rng(1))
    displacement = np.hypot(dx, dy)
    assert displacement.max() <= alpha * np.sqrt(2)
    assert displacement.max() < 0.05 * size, "a few pixels, not a scramble"
    assert displacement.max() > 0.1, "it does deform"
    square = np.zeros((size, size), np.uint8)
    square[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    warped = elastic_deform(square, dx, dy)
    assert abs(int((warped > 127).sum()) - int((square > 0).sum())) < 0.1 * (square > 0).sum()


def test_landmark_mask_is_deterministic_by_seed() -> None:
    landmarks = synthetic_landmarks()
    a = landmark_mask(256, 256, landmarks, np.random.default_rng(5))
    b = landmark_mask(256, 256, landmarks, np.random.default_rng(5))
    c = landmark_mask(256, 256, landmarks, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("seed", range(6))
def test_self_blend_with_landmarks_changes_the_face_not_the_far_background(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), (0, 0), 3)
    landmarks = synthetic_landmarks()
    blended, mask = self_blend(image, DFDC_FACE_BOX, np.random.default_rng(seed), landmarks)
    assert blended.shape == image.shape
    assert blended.dtype == np.uint8
    difference = np.abs(blended.astype(int) - image.astype(int)).max(axis=2)
    inside = mask > 0.9 * mask.max()
    assert difference[inside].mean() > 0, "the face changes"
    # Outside the mask the image is either untouched (the inner face was altered) or altered
    # everywhere the same way (the surroundings were): either way the mask is where they meet.
    outside = mask == 0
    assert outside.any()
    assert self_blend(image, DFDC_FACE_BOX, np.random.default_rng(seed), landmarks)[0].tobytes() == blended.tobytes()


def test_missing_landmarks_fall_back_to_the_ellipse(real_crop: np.ndarray) -> None:
    nan = np.full((68, 2), np.nan, np.float32)
    a, mask_a = self_blend(real_crop, DFDC_FACE_BOX, np.random.default_rng(3), nan)
    b, mask_b = self_blend(real_crop, DFDC_FACE_BOX, np.random.default_rng(3), None)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert mask_a.max() > 0


def test_ellipse_mask_is_soft_and_inside_the_box() -> None:
    mask = face_mask(200, 200, (0.25, 0.25, 0.75, 0.75), np.random.default_rng(0))
    assert 0.0 <= mask.min()
    assert mask.max() <= 1.0
    assert mask[100, 100] > 0
    assert mask[:20].max() == 0
    assert mask[:, :20].max() == 0
    assert ((mask > 0) & (mask < mask.max())).any(), "the border is blurred, not a hard edge"


def test_self_blend_is_reproducible(real_crop: np.ndarray) -> None:
    a, _ = self_blend(real_crop, DFDC_FACE_BOX, np.random.default_rng(3))
    b, _ = self_blend(real_crop, DFDC_FACE_BOX, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_every_upload_augment_ends_in_a_jpeg_roundtrip(real_crop: np.ndarray) -> None:
    out = upload_augment(real_crop, np.random.default_rng(0))
    assert out.shape == real_crop.shape
    assert out.dtype == np.uint8
    # A JPEG-decoded image is (nearly) a fixed point of re-encoding at high quality.
    assert np.abs(jpeg_roundtrip(out, 95).astype(int) - out).mean() < np.abs(
        jpeg_roundtrip(real_crop, 40).astype(int) - real_crop
    ).mean()
