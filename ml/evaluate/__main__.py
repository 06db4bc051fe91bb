"""`python -m ml.evaluate`: score sets through the pipeline, store the face scores, print the figures.

Writes `<out>/scores.json` (per-file faces: the input of `python -m ml.train.calibrate`),
`<out>/report.json` and `<out>/report.md`, and prints the markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from ml.config import PipelineConfig
from ml.contracts import DEFAULT_CHECKPOINT, Aggregation, MediaKind
from ml.evaluate.report import markdown, summarise
from ml.evaluate.scoring import FileScores, Scorer, write_scores
from ml.evaluate.sets import DEFAULT_RAW_DIR, NAMED_SETS, EvalItem, folder_items, named_set

logger = logging.getLogger(__name__)


def subsample(items: list[EvalItem], limit: int, seed: int) -> list[EvalItem]:
    """At most `limit` items (0 = all), a fixed-seed sample balanced by label where possible."""
    if not limit or len(items) <= limit:
        return items
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[EvalItem]] = {}
    for item in items:
        by_label.setdefault(item.label, []).append(item)
    per_label = limit // len(by_label)
    return [group[i] for label in sorted(by_label) for group in [by_label[label]]
            for i in sorted(rng.permutation(len(group))[:per_label])]


def evaluate(
    out_dir: Path, *, sets: dict[str, list[EvalItem]], checkpoint: Path, config: PipelineConfig, cache_dir: Path,
    device: str = "cpu", limit: int = 0, seed: int = 0,
) -> dict:
    """Score every set (cached), store the scores, replay decisions and write the report."""
    started = time.perf_counter()
    scorer = Scorer(checkpoint, config, cache_dir, device)
    records: dict[str, list[FileScores]] = {}
    for name, items in sets.items():
        records[name] = scorer.score(subsample(items, limit, seed), desc=name)
    write_scores(out_dir / "scores.json", records, checkpoint_sha256=scorer.checkpoint_sha256,
                 model_config=scorer.model_config, config=scorer.config, weights=scorer.weights_digest)
    rows: dict[str, dict] = {}
    for name, rows_of_set in records.items():
        if not rows_of_set:
            continue
        video = any(r.kind is MediaKind.video for r in rows_of_set)
        for aggregation in (Aggregation if video else [config.aggregation]):
            key = f"{name} ({aggregation})" if video else name
            rows[key] = summarise(rows_of_set, aggregation, model_config=scorer.model_config, config=scorer.config)
    report = {"model": {"model_id": scorer.model_config.model_id, "version": scorer.model_config.version},
              "checkpoint_sha256": scorer.checkpoint_sha256, "limit": limit, "seed": seed,
              "frames": config.frames, "rows": rows, "seconds": round(time.perf_counter() - started, 1)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    (out_dir / "report.md").write_text(markdown(report))
    return report


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value))


def main(argv: list[str] | None = None) -> int:
    from ml.train.data import default_cache_dir, default_data_dir

    parser = argparse.ArgumentParser(prog="python -m ml.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder for scores.json, report.md/json")
    parser.add_argument("--set", dest="sets", action="append", choices=list(NAMED_SETS), default=[],
                        help="a built-in set (repeatable); with neither --set nor --folder: all of them")
    parser.add_argument("--folder", action="append", type=Path, default=[],
                        help="any folder with real/ and fake/ (images, videos, or sub-folders of frames)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--raw-dir", type=Path, default=DEFAULT_RAW_DIR, help="the fetched mirrors (SOURCES.md)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir() / "eval-scores")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=PipelineConfig().frames, help="frames sampled per video")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many files per set (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    names = args.sets or ([] if args.folder else list(NAMED_SETS))
    sets = {name: named_set(name, args.raw_dir, args.data_dir) for name in names}
    for folder in args.folder:
        sets[folder.name] = folder_items(folder)
    config = PipelineConfig(frames=args.frames, explain_top_k=0)
    report = evaluate(args.out, sets=sets, checkpoint=args.checkpoint, config=config, cache_dir=args.cache_dir,
                      device=args.device, limit=args.limit, seed=args.seed)
    sys.stdout.write(markdown(report) + "\n")
    logger.info("report written to %s (%.0f s)", args.out / "report.md", report["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
