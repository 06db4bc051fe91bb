"""Fine-tune the real/fake classifier, checkpoint every epoch, calibrate on validation, export.

The loop is deliberately small: one `TrainMix` dataset over cached crops, AdamW with a warm-up
then cosine schedule, early blocks frozen (they hold generic edge/colour filters and cost most of
the backward pass at high resolution), bf16 autocast on CUDA, channels-last everywhere.
`state.pt` in the run directory holds model + optimiser + schedule after each epoch; `--resume`
continues from it and replays exactly the epochs that remain.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader
from tqdm import tqdm

from ml.contracts import DEFAULT_CHECKPOINT
from ml.model import ModelConfig, load_checkpoint, logits_to_probability, save_checkpoint, with_model_preprocessing
from ml.pretrained import init_classifier
from ml.train.calibrate import balanced_accuracy_threshold, fit_temperature
from ml.train.sbi import BlendMask

logger = logging.getLogger(__name__)

STATE_FILE = "state.pt"


@dataclass
class TrainSettings:
    """Everything that defines a run; stored in the run directory and in `state.pt`."""

    out_dir: Path
    data_dir: Path
    cache_dir: Path
    epochs: int = 6
    samples_per_epoch: int = 14000
    batch_size: int = 32
    lr: float = 6e-4
    weight_decay: float = 0.02
    warmup_steps: int = 100
    input_size: int | None = None
    """Training resolution; None: the architecture's own (timm's data config, 224 for efficientnet_lite0)."""
    crop_margin: float = -0.1
    freeze_blocks: int = 3
    architecture: str = "efficientnet_lite0"
    init: Path | None = None
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    workers: int = 1
    val_monitor: int = 1000
    """Validation images per source scored after every epoch (a seeded subsample)."""
    val_max_per_source: int = 0
    """Cap on each source's validation images used for calibration (0: all); saves CPU time."""
    export: Path | None = DEFAULT_CHECKPOINT
    version: str = field(default_factory=lambda: f"1.0.0+{datetime.now(UTC):%Y%m%d}")
    model_id: str = "deepscreen-effnet-lite0"
    sources: tuple[str, ...] = ("dfdc", "lfw", "utkface", "nuaa", "ffhq_sg2")
    """Trained sources (keys of `ml.train.sources.SOURCES`); only their train split is trained on."""
    raw_dir: Path = Path("/work/datasets/raw")
    """The fetched mirrors (owner+name/), read when a cache has to be built."""
    cache_input_size: int = 224
    """Input size the cache was built for; a smaller `input_size` is cut from the same cache."""
    mix: dict[str, float] | None = None
    """Share of each sample kind per epoch (`ml.train.dataset.DEFAULT_MIX` when None)."""
    blend_mask: BlendMask = BlendMask.landmarks
    """Self-blend masks from the landmark hull (the paper) or the 1.x ellipse (the ablation)."""
    max_minutes: float = 0.0
    """Time budget (0 = off): the cosine schedule follows whichever is further along, the planned
    steps or the clock, and training stops when the clock runs out, mid-epoch if need be, so the
    learning rate is annealed to zero even when the machine is slower than planned (a lent GPU
    machine gives one command 10 minutes). Stopping early is logged and in the summary."""

    def model_config(self, model: torch.nn.Module) -> ModelConfig:
        """The checkpoint's config for `model`: normalisation and input size from the model's own data config."""
        base = ModelConfig(architecture=self.architecture, crop_margin=self.crop_margin, model_id=self.model_id,
                           version=self.version)
        return with_model_preprocessing(base, model, input_size=self.input_size)

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def freeze_early(model: torch.nn.Module, blocks: int) -> list[torch.nn.Module]:
    """Freeze the stem and the first `blocks` stages; returns the frozen modules (kept in eval)."""
    frozen: list[torch.nn.Module] = []
    if blocks <= 0:
        return frozen
    frozen = [model.get_submodule(name) for name in ("conv_stem", "bn1")]
    frozen += [model.get_submodule(f"blocks.{index}") for index in range(blocks)]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return frozen


def cosine_with_warmup(total_steps: int, warmup: int, budget_spent: Callable[[], float] | None = None):
    """LR factor per step: linear warmup, then a cosine to zero over the remaining steps, or over
    the time budget when `budget_spent` (its fraction used, 0..1+) is further along."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        if budget_spent is not None:
            progress = max(progress, budget_spent())
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module, loader: DataLoader, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Raw logits and labels over `loader` (model put in eval mode)."""
    model.eval()
    logits, labels = [], []
    for images, targets in loader:
        images = images.to(device).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(images)[:, 0]
        logits.append(out.float().cpu().numpy())
        labels.append(targets.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def _loader(dataset, settings: TrainSettings, *, shuffle: bool, device: torch.device) -> DataLoader:
    return DataLoader(
        dataset, batch_size=settings.batch_size, shuffle=shuffle, num_workers=settings.workers,
        persistent_workers=False, pin_memory=device.type == "cuda", worker_init_fn=_worker_init,
    )


def _worker_init(_: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def load_cached_sets(settings: TrainSettings) -> dict[str, dict]:
    """Each source's cached train/val/test sets; missing caches are built first (docs/training.md)."""
    from ml.train.data import SPLITS, cache_size, cached
    from ml.train.sources import SOURCES, Framing, build, source_sets

    missing = [key for key in settings.sources
               if not all(cached(settings.cache_dir, key, split,
                                 cache_size(SOURCES[key].framing == Framing.DETECT, settings.cache_input_size))
                          for split in SPLITS)]
    if missing:
        build(missing, raw_dir=settings.raw_dir, data_dir=settings.data_dir, cache_dir=settings.cache_dir,
              input_size=settings.cache_input_size, threads=max(1, settings.threads // 2))
    return {key: source_sets(key, settings.cache_dir, settings.cache_input_size) for key in settings.sources}


def trained_indices(key: str, data) -> np.ndarray:
    """Indices of a set whose label is trained on (FFHQ's StyleGAN2 fakes are not: synthetic signal)."""
    from ml.train.sources import SOURCES, Role

    roles = SOURCES[key].roles if key in SOURCES else {0: Role.TRAIN, 1: Role.TRAIN}
    keep = [label for label, role in roles.items() if role == Role.TRAIN]
    return np.flatnonzero(np.isin(data.labels, keep))


def validation_views(sets: dict[str, dict], config: ModelConfig, max_per_source: int,
                     rng: np.random.Generator) -> list:
    """Each source's validation images of the labels it trains on (a seeded subsample of at most
    `max_per_source`, 0: all): what a run calibrates on and model selection compares in-domain."""
    from ml.train.dataset import EvalView

    views = [EvalView(split_sets["val"], config, trained_indices(key, split_sets["val"]))
             for key, split_sets in sets.items()]
    views = [view for view in views if len(view)]
    if max_per_source > 0:
        views = [EvalView(v.data, config, np.sort(rng.permutation(v.indices)[:max_per_source])) for v in views]
    return views


def train(settings: TrainSettings, *, resume: bool = False, sets=None) -> dict:
    """Run (or resume) training, then calibrate and export; returns the run summary.

    `sets` replaces the cached data sets (tests); torch's thread count is restored afterwards.
    """
    previous_threads = torch.get_num_threads()
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    try:
        return _train(settings, resume=resume, sets=sets)
    finally:
        torch.set_num_threads(previous_threads)


def _train(settings: TrainSettings, *, resume: bool, sets) -> dict:
    from ml.train.dataset import EvalView, TrainMix

    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    (settings.out_dir / "settings.json").write_text(json.dumps(settings.to_json(), indent=2))
    model = init_classifier(ModelConfig(architecture=settings.architecture), settings.init)
    config = settings.model_config(model)
    model = model.to(device).to(memory_format=torch.channels_last)

    sets = sets if sets is not None else load_cached_sets(settings)
    train_sets = {key: split_sets["train"] for key, split_sets in sets.items()}
    train_set = TrainMix(train_sets, config, settings.samples_per_epoch, settings.seed, settings.mix,
                         settings.blend_mask)
    logger.info("mix: %s", dict(zip(train_set.kinds, np.round(train_set.weights, 3).tolist(), strict=True)))
    rng = np.random.default_rng(settings.seed)
    val_views = validation_views(sets, config, settings.val_max_per_source, rng)
    monitor_views = [
        EvalView(v.data, config, np.sort(v.indices[rng.permutation(len(v))[: settings.val_monitor]]))
        for v in val_views
    ]

    frozen = freeze_early(model, settings.freeze_blocks)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(settings.samples_per_epoch / settings.batch_size)
    run_started = time.perf_counter()

    def budget_spent() -> float:
        return (time.perf_counter() - run_started) / (60 * settings.max_minutes)

    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, cosine_with_warmup(settings.epochs * steps_per_epoch, settings.warmup_steps,
                                      budget_spent if settings.max_minutes else None)
    )
    history: list[dict] = []
    start_epoch = 0
    state_path = settings.out_dir / STATE_FILE
    if resume and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        history = state["history"]
        start_epoch = state["epoch"] + 1
        logger.info("Resumed from %s at epoch %d", state_path, start_epoch)

    stopped_early = False
    for epoch in range(start_epoch, settings.epochs):
        if stopped_early:
            break
        train_set.set_epoch(epoch)
        loader = _loader(train_set, settings, shuffle=False, device=device)  # the plan is already random
        model.train()
        for module in frozen:
            module.eval()
        started, seen, losses = time.perf_counter(), 0, []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{settings.epochs}", mininterval=5.0)
        for images, targets in bar:
            images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            targets = targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(images)[:, 0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            seen += len(targets)
            losses.append(loss.item())
            rate = seen / (time.perf_counter() - started)
            bar.set_postfix(
                loss=f"{np.mean(losses[-50:]):.4f}", img_s=f"{rate:.1f}", lr=f"{schedule.get_last_lr()[0]:.2e}"
            )
            if settings.max_minutes and budget_spent() >= 1.0:
                logger.warning("Time budget of %.1f min spent in epoch %d after %d images: stopping",
                               settings.max_minutes, epoch + 1, seen)
                stopped_early = True
                break
        elapsed = time.perf_counter() - started
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "images": seen,
                  "images_per_s": seen / elapsed, "epoch_seconds": elapsed}
        pooled_logits, pooled_labels = [], []
        for view in monitor_views:
            logits_v, labels_v = predict_logits(model, _loader(view, settings, shuffle=False, device=device), device)
            pooled_logits.append(logits_v)
            pooled_labels.append(labels_v)
            if len(np.unique(labels_v)) == 2:
                record[f"val_auc_{view.data.source}"] = roc_auc(labels_v, logits_v)
            real_p = logits_to_probability(torch.from_numpy(logits_v[labels_v == 0]), 1.0)
            record[f"val_real_mean_p_{view.data.source}"] = float(real_p.mean())
        record["val_auc_pooled"] = roc_auc(np.concatenate(pooled_labels), np.concatenate(pooled_logits))
        history.append(record)
        logger.info("epoch %s", json.dumps(record))
        torch.save(
            {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
             "epoch": epoch, "history": history, "settings": settings.to_json()},
            state_path.with_suffix(".tmp"),
        )
        state_path.with_suffix(".tmp").replace(state_path)
        save_checkpoint(model, config.model_copy(update={"version": f"{config.version}.epoch{epoch + 1}"}),
                        settings.out_dir / f"epoch-{epoch + 1}.safetensors", half=False)

    summary = calibrate_and_export(model, config, val_views, settings, device)
    summary["history"] = history
    summary["stopped_early"] = stopped_early
    summary["train_minutes"] = sum(h["epoch_seconds"] for h in history) / 60
    (settings.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def calibrate_and_export(model, config: ModelConfig, val_views, settings: TrainSettings, device: torch.device) -> dict:
    """Fit temperature and threshold on the whole validation split; export fp16 if it loses nothing."""
    loader = _loader(ConcatDataset(val_views), settings, shuffle=False, device=device)
    logits, labels = predict_logits(model, loader, device)
    temperature = fit_temperature(logits, labels)
    probabilities = logits_to_probability(torch.from_numpy(logits), temperature).numpy()
    sources = np.concatenate([[view.data.source] * len(view) for view in val_views])
    threshold = balanced_accuracy_threshold(probabilities, labels, sources)
    final = config.model_copy(update={"temperature": temperature, "threshold": threshold})
    summary: dict = {"temperature": temperature, "threshold": threshold, "val_auc_fp32": roc_auc(labels, logits),
                     "val_size": len(labels), "version": final.version}
    if settings.export is None:
        return summary
    fp32_path = settings.out_dir / "final-fp32.safetensors"
    save_checkpoint(model, final, fp32_path, half=False)
    fp16_path = settings.out_dir / "final-fp16.safetensors"
    save_checkpoint(model, final, fp16_path, half=True)
    half = load_checkpoint(fp16_path, device)
    logits16, _ = predict_logits(half.module, loader, device)
    summary["val_auc_fp16"] = roc_auc(labels, logits16)
    summary["max_abs_logit_diff_fp16"] = float(np.max(np.abs(logits16 - logits)))
    use_half = abs(summary["val_auc_fp16"] - summary["val_auc_fp32"]) < 1e-3
    chosen = fp16_path if use_half else fp32_path
    settings.export.parent.mkdir(parents=True, exist_ok=True)
    settings.export.write_bytes(chosen.read_bytes())
    summary["exported"] = str(settings.export)
    summary["exported_half"] = use_half
    summary["sha256"] = load_checkpoint(settings.export, torch.device("cpu")).sha256
    logger.info("calibrated: %s", json.dumps(summary))
    return summary


def default_threads() -> int:
    return os.cpu_count() or 1
