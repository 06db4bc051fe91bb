"""The registry of face data sources (docs/data-manifest.json) and how to list each one's files.

One place says, for every source of the data protocol (docs/training.md, "Data and splits"):
where its files come from (`repo@commit:path`), what each file's label and group key are (the
group decides the split, `ml.train.data.split_of`), its role (trained on, never trained on, or
the synthetic-face signal) and how a face is cut out of it (production detector + crop on whole
photos/frames, or the file used whole when it already is a tight face crop).

Listing reads every file once to hash it: sources that repeat files (UTKFace's `random_200/`,
FFHQ's `data_crossval/`) are deduplicated by SHA-256, and the sorted hash list is what the
manifest's digest covers.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from ml.train.data import (
    CACHE_VERSION,
    SPLITS,
    CachedSet,
    Item,
    build_split,
    cache_size,
    cached,
    load_set,
    save_set,
)

logger = logging.getLogger(__name__)


class Role(StrEnum):
    """What a source may be used for (the data protocol's roles)."""

    TRAIN = "train"
    """Train split trained on; val split for in-domain selection; test split never used for a choice."""
    UNSEEN = "unseen"
    """Never trained on, any split: model choice is judged here (leave-sources-out)."""
    SYNTHETIC = "synthetic"
    """Fully generated faces: the synthetic-face signal (fit on train, choose on val, report test)."""
    CALIBRATION = "calibration"
    """Never trained on and never used to choose a model; the operating points are fitted on it, so its
    unbiased figures are the leave-one-source-out ones (`ml.train.calibrate`)."""


class Framing(StrEnum):
    """How the face is cut out of a file."""

    DETECT = "detect"
    """A whole photo or frame: production `FaceDetector` + `ml.crop`, cached as a context crop."""
    CROP = "crop"
    """Already a tight face crop (DFDC): used whole, as `face_crops=True` does in production."""


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ""}
"""VidTIMIT's real frames have no suffix; every other file is JPEG or PNG."""


@dataclass(frozen=True)
class Source:
    """One data source of the protocol."""

    key: str
    repo: str
    commit: str
    paths: tuple[str, ...]
    what: str
    group_by: str
    framing: Framing
    roles: dict[int, Role]
    """Role per label (0 real, 1 fake): FFHQ's reals are trained on, its StyleGAN2 fakes are not."""
    lister: Callable[[Path], Iterator[tuple[Path, int, str, str]]]
    """(path, label, group, sequence) for every file under the source's root."""
    root_in: str = "raw"
    """"raw" (under --raw, the fetched mirrors) or "shared" (under --data-dir, ../shared/data)."""
    dedupe: bool = False
    """Drop files whose SHA-256 was seen before (the protocol's rule for UTKFace and FFHQ, whose
    group is the hash). Sequences keep repeated frames: dropping one would shorten a video."""

    def root(self, raw_dir: Path, data_dir: Path) -> Path:
        return (raw_dir if self.root_in == "raw" else data_dir) / self.folder

    @property
    def folder(self) -> str:
        """Folder of the mirror (`owner+name`, as fetched) or of the shared data set."""
        return self.repo.replace("/", "+") if self.root_in == "raw" else self.paths[0].split("/")[0]

    @property
    def trained(self) -> bool:
        return Role.TRAIN in self.roles.values()

    @property
    def needs_landmarks(self) -> bool:
        """Landmarks feed the self-blends, made from the real faces of trained sources only."""
        return self.roles.get(0) == Role.TRAIN


def _images(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
            yield path


def _utkface(root: Path) -> Iterator[tuple[Path, int, str, str]]:
    for sub in ("data/images", "data/random_200"):
        for path in _images(root / sub):
            yield path, 0, "", ""  # group = file SHA-256, filled in by list_items


def _nuaa(root: Path) -> Iterator[tuple[Path, int, str, str]]:
    for path in _images(root / "db" / "ClientRaw"):
        yield path, 0, "nuaa:" + path.parent.name, ""


def _ffhq(root: Path) -> Iterator[tuple[Path, int, str, str]]:
    for sub in ("data", "data_crossval"):
        for label, name in ((0, "real"), (1, "fake")):
            for path in _images(root / sub / name):
                yield path, label, "", ""


def _uadfv(root: Path) -> Iterator[tuple[Path, int, str, str]]:
    base = root / "UADFV" / "datasets" / "UADFV"
    for label, name in ((0, "real"), (1, "fake")):
        for folder in sorted(p for p in (base / name / "frames").iterdir() if p.is_dir()):
            person = folder.name.removesuffix("_fake")
            for path in _images(folder):
                yield path, label, "uadfv:" + person, f"uadfv:{name}/{folder.name}"


def _timit(root: Path) -> Iterator[tuple[Path, int, str, str]]:
    base = root / "deepfake_dataset" / "LQ"
    for split in ("train", "val", "test"):
        for label, name in ((0, "real"), (1, "fake")):
            for speaker in sorted(p for p in (base / split / name).glob("*") if p.is_dir()):
                for sentence in sorted(p for p in speaker.iterdir() if p.is_dir()):
                    for path in _images(sentence):
                        yield path, label, "timit:" + speaker.name, f"timit:{name}/{speaker.name}/{sentence.name}"


FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
"""FaceForensics++'s four manipulations: two face swaps and two reenactments (expressions only)."""


def _ffpp(root: Path) -> Iterator[tuple[Path, int, str, str]]:
    for split in ("train", "test"):  # the uploader's split; never trained on, so both
        for label, name in ((0, "youtube"), *((1, method) for method in FFPP_METHODS)):
            for path in _images(root / "image" / split / name):
                yield path, label, "", ""  # group = file SHA-256: the names carry no video id


def _dfdc(root: Path) -> Iterator[tuple[Path, int, str, str]]:
    with (root / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            yield root / row["file"], int(row["label"] == "fake"), "dfdc:" + row["source_video"], ""


def _lfw(root: Path) -> Iterator[tuple[Path, int, str, str]]:
    for label, name in ((0, "real"), (1, "fake")):
        for path in sorted((root / name).glob("*.jpg")):
            yield path, label, f"lfw:{name}/{path.name}", ""


SOURCES: dict[str, Source] = {
    s.key: s
    for s in (
        Source("dfdc", "shared", "shared", ("dfdc-faces/labels.csv",), "DFDC face crops, 224 px",
               "source_video", Framing.CROP, {0: Role.TRAIN, 1: Role.TRAIN}, _dfdc, "shared"),
        Source("lfw", "shared", "shared", ("lfw-faceswap/{real,fake}/*.jpg",), "LFW photos and face swaps, 250 px",
               "file", Framing.DETECT, {0: Role.TRAIN, 1: Role.TRAIN}, _lfw, "shared"),
        Source("utkface", "bagashvilit/facial_recognition_bias", "abe87302b1d452cbd9100773a16c127f4d2ab546",
               ("data/images", "data/random_200/**"), "UTKFace aligned crops, 200 px", "file SHA-256",
               Framing.DETECT, {0: Role.TRAIN}, _utkface, dedupe=True),
        Source("nuaa", "imironica/liveness", "415a750d380dc1ad03815d9f99287f0661715510",
               ("db/ClientRaw/00NN/*.jpg",), "NUAA real webcam frames, 640x480", "subject 00NN",
               Framing.DETECT, {0: Role.TRAIN}, _nuaa),
        Source("ffhq_sg2", "bhunakit/HeadshotClassification", "d9c8a26912a5a1f866855801ac319f365855b8ee",
               ("data/{real,fake}", "data_crossval/{real,fake}"), "FFHQ thumbnails + StyleGAN2 faces, 128 px",
               "file SHA-256", Framing.DETECT, {0: Role.TRAIN, 1: Role.SYNTHETIC}, _ffhq, dedupe=True),
        Source("uadfv", "guotianli/SLR-deepfake", "165746f60ff5c912689a527ca287ee6391bf16db",
               ("UADFV/datasets/UADFV/{real,fake}/frames/NNNN[_fake]/*.png",), "UADFV frame sequences, 256 px",
               "NNNN (a fake shares its real's group)", Framing.DETECT, {0: Role.UNSEEN, 1: Role.UNSEEN}, _uadfv),
        Source("timit", "LamQam/Deepfake_Detection", "9bb03ac6393c1d3ab89ffcab446e103ec66b1124",
               ("deepfake_dataset/LQ/{train,val,test}/{real,fake}/<speaker>/<sentence>/*",),
               "VidTIMIT (real) + DeepfakeTIMIT LQ (fake) frame sequences", "speaker", Framing.DETECT,
               {0: Role.UNSEEN, 1: Role.UNSEEN}, _timit),
        Source("ffpp", "tranthuhoai3786/FaceForensics", "9a18ba2ba50a8db50c67ec6adf908e9d4c1ff5d9",
               ("image/{train,test}/{youtube,Deepfakes,Face2Face,FaceSwap,NeuralTextures}/roi_N.jpg",),
               "FaceForensics++ face crops, 299 px (YouTube originals; Deepfakes, Face2Face, FaceSwap, "
               "NeuralTextures)", "file SHA-256 (no video id in the names)", Framing.CROP,
               {0: Role.CALIBRATION, 1: Role.CALIBRATION}, _ffpp, dedupe=True),
    )
}
"""Every source of the data protocol. `clips` (shared/data/videos) is evaluation-only and not cached."""

TRAIN_SOURCES = tuple(key for key, source in SOURCES.items() if source.trained)


def trainable_kinds() -> list[str]:
    """Sample kinds a mix may name: `<source>_real|fake` for labels whose role is TRAIN, and `sbi`."""
    kinds = [f"{key}_{'real' if label == 0 else 'fake'}" for key, source in SOURCES.items()
             for label, role in sorted(source.roles.items()) if role == Role.TRAIN]
    return [*kinds, "sbi"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Listed:
    """A source's files and how many repeated an earlier file's SHA-256 (dropped where `dedupe`)."""

    items: list[Item]
    duplicates: int


def list_items(source: Source, raw_dir: Path, data_dir: Path) -> Listed:
    """Every distinct file of `source`, hashed; the first of a set of identical files is kept.

    Sources without a natural group (UTKFace, FFHQ) are grouped by the file's SHA-256, so a file
    that appears twice lands on one side of the split with its copy dropped.
    """
    root = source.root(raw_dir, data_dir)
    if not root.exists():
        raise FileNotFoundError(f"{source.key}: {root} does not exist (fetch {source.repo} first)")
    seen: set[str] = set()
    items: list[Item] = []
    duplicates = 0
    for path, label, group, sequence in source.lister(root):
        digest = sha256_file(path)
        if digest in seen:
            duplicates += 1
            if source.dedupe:
                continue
        seen.add(digest)
        items.append(Item(path, label, group or f"{source.key}:{digest}", source.key, sequence, digest))
    return Listed(items, duplicates)


def source_sets(key: str, cache_dir: Path, input_size: int) -> dict[str, CachedSet]:
    """The cached train/val/test sets of one source (built beforehand by `build`)."""
    source = SOURCES[key]
    detect = source.framing == Framing.DETECT
    size = cache_size(detect, input_size)
    missing_sets = [split for split in SPLITS if not cached(cache_dir, key, split, size)]
    if missing_sets:
        raise FileNotFoundError(
            f"{key}: no cache for {', '.join(missing_sets)} at {size} px in {cache_dir}; build it with "
            f"`python -m ml.train.data build --sources {key} --input-size {input_size}` (docs/training.md)"
        )
    return {split: load_set(cache_dir, key, split, size, context=detect) for split in SPLITS}


def build(
    keys: list[str], *, raw_dir: Path, data_dir: Path, cache_dir: Path, input_size: int, threads: int = 1
) -> dict[str, dict]:
    """Build every missing cache of `keys` and return each source's manifest entry.

    The production `FaceDetector` (same settings as the pipeline's photos: faces >= 40 px, p >=
    0.9) finds the central face of every photo or frame, `ml.crop.square_box` cuts it; both
    labels go through exactly the same decode/crop/resize, and the JPEG round trip at training
    time re-encodes them identically.
    """
    import time

    import torch

    from ml.faces import FaceDetector
    from ml.train.landmarks import Landmarker

    torch.set_num_threads(threads)
    detector: FaceDetector | None = None
    landmarker: Landmarker | None = None
    entries: dict[str, dict] = {}
    for key in keys:
        source = SOURCES[key]
        detect = source.framing == Framing.DETECT
        size = cache_size(detect, input_size)
        started = time.perf_counter()
        listed = list_items(source, raw_dir, data_dir)
        no_face: list[Item] = []
        built = {}
        built_now = False
        for split in SPLITS:
            chosen = [item for item in listed.items if item.split == split]
            if cached(cache_dir, key, split, size):
                built[split] = load_set(cache_dir, key, split, size, context=detect)
                continue
            if detect and detector is None:
                detector = FaceDetector("cpu", min_face_px=40, confidence=0.9, threads=threads)
            if source.needs_landmarks and landmarker is None:
                landmarker = Landmarker()
            data = build_split(
                chosen, source=key, framing_detect=detect, size=size, detector=detector,
                landmarker=landmarker if source.needs_landmarks else None, on_no_face=no_face.append,
            )
            save_set(cache_dir, key, split, size, data)
            built[split] = data
            built_now = True
        seconds = time.perf_counter() - started
        entries[key] = manifest_entry(source, listed, built, seconds if built_now else None)
        _write_file_list(cache_dir, key, listed.items, built)
        logger.info("%s: %s", key, json.dumps(entries[key]["counts"]))
    return entries


def manifest_entry(source: Source, listed: Listed, built: dict[str, CachedSet], seconds: float | None) -> dict:
    """Counts per split and class (files, cached faces, files without a face) and the list digest."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for split in SPLITS:
        files = [item for item in listed.items if item.split == split]
        counts[split] = {}
        for label, name in ((0, "real"), (1, "fake")):
            total = sum(item.label == label for item in files)
            if total == 0 and label not in source.roles:
                continue
            faces = int(np.sum(built[split].labels == label)) if split in built else 0
            counts[split][name] = {"files": total, "faces": faces, "no_face": total - faces}
    digest = hashlib.sha256("\n".join(sorted(item.sha256 for item in listed.items)).encode()).hexdigest()
    return {
        "repo": source.repo, "commit": source.commit, "paths": list(source.paths), "what": source.what,
        "roles": {("real" if label == 0 else "fake"): role.value for label, role in source.roles.items()},
        "framing": source.framing.value, "group_by": source.group_by,
        "groups": len({item.group for item in listed.items}),
        "files": len(listed.items), "repeated_sha256": listed.duplicates, "repeats_dropped": source.dedupe,
        "counts": counts, "sha256_of_sorted_file_sha256s": digest,
        **({} if seconds is None else {"build_seconds": round(seconds, 1)}),
    }


def _write_file_list(cache_dir: Path, key: str, items: list[Item], built: dict[str, CachedSet]) -> None:
    """The full per-file list (sha256, split, label, cached, path) beside the cache (gitignored)."""
    kept = {f for data in built.values() for f in data.files}
    lines = ["sha256\tsplit\tlabel\tface_found\tgroup\tpath"]
    lines += [f"{i.sha256}\t{i.split}\t{i.label}\t{int(str(i.path) in kept)}\t{i.group}\t{i.path}"
              for i in sorted(items, key=lambda i: i.sha256)]
    folder = cache_dir / f"v{CACHE_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"files-{key}.tsv").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m ml.train.data build`: build the training/evaluation cache and the manifest."""
    import argparse

    from ml.train.data import default_cache_dir, default_data_dir

    parser = argparse.ArgumentParser(prog="python -m ml.train.data", description=main.__doc__)
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--raw", type=Path, default=Path("/work/datasets/raw"),
                        help="folder holding the fetched mirrors as owner+name/ (read-only)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--input-size", type=int, default=224, help="model input the cache is built for")
    parser.add_argument("--sources", default=",".join(SOURCES), help="comma-separated keys of ml.train.sources")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--manifest", type=Path, default=None,
                        help="write (merge into) this manifest JSON, e.g. docs/data-manifest.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = [k.strip() for k in args.sources.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SOURCES]
    if unknown:
        parser.error(f"unknown sources {unknown}; known: {', '.join(SOURCES)}")
    entries = build(keys, raw_dir=args.raw, data_dir=args.data_dir, cache_dir=args.cache_dir,
                    input_size=args.input_size, threads=args.threads)
    if args.manifest:
        manifest = json.loads(args.manifest.read_text()) if args.manifest.exists() else {}
        sources = manifest.setdefault("sources", {})
        for key, entry in entries.items():
            if "build_seconds" not in entry and "build_seconds" in sources.get(key, {}):
                entry["build_seconds"] = sources[key]["build_seconds"]  # nothing was rebuilt now
            sources[key] = entry
        manifest["split"] = ("ml.train.data.split_of(group): SHA-1 of the group key, bucket % 100: "
                             "<80 train, <90 val, else test")
        manifest["file_lists"] = (f"var/cache/deepscreen/v{CACHE_VERSION}/files-<source>.tsv, written by "
                                  "`python -m ml.train.data build` (sha256, split, label, face found, group, path)")
        manifest["sources"] = dict(sorted(manifest["sources"].items()))
        args.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    json.dump(entries, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
