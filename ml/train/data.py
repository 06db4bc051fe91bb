"""Training data: face crops decoded, detected and cropped ONCE, cached as uint8 arrays.

Two sources (see `../shared/data/README.md`):

- `dfdc-faces`: tight 224 px face crops. They are used as the crop itself (the production
  pipeline's `face_crops=True` path does the same). Split by `source_video`: a fake and the real
  video it was made from always land on the same side, so no identity leaks across the split.
- `lfw-faceswap`: 250 px photos with background. Faces are found with the production
  `FaceDetector` and cropped with `ml.crop.crop_face`, i.e. the production crop. We cache a wider
  *context* crop (`CONTEXT_MARGIN`) so that training can jitter scale/position and self-blend
  inside a face mask, then cut the production framing out of it. The LFW file names (`real_N`,
  `fake_N`) carry no identity and `real_N` is unrelated to `fake_N`, so LFW is split by file name
  (a stable hash), which cannot rule out the same person appearing on both sides.

The split of every item is a pure function of its group key (SHA-1 bucket), independent of
seeds, machine and file order.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ml.crop import crop_face
from ml.model import resize_crop

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_PERCENT = {"train": 80, "val": 10, "test": 10}
CONTEXT_MARGIN = 0.15
"""Margin of the cached LFW context crop; must be wider than any production margin we train for."""
CACHE_VERSION = 1
DFDC_CROP_PX = 224
"""Side of the DFDC crops on disk: caching them larger would only upsample."""


def default_data_dir(repo_root: Path | None = None) -> Path:
    """`<repo>/../shared/data`, the team's read-only data folder."""
    root = repo_root or Path(__file__).resolve().parents[2]
    return (root / ".." / "shared" / "data").resolve()


def default_cache_dir(repo_root: Path | None = None) -> Path:
    """`<repo>/var/cache/deepscreen` (gitignored): caches never enter the repository."""
    root = repo_root or Path(__file__).resolve().parents[2]
    return root / "var" / "cache" / "deepscreen"


def split_of(group: str) -> str:
    """Deterministic train/val/test assignment (80/10/10) of a group key."""
    bucket = int(hashlib.sha1(group.encode()).hexdigest()[:8], 16) % 100
    if bucket < SPLIT_PERCENT["train"]:
        return "train"
    if bucket < SPLIT_PERCENT["train"] + SPLIT_PERCENT["val"]:
        return "val"
    return "test"


@dataclass(frozen=True)
class Item:
    """One labelled image on disk; `group` decides its split (source video, or file for LFW)."""

    path: Path
    label: int  # 1 = fake
    group: str
    source: str  # "dfdc" | "lfw"

    @property
    def split(self) -> str:
        return split_of(self.group)


def dfdc_items(data_dir: Path) -> list[Item]:
    """DFDC crops grouped by `source_video` (a real crop's source is its own video)."""
    root = data_dir / "dfdc-faces"
    with (root / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Item(root / row["file"], int(row["label"] == "fake"), "dfdc:" + row["source_video"], "dfdc") for row in rows
    ]


def lfw_items(data_dir: Path) -> list[Item]:
    """LFW real and face-swap photos, grouped by file (no identity is recoverable)."""
    root = data_dir / "lfw-faceswap"
    items = []
    for label_name, label in (("real", 0), ("fake", 1)):
        for path in sorted((root / label_name).glob("*.jpg")):
            items.append(Item(path, label, f"lfw:{label_name}/{path.name}", "lfw"))
    return items


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to RGB uint8 (OpenCV is BGR on disk)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"Cannot decode {path}")
    return np.ascontiguousarray(image[:, :, ::-1])


def central_face(boxes: Iterable[tuple[float, float, float, float]], width: int, height: int):
    """The detection nearest the image centre: LFW's labelled person is centred."""
    best, best_distance = None, float("inf")
    for box in boxes:
        distance = abs((box[0] + box[2]) / 2 - width / 2) + abs((box[1] + box[3]) / 2 - height / 2)
        if distance < best_distance:
            best, best_distance = box, distance
    return best


@dataclass
class CachedSet:
    """Decoded crops of one source and split, ready for training (no file or detector access)."""

    images: np.ndarray  # N x S x S x 3 uint8
    labels: np.ndarray  # N int64
    files: list[str]
    source: str
    context: bool
    """True when images are LFW context crops (production framing is a centred sub-square)."""


def _cache_path(cache_dir: Path, source: str, split: str, size: int) -> Path:
    return cache_dir / f"v{CACHE_VERSION}-{source}-{split}-{size}.npz"


def build_dfdc_cache(data_dir: Path, cache_dir: Path, size: int) -> dict[str, CachedSet]:
    """Decode every DFDC crop once at `size` px; split by source video."""
    out: dict[str, CachedSet] = {}
    items = dfdc_items(data_dir)
    for split in SPLITS:
        path = _cache_path(cache_dir, "dfdc", split, size)
        chosen = [item for item in items if item.split == split]
        if not path.exists():
            images = np.stack([resize_crop(read_rgb(i.path), size) for i in tqdm(chosen, desc=f"dfdc {split}")])
            _save(path, images, np.array([i.label for i in chosen]), [str(i.path) for i in chosen])
        out[split] = _load(path, "dfdc", context=False)
    return out


def build_lfw_cache(data_dir: Path, cache_dir: Path, size: int, make_detector) -> dict[str, CachedSet]:
    """Detect the central face of every LFW photo once and cache its context crop at `size` px.

    `make_detector()` returns a `ml.faces.FaceDetector`; it is only called when a split is not
    cached yet. Photos where it finds no face are dropped (logged).
    """
    out: dict[str, CachedSet] = {}
    items = lfw_items(data_dir)
    detector = None
    for split in SPLITS:
        path = _cache_path(cache_dir, "lfw", split, size)
        if not path.exists():
            detector = detector or make_detector()
            chosen = [item for item in items if item.split == split]
            images, labels, files, dropped = [], [], [], 0
            for start in tqdm(range(0, len(chosen), 32), desc=f"lfw {split}"):
                batch = chosen[start : start + 32]
                frames = [read_rgb(i.path) for i in batch]
                for item, frame, faces in zip(batch, frames, detector.detect(frames), strict=True):
                    box = central_face([f.box for f in faces], frame.shape[1], frame.shape[0])
                    if box is None:
                        dropped += 1
                        continue
                    images.append(resize_crop(crop_face(frame, box, CONTEXT_MARGIN), size))
                    labels.append(item.label)
                    files.append(str(item.path))
            logger.info("LFW %s: %d faces cached, %d photos without a face dropped", split, len(images), dropped)
            _save(path, np.stack(images), np.array(labels), files)
        out[split] = _load(path, "lfw", context=True)
    return out


def _save(path: Path, images: np.ndarray, labels: np.ndarray, files: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=images, labels=labels.astype(np.int64), files=np.array(files))
    tmp.replace(path)


def _load(path: Path, source: str, *, context: bool) -> CachedSet:
    with np.load(path) as data:
        return CachedSet(data["images"], data["labels"], [str(f) for f in data["files"]], source, context)


def production_fraction(crop_margin: float) -> float:
    """Side of the production crop as a fraction of the cached LFW context crop."""
    return (1.0 + 2.0 * crop_margin) / (1.0 + 2.0 * CONTEXT_MARGIN)
