"""Self-blended pseudo-fakes change a real face only inside the face mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.train.augment import jpeg_roundtrip, upload_augment
from ml.train.sbi import DFDC_FACE_BOX, face_mask, self_blend


@pytest.fixture(scope="module")
def real_crop(shared_data: Path) -> np.ndarray:
    import csv

    from ml.train.data import read_rgb

    root = shared_data / "dfdc-faces"
    with (root / "labels.csv").open() as handle:
        first_real = next(row for row in csv.DictReader(handle) if row["label"] == "real")
    return read_rgb(root / first_real["file"])


@pytest.mark.parametrize("seed", range(5))
def test_self_blend_changes_only_the_masked_face(real_crop: np.ndarray, seed: int) -> None:
    blended, mask = self_blend(real_crop, DFDC_FACE_BOX, np.random.default_rng(seed))
    assert blended.shape == real_crop.shape
    assert blended.dtype == np.uint8
    assert mask.shape == real_crop.shape[:2]
    changed = np.any(blended != real_crop, axis=2)
    assert changed.any(), "a self-blend must change the face"
    assert not changed[mask == 0].any(), "pixels outside the mask must be untouched"
    assert changed[mask > 0.5].mean() > 0.5


def test_mask_is_soft_and_inside_the_box() -> None:
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
