"""The synthetic-face signal: a logistic-regression head on the classifier's pooled features.

`python -m ml.train.synthetic --checkpoint CKPT --out NEW --report DIR` fits it on any checkpoint.

A face generated whole (StyleGAN2) has no blending boundary for the manipulation head to find,
and the issue measured the shipped head scoring GAN faces *more* real than FFHQ photos. The
pooled features still separate them, so a linear head on them (scikit-learn's logistic
regression, C chosen on validation AUC) is a cheap second signal, stored in the checkpoint as
`synthetic_head.weight/bias` and applied by `ml.classify` in the same forward pass.

Data (docs/training.md, data protocol): FFHQ (real) vs StyleGAN2 (fake) from
bhunakit/HeadshotClassification, split by `split_of("ffhq_sg2:<sha256>")`: fit on train, choose
C on val, report test. The classes differ in file format (PNG vs JPEG: a format shortcut), so
every crop of both classes is decoded, face-detected with the production detector, cropped
with the production crop, resized and re-encoded as JPEG at a random quality (70-95, seeded by
the file digest) before its features are taken. The test figures are given both re-encoded and
raw (the files as the pipeline reads them), beside the file-size and sharpness baselines.

The operating point is calibrated like the others (`ml.train.calibrate`) on the raw path, i.e.
what the pipeline sees: FFHQ/StyleGAN2 test and the test-split reals of the other photo sources
(a real UTKFace, NUAA, LFW or DFDC face called synthetic is a false alarm), leave-one-source-out.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from ml.contracts import Aggregation, MediaKind, Signal

logger = logging.getLogger(__name__)

JPEG_QUALITY = (70, 95)
C_GRID = (0.001, 0.01, 0.1, 1.0)
C_TOLERANCE = 0.005
NEGATIVE_SOURCES = ("utkface", "nuaa", "lfw", "dfdc")
"""Train-split reals of these photo sources join FFHQ as negatives: fitted on FFHQ alone, the head
called 17 % of LFW test reals synthetic (it learned "not FFHQ", not "generated")."""
REALS_PER_SOURCE = 150
"""Test-split reals per other photo source, for the false-alarm side of the operating point."""
PER_CLASS = {"train": 0, "val": 0, "test": 0}
"""Items per class and split (0: all); the 2-core machine cannot take all 6,000 in an hour."""


def per_class(items: list, limit: int, seed: int = 0) -> list:
    """At most `limit` items of each label (0: all), a fixed-seed sample in the original order."""
    if not limit:
        return items
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted({i.label for i in items}):
        group = [i for i in items if i.label == label]
        chosen += [group[k] for k in sorted(rng.permutation(len(group))[:limit])]
    return chosen


def reencode(crop: np.ndarray, size: int, sha256: str) -> np.ndarray:
    """Resize and JPEG re-encode at a quality drawn from the file digest: the same for both classes."""
    from ml.model import resize_crop

    quality = int(np.random.default_rng(int(sha256[:8], 16)).integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    image = resize_crop(crop, size)
    ok, encoded = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1])


class Featurizer:
    """Production detector + crop + the checkpoint's pooled features, with a per-item cache."""

    def __init__(self, checkpoint: Path, cache_path: Path) -> None:
        from ml.config import PipelineConfig
        from ml.pipeline import Pipeline

        self.pipeline = Pipeline(PipelineConfig(explain_top_k=0, backend="torch"), checkpoint=checkpoint)
        self.cache_path = cache_path
        self.cache: dict[str, np.ndarray] = {}
        if cache_path.is_file():
            with np.load(cache_path) as data:
                self.cache = {k: data[k] for k in data.files}

    def save(self) -> None:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".tmp.npz")
        np.savez(tmp, **self.cache)
        tmp.replace(self.cache_path)

    def crop(self, item) -> np.ndarray | None:
        """The production crop of the item's central face (the whole image for face crops), or None."""
        from ml.crop import crop_face
        from ml.train.data import central_face, read_rgb

        image = read_rgb(item.path)
        if item.face_crops:
            return image
        assert self.pipeline.detector is not None
        (faces,) = self.pipeline.detector.detect([image])
        box = central_face([f.box for f in faces], image.shape[1], image.shape[0])
        return None if box is None else crop_face(image, box, self.pipeline.model.config.crop_margin)

    def features(self, items, *, reencoded: bool, desc: str) -> tuple[np.ndarray, np.ndarray, list]:
        """(features, labels, items kept): items without a detected face are left out (counted in the log)."""
        from tqdm import tqdm

        from ml.evaluate.sets import sha256_of

        rows, labels, kept, missing = [], [], [], 0
        size = self.pipeline.model.config.input_size
        for item in tqdm(items, desc=desc, mininterval=10.0):
            sha = sha256_of(item.path)
            key = f"{sha}-{'jpeg' if reencoded else 'raw'}"
            if key not in self.cache:
                crop = self.crop(item)
                if crop is None:
                    self.cache[key] = np.zeros(0, dtype=np.float16)
                else:
                    crop = reencode(crop, size, sha) if reencoded else crop
                    self.cache[key] = self.pipeline.classifier.pooled_features([crop])[0].astype(np.float16)
            if self.cache[key].size == 0:
                missing += 1
                continue
            rows.append(self.cache[key].astype(np.float32))
            labels.append(item.label)
            kept.append(item)
        logger.info("%s: %d items, %d without a face", desc, len(kept), missing)
        self.save()
        return np.stack(rows), np.array(labels), kept


def fit_head(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray):
    """Logistic regression on standardised features, C by validation AUC; returns (weight, bias, C, val AUC).

    The standardisation is folded into the weights, so the stored head is one `Linear` on raw features.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
    fits = []
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit((train_x - mean) / scale, train_y)
        auc = float(roc_auc_score(val_y, model.decision_function((val_x - mean) / scale)))
        logger.info("C=%g: val AUC %.4f", c, auc)
        fits.append((model, auc, c))
    # the strongest regularisation within C_TOLERANCE of the best validation AUC: weaker C saturates
    # the probabilities at 1.0 (a 1280-feature fit on ~1,000 faces), which leaves no room for a threshold
    top = max(auc for _, auc, _ in fits)
    model, auc, c = next(fit for fit in fits if fit[1] >= top - C_TOLERANCE)
    weight = model.coef_[0] / scale
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * mean / scale))
    return weight.astype(np.float32), bias, c, float(auc)


def apply_head(x: np.ndarray, weight: np.ndarray, bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ weight + bias)))


def other_photo_items(raw_dir: Path, data_dir: Path) -> dict[str, list]:
    from ml.evaluate.sets import dfdc_items, lfw_items, nuaa_items, utkface_items

    return {"utkface": utkface_items(raw_dir), "nuaa": nuaa_items(raw_dir), "lfw": lfw_items(data_dir),
            "dfdc": dfdc_items(data_dir)}


def run(checkpoint: Path, out: Path, report_dir: Path, *, raw_dir: Path, data_dir: Path, cache_dir: Path,
        version: str | None = None, reals_per_source: int = REALS_PER_SOURCE,
        limits: dict[str, int] | None = None, negatives_per_source: int = 0) -> dict:
    from ml.evaluate.metrics import baseline_auc, binary_metrics, sharpness
    from ml.evaluate.sets import ffhq_sg2_items
    from ml.model import FEATURE_FIELDS, weights_digest
    from ml.train.calibrate import SourceScores, calibrate_point, markdown_report, synthetic_video_points

    features_key = weights_digest(checkpoint, synthetic_head=False, fields=FEATURE_FIELDS)
    featurizer = Featurizer(checkpoint, cache_dir / f"{features_key}.npz")
    ffhq = ffhq_sg2_items(raw_dir)
    limits = {**PER_CLASS, **(limits or {})}
    by_split = {split: per_class([i for i in ffhq if i.split == split], limits[split]) for split in PER_CLASS}
    train_x, train_y, _ = featurizer.features(by_split["train"], reencoded=True, desc="ffhq_sg2 train")
    others = other_photo_items(raw_dir, data_dir)
    rng = np.random.default_rng(1)
    for name in NEGATIVE_SOURCES if negatives_per_source else ():
        reals = [i for i in others[name] if i.label == 0 and i.split == "train"]
        reals = [reals[k] for k in sorted(rng.permutation(len(reals))[:negatives_per_source])]
        x, y, _ = featurizer.features(reals, reencoded=True, desc=f"{name} train reals")
        train_x, train_y = np.concatenate([train_x, x]), np.concatenate([train_y, y])
    val_x, val_y, _ = featurizer.features(by_split["val"], reencoded=True, desc="ffhq_sg2 val")
    weight, bias, c, val_auc = fit_head(train_x, train_y, val_x, val_y)
    test_x, test_y, _ = featurizer.features(by_split["test"], reencoded=True, desc="ffhq_sg2 test re-encoded")
    raw_x, raw_y, _ = featurizer.features(by_split["test"], reencoded=False, desc="ffhq_sg2 test raw")
    test = by_split["test"]
    figures: dict = {
        "train": {"real": int((train_y == 0).sum()), "fake": int((train_y == 1).sum())}, "C": c, "val_auc": val_auc,
        "test_reencoded": binary_metrics(test_y, apply_head(test_x, weight, bias), 0.5),
        "test_raw": binary_metrics(raw_y, apply_head(raw_x, weight, bias), 0.5),
        "test_file_size_auc": baseline_auc([i.label for i in test], [i.path.stat().st_size for i in test]),
        "test_sharpness_auc": baseline_auc([i.label for i in test], [sharpness(i.path) for i in test]),
    }
    rng = np.random.default_rng(0)
    sources = [SourceScores("ffhq_sg2", apply_head(raw_x[raw_y == 0], weight, bias),
                            apply_head(raw_x[raw_y == 1], weight, bias))]
    for name, items in others.items():
        reals = [i for i in items if i.label == 0 and i.split == "test"]
        reals = [reals[k] for k in sorted(rng.permutation(len(reals))[:reals_per_source])]
        x, _, _ = featurizer.features(reals, reencoded=False, desc=f"{name} test reals")
        sources.append(SourceScores(name, apply_head(x, weight, bias), np.zeros(0)))
    points, calibration = [], {}
    for aggregation in Aggregation:  # one face per photo: every strategy gives the same score
        point, detail = calibrate_point(sources, signal=Signal.synthetic_face, kind=MediaKind.image,
                                        aggregation=aggregation)
        points.append(point)
        calibration[f"{Signal.synthetic_face}/{MediaKind.image}/{aggregation}"] = {
            "point": point.model_dump(mode="json"), **detail}
    points += synthetic_video_points(points, {})[0]  # refit on real videos by ml.train.calibrate
    figures["calibration"] = calibration
    extra = (f" + {negatives_per_source} train reals each of {', '.join(NEGATIVE_SOURCES)}"
             if negatives_per_source else "")
    description = (f"logistic regression (C={c}) on pooled features of ffhq_sg2 train ({figures['train']['real']} "
                   f"real / {figures['train']['fake']} StyleGAN2{extra}, production crop, JPEG re-encoded "
                   f"{JPEG_QUALITY}); "
                   f"val AUC {val_auc:.3f}, test AUC {figures['test_raw'].get('auc', float('nan')):.3f}")
    digest = write_head(checkpoint, out, weight, bias, description, points, version=version)
    figures["checkpoint"] = {"path": str(out), "sha256": digest}
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "synthetic.json").write_text(json.dumps(figures, indent=2, default=float))
    text = "\n".join([
        "# Synthetic-face head", "", description, "",
        "| test set | n | AUC | EER | TPR@1%FPR | TPR@5%FPR | ECE |", "|---|---|---|---|---|---|---|",
        *[f"| {name} | {m['n']} | {m['auc']:.3f} | {m['eer']:.3f} | {m['tpr_at_fpr_1pct']:.3f} | "
          f"{m['tpr_at_fpr_5pct']:.3f} | {m['ece']:.3f} |"
          for name, m in (("re-encoded crops", figures["test_reencoded"]), ("raw files", figures["test_raw"]))],
        "", f"Baselines on the test files: file size AUC {figures['test_file_size_auc']:.3f}, sharpness AUC "
        f"{figures['test_sharpness_auc']:.3f}.", "", markdown_report(calibration, None).split("\n\nBest")[0], "",
    ])
    (report_dir / "synthetic.md").write_text(text)
    sys.stdout.write(text + "\n")
    return figures


def write_head(source: Path, target: Path, weight: np.ndarray, bias: float, description: str, points, *,
               version: str | None = None) -> str:
    """Copy `source` with the head's tensors, `synthetic_head` set and the synthetic points; its SHA-256."""
    from safetensors.torch import load_file, save_file

    from ml.model import CONFIG_METADATA_KEY, SYNTHETIC_HEAD_PREFIX, file_sha256, read_checkpoint_config

    if source.resolve() == target.resolve():
        raise ValueError("Write the checkpoint with the head to a new file; the source stays as it is.")
    config = read_checkpoint_config(source)
    kept = [p for p in config.operating_points if p.signal is not Signal.synthetic_face]
    update: dict = {"operating_points": tuple(kept + list(points)), "synthetic_head": description}
    if version:
        update["version"] = version
    config = config.model_copy(update=update)
    tensors = {k: v for k, v in load_file(str(source)).items() if not k.startswith(SYNTHETIC_HEAD_PREFIX)}
    tensors[SYNTHETIC_HEAD_PREFIX + "weight"] = torch.from_numpy(weight.reshape(1, -1).astype(np.float32))
    tensors[SYNTHETIC_HEAD_PREFIX + "bias"] = torch.tensor([bias], dtype=torch.float32)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata={CONFIG_METADATA_KEY: config.model_dump_json()})
    return file_sha256(target)


def main(argv: list[str] | None = None) -> int:
    from ml.evaluate.sets import DEFAULT_RAW_DIR
    from ml.train.data import default_cache_dir, default_data_dir

    parser = argparse.ArgumentParser(prog="python -m ml.train.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="the classifier to put the head on")
    parser.add_argument("--out", type=Path, required=True, help="the new checkpoint (never the input)")
    parser.add_argument("--report", type=Path, required=True, help="folder for synthetic.md / .json")
    parser.add_argument("--version", help="version string of the new checkpoint (default: unchanged)")
    parser.add_argument("--raw-dir", type=Path, default=DEFAULT_RAW_DIR)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir() / "synthetic-features")
    parser.add_argument("--reals-per-source", type=int, default=REALS_PER_SOURCE)
    parser.add_argument("--negatives-per-source", type=int, default=0,
                        help=f"train-split reals of {', '.join(NEGATIVE_SOURCES)} added to the fit (0: FFHQ only)")
    parser.add_argument("--threads", type=int, default=1)
    for split in PER_CLASS:
        parser.add_argument(f"--{split}-per-class", type=int, default=0, help=f"ffhq_sg2 {split} items per class "
                            "(0: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    run(args.checkpoint, args.out, args.report, raw_dir=args.raw_dir, data_dir=args.data_dir,
        cache_dir=args.cache_dir, version=args.version, reals_per_source=args.reals_per_source,
        limits={split: getattr(args, f"{split}_per_class") for split in PER_CLASS},
        negatives_per_source=args.negatives_per_source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
