"""Grad-CAM evidence for the most suspicious faces, drawn as PNG artifacts.

Uses the pytorch-grad-cam library. Its target layer is the classifier's last conv stage, and
the model it differentiates is only the head (global pool + linear) applied to activations kept
from the scoring forward: Grad-CAM needs the activations of that stage and the gradient of the
'fake' logit with respect to them, and for these two nothing before the stage matters. That
makes an explanation cost milliseconds instead of a full backward through the network.

For each explained face two artifacts are written: the heat map over the real, un-normalised
crop the model judged (`gradcam_<rank>.png`), and the frame with the face's box
(`frame_<rank>.png`) so a reviewer sees where and when the face is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from ml.contracts import Artifact, ArtifactKind
from ml.crop import Box

logger = logging.getLogger(__name__)

MIN_OVERLAY_PX = 224
"""Small crops are enlarged to this side so the overlay is readable."""
MAX_FRAME_WIDTH = 960
"""Frame artifacts are downscaled to this width: enough to see the box, far smaller files."""
PNG_COMPRESS_LEVEL = 1
"""zlib level 1: a 960x540 frame encodes ~3x faster than at Pillow's default 6, files ~20% larger."""
BOX_COLOUR = (255, 48, 48)


@dataclass(frozen=True)
class FaceToExplain:
    rank: int
    """1 = most suspicious."""
    crop: np.ndarray
    frame: np.ndarray
    box: Box
    track_id: int
    timestamp_seconds: float
    p_fake: float


class _Head(torch.nn.Module):
    """The classifier from its last conv stage on; `stage` is the Grad-CAM target layer."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier
        self.stage = torch.nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        head: Callable[[torch.Tensor], torch.Tensor] = self.classifier.forward_head  # type: ignore[assignment]
        return head(self.stage(features))


def load_gradcam() -> None:
    """Import pytorch-grad-cam now (it is imported lazily for start-up time), so that the import,
    slow on a busy machine, is not charged to the explanation budget of the first analysis."""
    import pytorch_grad_cam  # noqa: F401
    import pytorch_grad_cam.utils.image  # noqa: F401


def gradcam_heatmaps(classifier: torch.nn.Module, features: torch.Tensor) -> np.ndarray:
    """Grad-CAM maps (N, h, w) in [0, 1] for the 'fake' logit, at the feature map's resolution.

    `features` are the classifier's `forward_features` output for N crops. pytorch-grad-cam is
    imported here: it costs ~1.8 s of start-up (scikit-learn through `svd_on_activations`), and
    most runs of the CLI draw no explanations.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    head = _Head(classifier)
    was_training = classifier.training
    inputs = features.detach().float().contiguous().requires_grad_(True)
    try:
        with GradCAM(model=head, target_layers=[head.stage]) as cam:
            maps = cam(input_tensor=inputs, targets=[BinaryClassifierOutputTarget(1)] * len(inputs))
    finally:
        classifier.train(was_training)
        classifier.zero_grad(set_to_none=True)
    return np.asarray(maps, dtype=np.float32)


def overlay(crop: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The heat map resized onto the RGB uint8 crop (enlarged to `MIN_OVERLAY_PX` if smaller)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    side = max(crop.shape[0], MIN_OVERLAY_PX)
    if crop.shape[0] != side:
        crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)
    mask = cv2.resize(heatmap, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
    return show_cam_on_image(crop.astype(np.float32) / 255.0, np.clip(mask, 0.0, 1.0), use_rgb=True,
                             image_weight=0.55)


def frame_with_box(frame: np.ndarray, box: Box) -> np.ndarray:
    """A copy of the frame with the face box drawn, at most `MAX_FRAME_WIDTH` wide."""
    scale = min(1.0, MAX_FRAME_WIDTH / frame.shape[1])
    image = frame if scale == 1.0 else cv2.resize(
        frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    image = np.ascontiguousarray(image).copy()
    x1, y1, x2, y2 = (round(v * scale) for v in box)
    thickness = max(2, round(image.shape[1] / 320))
    cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, thickness)
    return image


def write_explanations(
    classifier: torch.nn.Module,
    faces: Sequence[FaceToExplain],
    features: torch.Tensor,
    out_dir: Path,
    *,
    budget_seconds: float,
    started: float | None = None,
) -> tuple[list[Artifact], list[str]]:
    """Write Grad-CAM and frame PNGs for `faces` (with their `features`, same order).

    Stops, with a note saying so, once `budget_seconds` have passed since `started`
    (default: now); what was written by then is kept.
    """
    started = time.perf_counter() if started is None else started
    notes: list[str] = []
    artifacts: list[Artifact] = []
    if not faces:
        return artifacts, notes
    if time.perf_counter() - started > budget_seconds:
        return artifacts, [f"Explanations skipped: the {budget_seconds:g} s budget was spent before they started."]
    heatmaps = gradcam_heatmaps(classifier, features)
    out_dir.mkdir(parents=True, exist_ok=True)
    for face, heatmap in zip(faces, heatmaps, strict=True):
        if time.perf_counter() - started > budget_seconds:
            notes.append(f"Explanations stopped after {len(artifacts) // 2} of {len(faces)} faces: "
                         f"the {budget_seconds:g} s budget ran out.")
            break
        common: dict[str, Any] = {"face_rank": face.rank, "track_id": face.track_id,
                  "timestamp_seconds": face.timestamp_seconds, "p_fake": face.p_fake}
        gradcam_name, frame_name = f"gradcam_{face.rank}.png", f"frame_{face.rank}.png"
        _save_png(overlay(face.crop, heatmap), out_dir / gradcam_name)
        _save_png(frame_with_box(face.frame, face.box), out_dir / frame_name)
        artifacts.append(Artifact(name=gradcam_name, kind=ArtifactKind.gradcam, **common))
        artifacts.append(Artifact(name=frame_name, kind=ArtifactKind.frame, **common))
    return artifacts, notes


def _save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
