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
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ml.crop import square_box
from ml.model import resize_crop

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_PERCENT = {"train": 80, "val": 10, "test": 10}
CONTEXT_MARGIN = 0.15
"""Margin of the cached LFW context crop; must be wider than any production margin we train for."""
CACHE_VERSION = 2
"""2: one folder per set (memory-mapped images.npy + meta.npz with 68-point landmarks)."""
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
    """One labelled image on disk; `group` decides its split (source video, identity or file)."""

    path: Path
    label: int  # 1 = fake
    group: str
    source: str  # a key of ml.train.sources.SOURCES
    sequence: str = ""
    """The frame sequence (video) the image belongs to, for video-level evaluation; "" for photos."""
    sha256: str = ""

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

    images: np.ndarray  # N x S x S x 3 uint8 (memory-mapped when loaded from the cache)
    labels: np.ndarray  # N int64
    files: list[str]
    source: str
    context: bool
    """True when images are context crops (production framing is a centred sub-square)."""
    landmarks: np.ndarray | None = None
    """N x 68 x 2 float32 pixel coordinates in `images` (NaN where none), for the self-blends."""
    sequences: list[str] | None = None
    """Frame sequence of each image ("" for photos), for video-level evaluation."""
    boxes: np.ndarray | None = None
    """N x 4 float32 detector boxes (x1, y1, x2, y2) in `images` pixels, for context crops: the
    production crop is `ml.crop.square_box` of this box inside the cached image."""

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class BuildReport:
    """What building one source's cache found, per split and label: goes into the manifest."""

    files: dict[str, dict[int, int]] = field(default_factory=dict)
    no_face: dict[str, dict[int, int]] = field(default_factory=dict)
    seconds: float = 0.0


def cache_dir_of(cache_dir: Path, source: str, split: str, size: int) -> Path:
    return cache_dir / f"v{CACHE_VERSION}" / f"{source}-{split}-{size}"


def cached(cache_dir: Path, source: str, split: str, size: int) -> bool:
    return (cache_dir_of(cache_dir, source, split, size) / "meta.npz").exists()


def load_set(cache_dir: Path, source: str, split: str, size: int, *, context: bool) -> CachedSet:
    """A cached set; images are memory-mapped, so a large cache costs page cache, not RAM."""
    folder = cache_dir_of(cache_dir, source, split, size)
    images = np.load(folder / "images.npy", mmap_mode="r")
    with np.load(folder / "meta.npz") as meta:
        landmarks = meta["landmarks"] if "landmarks" in meta else None
        boxes = meta["boxes"] if "boxes" in meta else None
        return CachedSet(images, meta["labels"], [str(f) for f in meta["files"]], source, context,
                         landmarks, [str(s) for s in meta["sequences"]], boxes)


def save_set(cache_dir: Path, source: str, split: str, size: int, data: CachedSet) -> None:
    """Write atomically: a half-built folder never passes for a cache."""
    folder = cache_dir_of(cache_dir, source, split, size)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", data.images)
    extra = {} if data.landmarks is None else {"landmarks": data.landmarks.astype(np.float32)}
    if data.boxes is not None:
        extra["boxes"] = data.boxes.astype(np.float32)
    tmp = folder / "meta.tmp.npz"
    np.savez(tmp, labels=data.labels.astype(np.int64), files=np.array(data.files),
             sequences=np.array(data.sequences or [""] * len(data.labels)), **extra)
    tmp.replace(folder / "meta.npz")


def build_split(
    items: list[Item],
    *,
    source: str,
    framing_detect: bool,
    size: int,
    detector=None,
    landmarker=None,
    on_no_face=None,
) -> CachedSet:
    """Decode, find the face, crop, resize and (optionally) landmark every item of one split.

    `framing_detect`: run the production detector on the whole image and cache the context crop
    (`CONTEXT_MARGIN`) around the central face, the production crop being its centred
    `production_fraction`; else the file is a tight face crop used whole (DFDC). Items where the
    detector finds no face are passed to `on_no_face` and left out.
    """
    from ml.train.sbi import DFDC_FACE_BOX

    images, labels, files, sequences, points, boxes = [], [], [], [], [], []
    for start in tqdm(range(0, len(items), 32), desc=f"{source}", mininterval=10.0):
        batch = items[start : start + 32]
        frames = [read_rgb(i.path) for i in batch]
        found = detector.detect(frames) if framing_detect else [None] * len(frames)
        for item, image, faces in zip(batch, frames, found, strict=True):
            if framing_detect:
                box = central_face([f.box for f in faces], image.shape[1], image.shape[0])
                if box is None:
                    if on_no_face:
                        on_no_face(item)
                    continue
                left, top, right, bottom = square_box(box, CONTEXT_MARGIN, image.shape[1], image.shape[0])
                crop = np.ascontiguousarray(image[top:bottom, left:right])
                scale = size / crop.shape[1]
                face_box = ((box[0] - left) * scale, (box[1] - top) * scale,
                            (box[2] - left) * scale, (box[3] - top) * scale)
            else:
                crop = image
                face_box = tuple(v * size for v in DFDC_FACE_BOX)
            resized = resize_crop(crop, size)
            images.append(resized)
            labels.append(item.label)
            files.append(str(item.path))
            sequences.append(item.sequence)
            boxes.append(face_box)
            if landmarker is not None:
                points.append(landmarker(resized, face_box))
    landmarks = np.stack(points) if landmarker is not None and points else None
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    box_array = np.array(boxes, np.float32).reshape(-1, 4) if framing_detect else None
    return CachedSet(stacked, np.array(labels, np.int64), files, source, framing_detect, landmarks, sequences,
                     box_array)


def cache_size(source_framing_detect: bool, input_size: int) -> int:
    """Cached side: context crops at 1.4x the input size; DFDC crops at 1.2x, never above 224 px."""
    if source_framing_detect:
        return int(round(input_size * 1.4))
    return max(input_size, min(int(round(input_size * 1.2)), DFDC_CROP_PX))


def production_fraction(crop_margin: float) -> float:
    """Side of the production crop as a fraction of the cached context crop."""
    return (1.0 + 2.0 * crop_margin) / (1.0 + 2.0 * CONTEXT_MARGIN)


if __name__ == "__main__":
    from ml.train.sources import main

    raise SystemExit(main())
