"""What to evaluate on: any `real/` + `fake/` folder, and the named sets of the data protocol.

An entry of a set is a file (image or video) or a folder of frames; a folder is ONE sequence
and goes through `Pipeline.run_frames`, the same detect → crop → classify → tracks → decide as
a video. Named sets read the fetched mirrors under `raw_dir` (default `/work/datasets/raw`, see
`../shared/data/SOURCES.md`) and the shared data; nothing is copied or downloaded.

Group keys (the split unit of `ml.train.data.split_of`) are `"<source>:<key>"`, as for DFDC and
LFW: `utkface:<sha256>`, `nuaa:<subject 00NN>`, `ffhq_sg2:<sha256>`, `uadfv:<NNNN>` (a fake and
the real it was made from share it), `timit:<speaker>`, `ffpp:<sha256>`. Video sources (uadfv,
timit, clips) are never trained on, so their named sets hold every split; so do the FaceForensics++
sets (`ffpp-<method>`: its YouTube reals against one manipulation), never trained or chosen on.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ml.contracts import MediaKind
from ml.train.sources import FFPP_METHODS

if TYPE_CHECKING:
    from ml.train.data import Item

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})
DEFAULT_RAW_DIR = Path("/work/datasets/raw")
LABELS = {"real": 0, "fake": 1}

UTKFACE = "bagashvilit+facial_recognition_bias/data"
UADFV = "guotianli+SLR-deepfake/UADFV/datasets/UADFV"
TIMIT = "LamQam+Deepfake_Detection/deepfake_dataset/LQ"
NUAA = "imironica+liveness/db/ClientRaw"
FFHQ_SG2 = "bhunakit+HeadshotClassification"


@dataclass(frozen=True)
class EvalItem:
    """One labelled entry: a file, or a folder of frames forming one sequence."""

    path: Path
    label: int  # 1 = fake
    source: str
    group: str
    face_crops: bool = False
    """The entry is already a tight face crop (DFDC): the pipeline uses it whole, as training does."""

    @property
    def is_sequence(self) -> bool:
        return self.path.is_dir()

    @property
    def kind(self) -> MediaKind:
        return MediaKind.video if self.is_sequence or self.path.suffix.lower() in VIDEO_SUFFIXES else MediaKind.image

    @property
    def split(self) -> str:
        from ml.train.data import split_of

        return split_of(self.group)


def frame_files(folder: Path) -> list[Path]:
    """The frames of a sequence folder in order (numeric names by number: 9 before 10)."""
    files = [p for p in folder.iterdir() if p.is_file() and _is_image_file(p)]
    return sorted(files, key=lambda p: (int(m.group()) if (m := re.search(r"\d+", p.stem)) else -1, p.name))


def _is_image_file(path: Path) -> bool:
    # TIMIT's real frames have no suffix at all ("028"); they are JPEGs.
    return path.suffix.lower() in IMAGE_SUFFIXES or (not path.suffix and path.stem.isdigit())


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, or of a sequence folder (its frames' names and digests, in order)."""
    from ml.model import file_sha256

    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for frame in frame_files(path):
        digest.update(f"{frame.name}:{file_sha256(frame)}\n".encode())
    return digest.hexdigest()


def folder_items(root: Path, source: str | None = None) -> list[EvalItem]:
    """Every image, video and frames sub-folder under `root/real` and `root/fake`."""
    source = source or root.name
    missing = [name for name in LABELS if not (root / name).is_dir()]
    if missing:
        raise FileNotFoundError(f"{root} needs real/ and fake/ sub-folders (missing: {', '.join(missing)}).")
    items = []
    for name, label in LABELS.items():
        for entry in sorted((root / name).iterdir()):
            if entry.is_dir():
                if not frame_files(entry):
                    continue
            elif entry.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                continue
            items.append(EvalItem(entry, label, source, f"{source}:{name}/{entry.name}"))
    return items


# --- the protocol's named sets -------------------------------------------------------------------


def _dedupe(paths: Iterable[Path], source: str, label: int) -> list[EvalItem]:
    """One item per distinct file content (the mirrors hold copies), grouped by SHA-256."""
    seen: dict[str, Path] = {}
    for path in sorted(paths):
        seen.setdefault(sha256_of(path), path)
    return [EvalItem(path, label, source, f"{source}:{sha}") for sha, path in sorted(seen.items(), key=lambda x: x[1])]


def utkface_items(raw_dir: Path) -> list[EvalItem]:
    root = raw_dir / UTKFACE
    paths = [*(root / "images").glob("*.jpg"), *(root / "random_200").rglob("*.jpg")]
    return _dedupe(paths, "utkface", 0)


def nuaa_items(raw_dir: Path) -> list[EvalItem]:
    root = raw_dir / NUAA
    return [EvalItem(path, 0, "nuaa", f"nuaa:{path.parent.name}") for path in sorted(root.glob("*/*.jpg"))]


def ffhq_sg2_items(raw_dir: Path) -> list[EvalItem]:
    root = raw_dir / FFHQ_SG2
    return [item for name, label in LABELS.items()
            for item in _dedupe([p for folder in ("data", "data_crossval") for p in (root / folder / name).iterdir()
                                 if p.is_file()], "ffhq_sg2", label)]


def uadfv_items(raw_dir: Path) -> list[EvalItem]:
    root = raw_dir / UADFV
    return [EvalItem(folder, label, "uadfv", f"uadfv:{folder.name.removesuffix('_fake')}")
            for name, label in LABELS.items() for folder in sorted((root / name / "frames").iterdir())
            if folder.is_dir()]


def timit_items(raw_dir: Path) -> list[EvalItem]:
    root = raw_dir / TIMIT
    return [EvalItem(sentence, label, "timit", f"timit:{sentence.parent.name}")
            for split in ("train", "val", "test") for name, label in LABELS.items()
            for sentence in sorted((root / split / name).glob("*/*")) if sentence.is_dir()]


def dfdc_items(data_dir: Path) -> list[EvalItem]:
    from ml.train.data import dfdc_items as items

    return [EvalItem(i.path, i.label, "dfdc", i.group, face_crops=True) for i in items(data_dir)]


def lfw_items(data_dir: Path) -> list[EvalItem]:
    from ml.train.data import lfw_items as items

    return [EvalItem(i.path, i.label, "lfw", i.group) for i in items(data_dir)]


def ffpp_items(raw_dir: Path, method: str) -> list[EvalItem]:
    """FaceForensics++ YouTube originals and one manipulation's fakes, as the source registry lists
    them (deduplicated); tight face crops, used whole like DFDC's. Every item: it is never trained on."""
    return [EvalItem(i.path, i.label, "ffpp", i.group, face_crops=True) for i in _ffpp_listed(raw_dir)
            if i.label == 0 or i.path.parent.name == method]


@functools.cache
def _ffpp_listed(raw_dir: Path) -> tuple[Item, ...]:
    """The registry's listing, hashed once per process for the four sets that share its reals."""
    from ml.train.sources import SOURCES, list_items

    return tuple(list_items(SOURCES["ffpp"], raw_dir, raw_dir).items)


def clip_items(data_dir: Path) -> list[EvalItem]:
    return folder_items(data_dir / "videos", "clips")


def _test(items: list[EvalItem]) -> list[EvalItem]:
    return [item for item in items if item.split == "test"]


NAMED_SETS: dict[str, Callable[[Path, Path], list[EvalItem]]] = {
    "uadfv": lambda raw, data: uadfv_items(raw),
    "timit": lambda raw, data: timit_items(raw),
    "clips": lambda raw, data: clip_items(data),
    "utkface-test": lambda raw, data: _test(utkface_items(raw)),
    "nuaa-test": lambda raw, data: _test(nuaa_items(raw)),
    "ffhq-sg2-test": lambda raw, data: _test(ffhq_sg2_items(raw)),
    "dfdc-test": lambda raw, data: _test(dfdc_items(data)),
    "lfw-test": lambda raw, data: _test(lfw_items(data)),
    **{f"ffpp-{method.lower()}": (lambda raw, data, method=method: ffpp_items(raw, method))
       for method in FFPP_METHODS},
}
"""Built-in sets, (raw mirrors folder, shared data folder) -> items. Video sets first."""

VIDEO_SETS = ("uadfv", "timit", "clips")
PHOTO_SETS = ("utkface-test", "nuaa-test", "ffhq-sg2-test", "dfdc-test", "lfw-test")
FFPP_SETS = tuple(f"ffpp-{method.lower()}" for method in FFPP_METHODS)
"""FaceForensics++ reals against each method: never trained or chosen on; photo points are fitted on them."""


def named_set(name: str, raw_dir: Path, data_dir: Path) -> list[EvalItem]:
    if name not in NAMED_SETS:
        raise KeyError(f"Unknown set {name!r}; built-in sets: {', '.join(NAMED_SETS)}.")
    return NAMED_SETS[name](raw_dir, data_dir)

