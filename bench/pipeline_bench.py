"""Pipeline speed on the shared clips, against a naive baseline measured in the same run.

    python -m bench.pipeline_bench [--frames 32] [--repeat 3] [--device cpu] [--checkpoint PATH]
                                   [--videos DIR] [--only TEXT] [--no-naive] [--json OUT]

For every clip: `Pipeline.run` (warm: the first run is discarded; ONNX export and MTCNN load are
one-off costs) with Grad-CAM artifacts, median of `--repeat` runs, per stage; then the naive
baseline, run once: every frame decoded to RGB, the same frames kept, one MTCNN call per frame
at full resolution with facenet-pytorch's defaults, and one eager PyTorch classifier call per
frame. Speed-up = naive seconds / pipeline seconds.

Model weights do not change speed: without the shipped checkpoint a random one of the same
architecture is used (and said so). Reads the data directory from `--videos`, else
`DEEPSCREEN_DATA_DIR`/videos, else `<repo>/../shared/data/videos`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/pipeline_bench.py` as well as `python -m bench.pipeline_bench`
    sys.path.insert(0, str(REPO))

from ml.config import PipelineConfig  # noqa: E402
from ml.contracts import DEFAULT_CHECKPOINT  # noqa: E402
from ml.crop import crop_face  # noqa: E402
from ml.media import probe  # noqa: E402
from ml.model import (  # noqa: E402
    ModelConfig,
    build_classifier,
    load_checkpoint,
    logits_to_probability,
    preprocess,
    save_checkpoint,
)
from ml.onnx_export import export_onnx, onnx_path  # noqa: E402
from ml.pipeline import Pipeline  # noqa: E402
from ml.sampling import sample_media  # noqa: E402


def default_videos() -> Path:
    base = os.environ.get("DEEPSCREEN_DATA_DIR")
    return (Path(base) if base else REPO.parent / "shared" / "data") / "videos"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"PyAV {av.__version__}, Python {platform.python_version()}")


def naive(path: Path, checkpoint: Path, timestamps: list[float], device: torch.device) -> dict[str, float]:
    """The straightforward way: decode everything, detect and classify frame by frame at full size."""
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, device=device)
    model = load_checkpoint(checkpoint, device)
    module = model.module.to(memory_format=torch.contiguous_format)
    seconds = {"decoding": 0.0, "detecting": 0.0, "classifying": 0.0}
    begin = time.perf_counter()
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        wanted = list(timestamps)
        start = None
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="rgb24")  # every frame converted, as a VideoCapture loop does
            start = frame.time if start is None else start
            if wanted and frame.time - start >= wanted[0] - 1e-6:
                frames.append(image)
                wanted.pop(0)
    seconds["decoding"] = time.perf_counter() - begin
    faces = 0
    for image in frames:
        t0 = time.perf_counter()
        boxes, probs = mtcnn.detect(image)
        t1 = time.perf_counter()
        seconds["detecting"] += t1 - t0
        if boxes is None:
            continue
        crops = [crop_face(image, tuple(b), model.config.crop_margin) for b, p in zip(boxes, probs, strict=True)
                 if p >= 0.9]
        if crops:
            with torch.no_grad():
                logits = module(preprocess(crops, model.config).contiguous().to(device))
                logits_to_probability(logits, model.config.temperature)
            faces += len(crops)
        seconds["classifying"] += time.perf_counter() - t1
    seconds["total"] = time.perf_counter() - begin
    seconds["faces"] = faces
    seconds["frames"] = len(frames)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    parser.add_argument("--detect-every", type=int, default=None)
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--only", default=None, help="only clips whose path contains this text")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    videos = [v for v in sorted((args.videos or default_videos()).rglob("*.mp4")) if args.only is None
              or args.only in str(v)]
    if not videos:
        parser.error(f"no .mp4 clips under {args.videos or default_videos()}")
    scratch = Path(tempfile.mkdtemp(prefix="deepscreen-bench-"))
    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    note = ""
    if not checkpoint.is_file():
        config = ModelConfig()
        checkpoint = scratch / "random-effnet-lite0.safetensors"
        save_checkpoint(build_classifier(config), config, checkpoint)
        export_onnx(load_checkpoint(checkpoint, torch.device("cpu")), onnx_path(checkpoint))
        note = " (random weights: the shipped checkpoint is missing; speed is the same)"
    overrides: dict[str, object] = {"frames": args.frames, "backend": args.backend}
    if args.detect_every is not None:
        overrides["detect_every"] = args.detect_every
    config = PipelineConfig(**overrides)
    pipeline = Pipeline(config, device=args.device, checkpoint=checkpoint)
    device = pipeline.device

    print(f"machine: {machine()}")
    print(f"model: {pipeline.model_info.architecture} @ {pipeline.model_info.input_size}px, backend "
          f"{pipeline.backend}, device {device}{note}")
    print(f"config: frames={config.frames} detect_width={config.detect_width} detect_every={config.detect_every} "
          f"batch_size={config.batch_size} explain_top_k={config.explain_top_k}\n")
    rows = []
    stages = ["probing", "sampling", "detecting", "classifying", "aggregating", "explaining"]
    print(f"{'clip':34} {'size':>10} " + " ".join(f"{s[:7]:>7}" for s in stages)
          + f" {'total':>7} {'frames/s':>8} {'faces/s':>7} {'naive':>7} {'speedup':>7}")
    for path in videos:
        info = probe(path, config.limits)
        pipeline.run(path, artifacts_dir=scratch / "warmup")
        runs = [pipeline.run(path, artifacts_dir=scratch / f"run{i}") for i in range(args.repeat)]
        totals = [r.stage_seconds["total"] for r in runs]
        median_run = runs[totals.index(statistics.median_low(totals))]
        total = median_run.stage_seconds["total"]
        row = {
            "clip": str(path.relative_to(path.parents[1])), "width": info.width, "height": info.height,
            "duration_seconds": info.duration_seconds, "frames": len(median_run.frames),
            "faces": len(median_run.faces), "stage_seconds": median_run.stage_seconds,
            "frames_per_second": len(median_run.frames) / total, "faces_per_second": len(median_run.faces) / total,
        }
        if not args.no_naive:
            frames = sample_media(path, info, config.frames)
            baseline = naive(path, checkpoint, [f.timestamp_seconds for f in frames], device)
            row["naive"] = baseline
            row["speedup"] = baseline["total"] / total
        rows.append(row)
        stage_cells = " ".join(f"{median_run.stage_seconds.get(s, 0.0):7.3f}" for s in stages)
        naive_cells = (f" {row['naive']['total']:7.2f} {row['speedup']:6.1f}x" if "naive" in row else "")
        print(f"{row['clip']:34} {info.width:>4}x{info.height:<5} {stage_cells} {total:7.3f} "
              f"{row['frames_per_second']:8.1f} {row['faces_per_second']:7.1f}{naive_cells}", flush=True)
    if not args.no_naive:
        print("\nnaive baseline seconds (decode every frame / detect per frame / classify per frame):")
        for row in rows:
            n = row["naive"]
            print(f"  {row['clip']:34} {n['decoding']:6.2f} {n['detecting']:7.2f} {n['classifying']:6.2f} "
                  f"= {n['total']:6.2f} s for {n['frames']} frames, {n['faces']} faces")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "config": config.model_dump(mode="json"),
                                         "backend": pipeline.backend, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
