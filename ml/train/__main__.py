"""`python -m ml.train`: train, calibrate and export the classifier (see docs/training.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ml.train.data import default_cache_dir, default_data_dir
from ml.train.sbi import BlendMask
from ml.train.train import TrainSettings, train


def parse_mix(text: str) -> dict[str, float]:
    """A named mix (`ml.train.dataset.MIXES`) or `kind=share,...`; unknown kinds and negative shares are refused."""
    from ml.train.dataset import MIXES
    from ml.train.sources import trainable_kinds

    if text in MIXES:
        return dict(MIXES[text])
    known = trainable_kinds()
    mix: dict[str, float] = {}
    for part in text.split(","):
        kind, _, share = part.partition("=")
        kind = kind.strip()
        if kind not in known:
            raise argparse.ArgumentTypeError(
                f"unknown sample kind {kind!r}; known: {', '.join(known)} or a named mix: {', '.join(MIXES)}")
        try:
            mix[kind] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind}: {share!r} is not a number") from None
        if mix[kind] < 0:
            raise argparse.ArgumentTypeError(f"{kind}: a share cannot be negative")
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("the shares must add up to more than 0")
    return mix


def parse_sources(text: str) -> tuple[str, ...]:
    """Comma-separated keys of `ml.train.sources.SOURCES` that may be trained on."""
    from ml.train.sources import SOURCES

    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in keys if k not in SOURCES or not SOURCES[k].trained]
    if bad or not keys:
        trainable = [k for k, s in SOURCES.items() if s.trained]
        raise argparse.ArgumentTypeError(f"not trainable: {bad or text!r}; trainable: {', '.join(trainable)}")
    return keys


def parse_args(argv: list[str] | None = None) -> tuple[TrainSettings, bool]:
    defaults = TrainSettings(out_dir=Path("runs/lite0"), data_dir=default_data_dir(), cache_dir=default_cache_dir())
    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__)
    parser.add_argument("--out", type=Path, default=defaults.out_dir, help="run directory (checkpoints, logs)")
    parser.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    parser.add_argument("--cache-dir", type=Path, default=defaults.cache_dir)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--samples-per-epoch", type=int, default=defaults.samples_per_epoch)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    parser.add_argument("--val-monitor", type=int, default=defaults.val_monitor,
                        help="validation images per source scored after each epoch")
    parser.add_argument("--val-max-per-source", type=int, default=defaults.val_max_per_source,
                        help="cap on each source's validation images for calibration (0: all)")
    parser.add_argument("--input-size", type=int, default=defaults.input_size,
                        help="training resolution (default: the architecture's own, from timm's data config)")
    parser.add_argument("--crop-margin", type=float, default=defaults.crop_margin)
    parser.add_argument("--freeze-blocks", type=int, default=defaults.freeze_blocks,
                        help="freeze the stem and this many EfficientNet stages (0 trains everything)")
    parser.add_argument("--architecture", default=defaults.architecture, help="any timm EfficientNet name")
    parser.add_argument("--init", type=Path, default=None,
                        help="timm state dict to start from (required for architectures other than efficientnet_lite0)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads (0: torch default)")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="data loader processes")
    parser.add_argument("--export", type=Path, default=defaults.export,
                        help="where the calibrated checkpoint goes (default: the shipped model path)")
    parser.add_argument("--version", default=defaults.version)
    parser.add_argument("--sources", type=parse_sources, default=defaults.sources,
                        help=f"trained sources, comma-separated (default: {','.join(defaults.sources)})")
    parser.add_argument("--raw", type=Path, default=defaults.raw_dir,
                        help="the fetched mirrors (owner+name/), read only when a cache is missing")
    parser.add_argument("--cache-input-size", type=int, default=defaults.cache_input_size,
                        help="input size the cache is built for (python -m ml.train.data build --input-size)")
    parser.add_argument("--mix", type=parse_mix, default=None,
                        help="a named mix (default, legacy, sbi_only) or sample kinds per epoch, e.g. "
                             "dfdc_real=0.3,utkface_real=0.2,dfdc_fake=0.2,sbi=0.3 (default: DEFAULT_MIX)")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="stop after the epoch that crosses this budget, then calibrate (0: off)")
    parser.add_argument("--blend-mask", type=BlendMask, choices=list(BlendMask), default=defaults.blend_mask,
                        help="self-blend masks: the landmark hull (paper) or the 1.x ellipse (ablation)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/state.pt")
    args = parser.parse_args(argv)
    settings = TrainSettings(
        out_dir=args.out, data_dir=args.data_dir, cache_dir=args.cache_dir, epochs=args.epochs,
        samples_per_epoch=args.samples_per_epoch, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, input_size=args.input_size,
        crop_margin=args.crop_margin, val_monitor=args.val_monitor, val_max_per_source=args.val_max_per_source,
        freeze_blocks=args.freeze_blocks, architecture=args.architecture, init=args.init, seed=args.seed,
        device=args.device, threads=args.threads, workers=args.workers, export=args.export,
        version=args.version, sources=args.sources, raw_dir=args.raw, cache_input_size=args.cache_input_size,
        max_minutes=args.max_minutes, mix=args.mix, blend_mask=args.blend_mask,
    )
    return settings, args.resume


def main(argv: list[str] | None = None) -> int:
    settings, resume = parse_args(argv)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(settings.out_dir / "train.log")],
    )
    summary = train(settings, resume=resume)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
