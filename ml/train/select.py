"""Leave-sources-out model selection over the training cache, and weight-space interpolation.

A candidate is judged where it never trained: UADFV and TIMIT sequences (all splits; video score
= the production aggregation of its frame probabilities) and FFHQ vs StyleGAN2 (val split), with
the trained sources' validation splits as the in-domain check. Test splits are never looked at
here: they are reported once, end to end, by `ml.evaluate` for the candidate chosen.

Scoring cached crops costs a few minutes per candidate, where `ml.evaluate` re-runs the detector
on every file; the crops are the production detector's and crop's (docs/training.md), so the
ranking carries over.

Interpolation is WiSE-FT (Wortsman et al., CVPR 2022): the weights (1 - alpha) * init + alpha *
fine-tuned often keep the initial model's robustness and the fine-tuned model's gains; alpha is
chosen here like any other candidate.

    python -m ml.train.select --checkpoint A.safetensors --checkpoint B.safetensors --out runs/select
    python -m ml.train.select --init INIT --tuned TUNED --alphas 0.3,0.5,0.7 --out runs/select \\
        --export runs/ship/model.safetensors --version 2.0.0+YYYYMMDD   # the chosen one, recalibrated
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ml.aggregate import AGGREGATIONS
from ml.contracts import Aggregation
from ml.evaluate.metrics import tpr_at_fpr
from ml.model import ModelConfig, load_checkpoint, logits_to_probability
from ml.train.data import default_cache_dir, default_data_dir
from ml.train.dataset import EvalView
from ml.train.sources import SOURCES, Role, source_sets
from ml.train.train import (
    TrainSettings,
    calibrate_and_export,
    predict_logits,
    roc_auc,
    validation_views,
)

logger = logging.getLogger(__name__)

UNSEEN_VIDEO_SOURCES = tuple(key for key, source in SOURCES.items() if set(source.roles.values()) == {Role.UNSEEN})
"""Sources never trained on in any split (UADFV, TIMIT): the video-level judges."""

MIN_IN_DOMAIN_AUC = 0.90
"""A candidate must keep this validation AUC on DFDC (issue 12's in-domain floor) to be chosen."""

SELECTION_AGGREGATION = Aggregation.trimmed_top
"""Video AUC the choice ranks by: the product's default when 2.0.0 was chosen (calibration then moved
the default to `confident`, whose AUC is reported beside it)."""

CALIBRATION_PER_SOURCE = 400
"""Validation images per trained source the exported candidate is recalibrated on, as training does."""


@dataclass(frozen=True)
class Candidate:
    name: str
    module: torch.nn.Module
    config: ModelConfig


def interpolate(init: torch.nn.Module, tuned: torch.nn.Module, alpha: float) -> torch.nn.Module:
    """`tuned` with every floating-point tensor set to (1 - alpha) * init + alpha * tuned (a new module)."""
    import copy

    mixed = copy.deepcopy(tuned)
    start, end = init.state_dict(), tuned.state_dict()
    if start.keys() != end.keys():
        raise ValueError("interpolation needs two checkpoints of the same architecture")
    mixed.load_state_dict({
        key: torch.lerp(start[key], value, alpha) if value.is_floating_point() else value
        for key, value in end.items()
    })
    return mixed.eval()


def evenly_spaced(indices: np.ndarray, count: int) -> np.ndarray:
    """At most `count` of `indices`, spread over the sequence as the pipeline samples a video."""
    if len(indices) <= count:
        return indices
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(int)]


def sequence_frames(data, frames_per_sequence: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The frames scored (<= `frames_per_sequence` per sequence) and each sequence's positions among them."""
    by_sequence: dict[str, list[int]] = {}
    for index, sequence in enumerate(data.sequences or []):
        by_sequence.setdefault(sequence, []).append(index)
    chosen = [evenly_spaced(np.array(members), frames_per_sequence) for members in by_sequence.values()]
    flat = np.concatenate(chosen)
    bounds = np.cumsum([0] + [len(c) for c in chosen])
    return flat, [np.arange(bounds[i], bounds[i + 1]) for i in range(len(chosen))]


def trained_sets(sets: dict[str, dict]) -> dict[str, dict]:
    """The sources of `sets` that some label is trained on (their validation splits are in-domain)."""
    return {key: split_sets for key, split_sets in sets.items() if SOURCES[key].trained}


def _probabilities(candidate: Candidate, view: EvalView, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    loader = DataLoader(view, batch_size=batch_size, num_workers=1)
    logits, labels = predict_logits(candidate.module, loader, torch.device("cpu"))
    probabilities = logits_to_probability(torch.from_numpy(logits), candidate.config.temperature).numpy()
    return probabilities, labels.astype(int)


def score_candidate(candidate: Candidate, sets: dict[str, dict], *, frames_per_sequence: int,
                    max_per_source: int, batch_size: int, seed: int) -> dict[str, float]:
    """The figures one candidate is chosen by (docstring of the module)."""
    figures: dict[str, float] = {}
    for key in UNSEEN_VIDEO_SOURCES:
        videos = {aggregation: ([], []) for aggregation in AGGREGATIONS}
        labels_all, scores_all = [], []
        for data in sets[key].values():
            if not len(data):
                continue
            flat, groups = sequence_frames(data, frames_per_sequence)
            probabilities, labels = _probabilities(candidate, EvalView(data, candidate.config, flat), batch_size)
            labels_all.append(labels)
            scores_all.append(probabilities)
            for aggregation, (video_labels, video_scores) in videos.items():
                for positions in groups:
                    video_labels.append(int(labels[positions[0]]))
                    video_scores.append(AGGREGATIONS[aggregation](probabilities[positions].tolist()))
        figures[f"{key}_frame_auc"] = roc_auc(np.concatenate(labels_all), np.concatenate(scores_all))
        for aggregation, (video_labels, video_scores) in videos.items():
            labels_v, scores_v = np.array(video_labels), np.array(video_scores)
            figures[f"{key}_video_auc_{aggregation}"] = roc_auc(labels_v, scores_v)
            figures[f"{key}_video_tpr5_{aggregation}"] = tpr_at_fpr(labels_v, scores_v, 0.05)
    rng = np.random.default_rng(seed)
    for view in validation_views(trained_sets(sets), candidate.config, max_per_source, rng):
        probabilities, labels = _probabilities(candidate, view, batch_size)
        key = view.data.source
        if len(np.unique(labels)) == 2:
            figures[f"{key}_val_auc"] = roc_auc(labels, probabilities)
        figures[f"{key}_val_real_mean_p"] = float(probabilities[labels == 0].mean())
    ffhq = sets.get("ffhq_sg2", {}).get("val")
    if ffhq is not None:
        indices = np.sort(rng.permutation(len(ffhq))[: 2 * max_per_source]) if max_per_source else None
        probabilities, labels = _probabilities(candidate, EvalView(ffhq, candidate.config, indices), batch_size)
        figures["ffhq_sg2_val_auc"] = roc_auc(labels, probabilities)
    return figures


def selection_score(figures: dict[str, float]) -> float:
    """Mean video AUC over the unseen sources (`SELECTION_AGGREGATION`); minus infinity below the
    in-domain floor on DFDC's validation split."""
    if figures.get("dfdc_val_auc", 0.0) < MIN_IN_DOMAIN_AUC:
        return -math.inf
    return unseen_video_auc(figures)


def unseen_video_auc(figures: dict[str, float]) -> float:
    return float(np.mean([figures[f"{key}_video_auc_{SELECTION_AGGREGATION}"] for key in UNSEEN_VIDEO_SOURCES]))


def choose(table: dict[str, dict[str, float]]) -> str:
    """The candidate with the best selection score; ties and an all-below-floor table go to the
    best mean unseen video AUC (the floor is then reported as missed, not silently waived)."""
    return max(table, key=lambda name: (selection_score(table[name]), unseen_video_auc(table[name])))


def markdown(table: dict[str, dict[str, float]], chosen: str) -> str:
    columns = sorted({column for figures in table.values() for column in figures})
    lines = ["| candidate | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, figures in table.items():
        mark = f"**{name}**" if name == chosen else name
        lines.append(f"| {mark} | " + " | ".join(f"{figures.get(c, float('nan')):.3f}" for c in columns) + " |")
    floor = "met" if selection_score(table[chosen]) > -math.inf else f"MISSED (< {MIN_IN_DOMAIN_AUC})"
    lines += ["", f"Chosen: {chosen} (DFDC validation floor {floor})."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml.train.select", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, action="append", default=[], help="a candidate (repeatable)")
    parser.add_argument("--init", type=Path, help="interpolation start (WiSE-FT alpha 0)")
    parser.add_argument("--tuned", type=Path, help="interpolation end (alpha 1)")
    parser.add_argument("--alphas", default="", help="comma-separated interpolation weights, e.g. 0.3,0.5,0.7")
    parser.add_argument("--out", type=Path, required=True, help="selection.json and selection.md go here")
    parser.add_argument("--export", type=Path, help="write the chosen candidate here, recalibrated on validation")
    parser.add_argument("--version", help="version of the exported checkpoint")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--input-size", type=int, default=224, help="input size the cache was built for")
    parser.add_argument("--frames-per-sequence", type=int, default=6)
    parser.add_argument("--max-per-source", type=int, default=600, help="validation images per trained source")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.alphas and not (args.init and args.tuned):
        parser.error("--alphas needs --init and --tuned")
    if args.export and not args.version:
        parser.error("--export needs --version")
    return args


def candidates(args: argparse.Namespace) -> list[Candidate]:
    cpu = torch.device("cpu")
    found = [Candidate(path.stem, (loaded := load_checkpoint(path, cpu)).module, loaded.config)
             for path in args.checkpoint]
    if args.init and args.tuned:
        init, tuned = load_checkpoint(args.init, cpu), load_checkpoint(args.tuned, cpu)
        for alpha in [float(a) for a in args.alphas.split(",") if a] or [0.0, 1.0]:
            found.append(Candidate(f"alpha-{alpha:g}", interpolate(init.module, tuned.module, alpha), tuned.config))
    if not found:
        raise SystemExit("nothing to select from: give --checkpoint or --init/--tuned")
    return found


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [key for key, source in SOURCES.items() if source.trained] + list(UNSEEN_VIDEO_SOURCES)
    sets = {key: source_sets(key, args.cache_dir, args.input_size) for key in keys}
    table: dict[str, dict[str, float]] = {}
    found = candidates(args)
    for candidate in found:
        table[candidate.name] = score_candidate(candidate, sets, frames_per_sequence=args.frames_per_sequence,
                                                max_per_source=args.max_per_source, batch_size=args.batch_size,
                                                seed=args.seed)
        logger.info("%s: %s", candidate.name, json.dumps(table[candidate.name]))
    chosen = choose(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "selection.json").write_text(json.dumps({"chosen": chosen, "candidates": table}, indent=2))
    report = markdown(table, chosen)
    (args.out / "selection.md").write_text(report)
    sys.stdout.write(report)
    if args.export:
        winner = next(c for c in found if c.name == chosen)
        config = winner.config.model_copy(update={"version": args.version, "operating_points": ()})
        settings = TrainSettings(out_dir=args.out, data_dir=args.data_dir, cache_dir=args.cache_dir,
                                 export=args.export, version=args.version, batch_size=args.batch_size, workers=1)
        views = validation_views(trained_sets(sets), config, CALIBRATION_PER_SOURCE, np.random.default_rng(args.seed))
        summary = calibrate_and_export(winner.module, config, views, settings, torch.device("cpu"))
        (args.out / "export.json").write_text(json.dumps(summary | {"chosen": chosen}, indent=2))
        sys.stdout.write(f"exported {chosen} to {args.export} (sha256 {summary['sha256']})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
