"""Pack the training cache into one small file for a lent GPU machine, and train from it.

Only the working tree travels to the GPU machine (64 MiB in all), so the cache (GBs of uint8
arrays) cannot. `pack` draws a fixed, seeded subsample of every trained source's train and val
sets, re-encodes each crop as a JPEG (quality `PACK_QUALITY`) at `PACK_PX`, and stores the bytes
in one uint8 array with offsets, plus labels, boxes and landmarks rescaled to the packed size,
in an .npz of at most `--max-mib`. Training re-encodes every sample at JPEG 40-95 anyway, so the
packing JPEG is one more compression of the same kind, applied to both classes alike.

`python -m ml.train.pack train PACK ...` unpacks it into memory and runs the ordinary
`ml.train.train.train` on it (same mix, self-blends and calibration), writing to `--out`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from ml.train.data import CachedSet, default_cache_dir
from ml.train.sources import source_sets

logger = logging.getLogger(__name__)

PACK_PX = 192
PACK_QUALITY = 90
DEFAULT_TRAIN_COUNTS = {"dfdc": 2400, "lfw": 1000, "utkface": 1800, "nuaa": 700, "ffhq_sg2": 1300}
"""Train images per source in the pack (DFDC half real, half fake; FFHQ reals only)."""
VAL_COUNT = 150
"""Validation images per source (calibration on the GPU machine)."""


def _encode(image: np.ndarray, size: int, quality: int) -> bytes:
    resized = cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", resized[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV fails only on invalid input
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()


def _choose(data: CachedSet, key: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `count` indices of labels trained on (FFHQ's StyleGAN2 fakes are not), classes balanced."""
    from ml.train.train import trained_indices

    allowed = trained_indices(key, data)
    labels = np.unique(data.labels[allowed])
    chosen = []
    for label in labels:
        pool = allowed[data.labels[allowed] == label]
        chosen.append(rng.permutation(pool)[: count // len(labels)])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def pack(cache_dir: Path, out: Path, *, input_size: int = 224, counts: dict[str, int] | None = None,
         size: int = PACK_PX, quality: int = PACK_QUALITY, val_count: int = VAL_COUNT, seed: int = 0,
         max_mib: float = 60.0) -> dict:
    """Write the pack; fewer images per source (all scaled alike) until it fits in `max_mib`."""
    counts = dict(counts or DEFAULT_TRAIN_COUNTS)
    scale = 1.0
    while True:
        arrays, summary = _pack_arrays(cache_dir, input_size, {k: int(v * scale) for k, v in counts.items()},
                                       size, quality, max(1, int(val_count * scale)), seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, **arrays)
        mib = out.stat().st_size / 2**20
        if mib <= max_mib:
            summary["mib"] = round(mib, 2)
            return summary
        scale *= 0.97 * max_mib / mib
        logger.info("pack is %.1f MiB > %.1f: scaling counts by %.2f", mib, max_mib, scale)


def _pack_arrays(cache_dir: Path, input_size: int, counts: dict[str, int], size: int, quality: int,
                 val_count: int, seed: int) -> tuple[dict[str, np.ndarray], dict]:
    rng = np.random.default_rng(seed)
    blobs: list[bytes] = []
    meta: dict[str, list] = {"labels": [], "source": [], "split": [], "context": [], "boxes": [], "landmarks": []}
    summary: dict = {"size": size, "quality": quality, "sets": {}}
    for key, count in counts.items():
        sets = source_sets(key, cache_dir, input_size)
        for split, n in (("train", count), ("val", val_count)):
            data = sets[split]
            chosen = _choose(data, key, n, rng)
            factor = size / data.images.shape[1]
            for index in chosen:
                blobs.append(_encode(data.images[index], size, quality))
                meta["labels"].append(int(data.labels[index]))
                meta["source"].append(key)
                meta["split"].append(split)
                meta["context"].append(data.context)
                box = data.boxes[index] * factor if data.boxes is not None else np.full(4, np.nan, np.float32)
                meta["boxes"].append(box)
                points = (data.landmarks[index] * factor if data.landmarks is not None
                          else np.full((68, 2), np.nan, np.float32))
                meta["landmarks"].append(points)
            summary["sets"][f"{key}/{split}"] = {"images": len(chosen),
                                                  "fake": int(np.sum(data.labels[chosen] == 1))}
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    arrays = {
        "jpeg": np.frombuffer(b"".join(blobs), dtype=np.uint8), "offsets": offsets,
        "labels": np.array(meta["labels"], np.int64), "source": np.array(meta["source"]),
        "split": np.array(meta["split"]), "context": np.array(meta["context"], bool),
        "boxes": np.array(meta["boxes"], np.float32), "landmarks": np.array(meta["landmarks"], np.float32),
    }
    summary["images"] = len(blobs)
    return arrays, summary


def unpack(path: Path) -> dict[str, dict[str, CachedSet]]:
    """The pack as `{source: {"train": set, "val": set, "test": val set}}` for `train(sets=...)`."""
    with np.load(path) as data:
        jpeg, offsets = data["jpeg"], data["offsets"]
        images = np.stack([
            cv2.imdecode(jpeg[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR)[:, :, ::-1]
            for i in range(len(offsets) - 1)
        ])
        fields = {name: data[name] for name in ("labels", "source", "split", "context", "boxes", "landmarks")}
    out: dict[str, dict[str, CachedSet]] = {}
    for key in sorted(set(fields["source"].tolist())):
        out[key] = {}
        for split in ("train", "val"):
            where = np.flatnonzero((fields["source"] == key) & (fields["split"] == split))
            context = bool(fields["context"][where[0]]) if len(where) else False
            boxes = fields["boxes"][where] if context else None
            landmarks = fields["landmarks"][where]
            out[key][split] = CachedSet(
                np.ascontiguousarray(images[where]), fields["labels"][where], [f"{key}/{split}/{i}" for i in where],
                key, context, landmarks, [""] * len(where), boxes,
            )
        out[key]["test"] = out[key]["val"]
    return out


def parse_count(text: str) -> tuple[str, int]:
    """`SOURCE=N`: train images of one source in the pack (a key of `DEFAULT_TRAIN_COUNTS`)."""
    key, _, count = text.partition("=")
    if key not in DEFAULT_TRAIN_COUNTS:
        raise argparse.ArgumentTypeError(f"unknown source {key!r}; packed: {', '.join(DEFAULT_TRAIN_COUNTS)}")
    try:
        number = int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key}: {count!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{key}: a count cannot be negative")
    return key, number


def main(argv: list[str] | None = None) -> int:
    """`pack` the cache for a GPU machine, or `train` from a pack (other options go to ml.train)."""
    parser = argparse.ArgumentParser(prog="python -m ml.train.pack", description=main.__doc__)
    parser.add_argument("command", choices=["pack", "train"])
    parser.add_argument("pack_path", type=Path)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--max-mib", type=float, default=60.0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the per-source counts (dry runs)")
    parser.add_argument("--cache-input-size", type=int, default=224, help="pack: input size the cache was built for")
    parser.add_argument("--count", type=parse_count, action="append", default=[], metavar="SOURCE=N",
                        help="pack: train images of one source instead of its default (0 leaves it out; repeatable)")
    parser.add_argument("--quality", type=int, default=PACK_QUALITY, help="pack: JPEG quality of the crops")
    parser.add_argument("--px", type=int, default=PACK_PX, help="pack: side of the packed crops")
    parser.add_argument("--imagenet-init", type=Path, default=None,
                        help="pack: also write the ImageNet Lite0 backbone here (fp16) to start the GPU run from")
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "pack":
        if rest:
            parser.error(f"unrecognised arguments for pack: {' '.join(rest)}")
        counts = {**DEFAULT_TRAIN_COUNTS, **dict(args.count)}
        counts = {k: max(2, int(v * args.scale)) for k, v in counts.items() if v > 0}
        summary = pack(args.cache_dir, args.pack_path, input_size=args.cache_input_size, counts=counts,
                       max_mib=args.max_mib, size=args.px, quality=args.quality,
                       val_count=max(2, int(VAL_COUNT * args.scale)))
        if args.imagenet_init is not None:
            from ml.pretrained import save_lite0_backbone

            summary["imagenet_init"] = str(save_lite0_backbone(args.imagenet_init))
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from ml.train.__main__ import parse_args
    from ml.train.train import train

    settings, resume = parse_args(rest)
    sets = unpack(args.pack_path)
    settings.sources = tuple(sets)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger().addHandler(logging.FileHandler(settings.out_dir / "train.log"))
    summary = train(settings, resume=resume, sets=sets)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
