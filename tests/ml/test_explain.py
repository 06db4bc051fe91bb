from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ml.explain import FaceToExplain, frame_with_box, gradcam_heatmaps, overlay, write_explanations


class RednessModel(torch.nn.Module):
    """Evidence is known: 'fake' is how red a region is. Features on an 8x8 grid of a 64 px crop."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, kernel_size=8, stride=8, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0 / 64  # red
            self.conv.weight[0, 1:] = -0.5 / 64  # minus green and blue
            self.conv.weight[1] = 1.0 / 192  # brightness, no evidence
        self.fc = torch.nn.Linear(2, 1)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[4.0, 0.0]]))
            self.fc.bias.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _crop_with_red_patch(top: int, left: int) -> np.ndarray:
    crop = np.full((64, 64, 3), 120, dtype=np.uint8)
    crop[top : top + 16, left : left + 16] = (230, 30, 30)
    return crop


def test_gradcam_peaks_where_the_evidence_is() -> None:
    model = RednessModel().eval()
    patches = [(40, 32), (0, 16)]  # (top, left) of a 16 px red square, on the 8 px feature grid
    crops = [_crop_with_red_patch(top, left) for top, left in patches]
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    features = model.forward_features(batch)
    heatmaps = gradcam_heatmaps(model, features)
    assert heatmaps.shape == (2, 8, 8)
    for heatmap, (top, left) in zip(heatmaps, patches, strict=True):
        peak_y, peak_x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        assert top // 8 <= peak_y < (top + 16) // 8
        assert left // 8 <= peak_x < (left + 16) // 8
        assert heatmap[top // 8 : (top + 16) // 8, left // 8 : (left + 16) // 8].min() > 0.9
        assert heatmap.mean() < 0.2


def test_overlay_is_drawn_on_the_real_crop() -> None:
    crop = _crop_with_red_patch(40, 44)
    heatmap = np.zeros((8, 8), dtype=np.float32)
    image = overlay(crop, heatmap)
    assert image.shape == (224, 224, 3)  # enlarged for readability
    assert image.dtype == np.uint8
    # with no heat the overlay is the crop tinted by the colormap's coldest colour, patch still red-most
    patch = image[150:200, 160:210].astype(int)
    assert patch[..., 0].mean() > image[:100, :100, 0].astype(int).mean()


def test_frame_artifact_has_the_box() -> None:
    frame = np.zeros((100, 200, 3), dtype=np.uint8)
    image = frame_with_box(frame, (50, 20, 90, 70))
    assert tuple(image[20, 70]) == (255, 48, 48)
    assert tuple(image[45, 70]) == (0, 0, 0)  # inside the box, untouched
    assert frame.max() == 0  # the input frame is not drawn on


def _faces(count: int) -> list[FaceToExplain]:
    frame = np.full((120, 160, 3), 90, dtype=np.uint8)
    return [FaceToExplain(rank=i + 1, crop=_crop_with_red_patch(4, 4), frame=frame, box=(10, 10, 74, 74),
                          track_id=0, timestamp_seconds=0.5 * i, p_fake=0.9 - 0.1 * i) for i in range(count)]


def test_writes_pngs_named_in_artifacts(tmp_path: Path) -> None:
    model = RednessModel().eval()
    faces = _faces(2)
    batch = torch.from_numpy(np.stack([f.crop for f in faces])).permute(0, 3, 1, 2).float() / 255.0
    artifacts, notes = write_explanations(model, faces, model.forward_features(batch), tmp_path, budget_seconds=30)
    assert notes == []
    assert [(a.name, a.kind, a.face_rank) for a in artifacts] == [
        ("gradcam_1.png", "gradcam", 1), ("frame_1.png", "frame", 1),
        ("gradcam_2.png", "gradcam", 2), ("frame_2.png", "frame", 2)]
    for artifact in artifacts:
        with Image.open(tmp_path / artifact.name) as image:
            assert image.format == "PNG"


def test_spent_budget_skips_with_a_note(tmp_path: Path) -> None:
    model = RednessModel().eval()
    faces = _faces(3)
    batch = torch.from_numpy(np.stack([f.crop for f in faces])).permute(0, 3, 1, 2).float() / 255.0
    artifacts, notes = write_explanations(model, faces, model.forward_features(batch), tmp_path, budget_seconds=1.0,
                                          started=time.perf_counter() - 5.0)
    assert artifacts == []
    assert "budget" in notes[0]
    assert not list(tmp_path.glob("*.png"))
