"""The GPU path measured on one lent GPU machine (an H200), against a CPU reference made here.

    python -m bench.gpu_bench reference --clips DIR --out FILE    # here, on the CPU
    python -m bench.gpu_bench measure --clips DIR --reference FILE --out DIR [--seconds-budget 420]

`scripts/gpu-bench` runs both (prepare here, run there); see it for the environment. `measure`:

1. correctness: every clip analysed on CUDA (batched MTCNN on the GPU, classifier with autocast,
   channels-last, Grad-CAM) against the CPU result: the same faces (same frames, boxes at IoU
   >= 0.9) and face scores within 1e-2;
2. classification faces/s at batch 64-512: `Classifier.score` on 224 px crops (CPU preprocessing
   included, what the pipeline pays) and the model alone on a GPU batch (fp16 and bf16 autocast);
3. MTCNN frames/s on 1080p frames (`FaceDetector.detect`, batches of 32);
4. videos/min end to end with 1, 4 and 8 worker processes sharing the GPU, each looping
   `Pipeline.run` over the 1080p clips for a fixed time.

Every figure goes to `<out>/gpu-bench.json` and a readable `<out>/gpu-bench.txt`, written after each
step, so a run cut short still brings back what it measured.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BOX_IOU = 0.9
SCORE_TOLERANCE = 1e-2


def _analyse(clips: list[Path], device: str) -> dict[str, dict[str, object]]:
    from ml.config import PipelineConfig
    from ml.pipeline import Pipeline

    pipeline = Pipeline(PipelineConfig(backend="torch"), device=device)
    results = {}
    for clip in clips:
        result = pipeline.run(clip)
        results[clip.name] = {
            "faces": [{"frame": f.frame_index, "box": list(f.box), "p_fake": f.p_fake, "track": f.track_id}
                      for f in result.faces],
            "score": result.score, "tracks": len(result.tracks), "label": str(result.label),
            "seconds": result.stage_seconds["total"],
        }
    return results


def reference(clips_dir: Path, out: Path) -> None:
    clips = sorted(clips_dir.glob("*.mp4"))
    out.write_text(json.dumps({"device": "cpu", "results": _analyse(clips, "cpu")}, indent=1))
    print(f"CPU reference for {len(clips)} clips written to {out}")


class Report:
    def __init__(self, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.figures: dict[str, object] = {}
        self.lines: list[str] = []

    def add(self, key: str, value: object, line: str) -> None:
        self.figures[key] = value
        self.lines.append(line)
        print(line, flush=True)
        (self.out / "gpu-bench.json").write_text(json.dumps(self.figures, indent=1, default=str))
        (self.out / "gpu-bench.txt").write_text("\n".join(self.lines) + "\n")


def _iou(a: list[float], b: list[float]) -> float:
    from ml.faces import box_iou

    return box_iou(tuple(a), tuple(b))  # type: ignore[arg-type]


def check_correctness(report: Report, clips: list[Path], reference_file: Path) -> None:
    expected = json.loads(reference_file.read_text())["results"]
    actual = _analyse(clips, "cuda")
    summary = {}
    for name, gpu in actual.items():
        cpu = expected[name]
        pairs, unmatched = [], 0
        for face in cpu["faces"]:
            same_frame = [g for g in gpu["faces"] if g["frame"] == face["frame"]]
            best = max(same_frame, key=lambda g: _iou(g["box"], face["box"]), default=None)
            if best is None or _iou(best["box"], face["box"]) < BOX_IOU:
                unmatched += 1
            else:
                pairs.append(abs(best["p_fake"] - face["p_fake"]))
        worst = max(pairs, default=0.0)
        ok = unmatched == 0 and len(gpu["faces"]) == len(cpu["faces"]) and worst <= SCORE_TOLERANCE
        summary[name] = {"ok": ok, "cpu_faces": len(cpu["faces"]), "gpu_faces": len(gpu["faces"]),
                         "unmatched": unmatched, "max_score_diff": worst, "cpu_tracks": cpu["tracks"],
                         "gpu_tracks": gpu["tracks"], "cpu_score": cpu["score"], "gpu_score": gpu["score"],
                         "gpu_seconds": gpu["seconds"]}
        report.add(f"correctness/{name}", summary[name],
                   f"correctness {name}: {'OK' if ok else 'MISMATCH'} faces cpu {len(cpu['faces'])} gpu "
                   f"{len(gpu['faces'])}, unmatched {unmatched}, max |dp| {worst:.2e}, tracks {cpu['tracks']}/"
                   f"{gpu['tracks']}, {gpu['seconds']:.2f} s on the GPU")


def classification(report: Report) -> None:
    import numpy as np
    import torch

    from ml.classify import Classifier
    from ml.contracts import DEFAULT_CHECKPOINT
    from ml.model import load_checkpoint

    device = torch.device("cuda")
    model = load_checkpoint(DEFAULT_CHECKPOINT, device)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(1024)]
    for batch in (64, 128, 256, 512):
        classifier = Classifier(model, device, backend="torch", batch_size=batch)
        classifier.score(crops[:batch])
        torch.cuda.synchronize()
        begin = time.perf_counter()
        classifier.score(crops)
        torch.cuda.synchronize()
        rate = len(crops) / (time.perf_counter() - begin)
        line = f"classify batch {batch}: {rate:.0f} faces/s through Classifier.score (CPU preprocessing included)"
        model_rates = {}
        inputs = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
        for dtype in (torch.float16, torch.bfloat16):
            with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
                for _ in range(3):
                    model.module(inputs)
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(20):
                    model.module(inputs)
                end.record()
                torch.cuda.synchronize()
            model_rates[str(dtype).removeprefix("torch.")] = 20 * batch / (start.elapsed_time(end) / 1000)
        line += ", model alone " + ", ".join(f"{k} {v:.0f}/s" for k, v in model_rates.items())
        report.add(f"classify/batch{batch}", {"score_faces_per_second": rate, "model_faces_per_second": model_rates},
                   line)


def detection(report: Report, clips: list[Path]) -> None:
    import torch

    from ml.contracts import MediaLimits
    from ml.faces import FaceDetector
    from ml.media import probe
    from ml.sampling import sample_media

    big = [c for c in clips if probe(c, MediaLimits()).height >= 1080]
    if not big:
        report.add("mtcnn", None, "mtcnn: no 1080p clip carried")
        return
    info = probe(big[0], MediaLimits())
    frames = [f.image for f in sample_media(big[0], info, 32)]
    for width in (640, 1920):
        detector = FaceDetector("cuda", detect_width=width)
        detector.detect(frames[:4])
        torch.cuda.synchronize()
        begin = time.perf_counter()
        found = detector.detect(frames)
        torch.cuda.synchronize()
        rate = len(frames) / (time.perf_counter() - begin)
        report.add(f"mtcnn/width{width}", {"frames_per_second": rate, "faces": sum(map(len, found))},
                   f"mtcnn on {len(frames)} 1080p frames detected at {width} px wide: {rate:.1f} frames/s, "
                   f"{sum(map(len, found))} faces")


def _worker(clips: list[str], seconds: float, start: multiprocessing.synchronize.Event, out) -> None:
    from ml.config import PipelineConfig
    from ml.pipeline import Pipeline

    pipeline = Pipeline(PipelineConfig(), device="cuda")
    pipeline.run(Path(clips[0]), artifacts_dir=Path("/tmp/gpu-bench-warm"))
    start.wait()
    done, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < seconds:
        pipeline.run(Path(clips[done % len(clips)]), artifacts_dir=Path(f"/tmp/gpu-bench-{done % 3}"))
        done += 1
    out.put((done, time.perf_counter() - begin))


def throughput(report: Report, clips: list[Path], seconds: float) -> None:
    from ml.contracts import MediaLimits
    from ml.media import probe

    big = [str(c) for c in clips if probe(c, MediaLimits()).height >= 1080] or [str(c) for c in clips]
    context = multiprocessing.get_context("spawn")
    for workers in (1, 4, 8):
        start, out = context.Event(), context.Queue()
        processes = [context.Process(target=_worker, args=(big, seconds, start, out)) for _ in range(workers)]
        for process in processes:
            process.start()
        time.sleep(1.0)
        ready = time.perf_counter()
        start.set()
        results = [out.get(timeout=seconds + 300) for _ in processes]
        for process in processes:
            process.join()
        videos = sum(done for done, _ in results)
        wall = max(elapsed for _, elapsed in results)
        report.add(f"videos/workers{workers}", {"videos": videos, "seconds": wall,
                                                "videos_per_minute": 60 * videos / wall,
                                                "start_to_first_seconds": time.perf_counter() - ready},
                   f"end to end, {workers} workers on one GPU: {videos} videos (10 s 1080p, 32 frames, Grad-CAM "
                   f"top 3) in {wall:.1f} s = {60 * videos / wall:.1f} videos/min")


def measure(clips_dir: Path, reference_file: Path, out: Path, budget: float) -> None:
    import torch

    began = time.perf_counter()
    report = Report(out)
    report.add("machine", {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                           "python": platform.python_version()},
               f"machine: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, Python "
               f"{platform.python_version()}")
    clips = sorted(clips_dir.glob("*.mp4"))
    steps = [("correctness", lambda: check_correctness(report, clips, reference_file)),
             ("classification", lambda: classification(report)),
             ("detection", lambda: detection(report, clips)),
             ("throughput", lambda: throughput(report, clips, seconds=30.0))]
    for name, step in steps:
        if time.perf_counter() - began > budget:
            report.add(f"skipped/{name}", True, f"{name}: skipped, the {budget:.0f} s budget is spent")
            continue
        begin = time.perf_counter()
        try:
            step()
        except Exception as exc:  # one failed step must not lose the figures of the others
            report.add(f"failed/{name}", repr(exc), f"{name}: FAILED {exc!r}")
        report.add(f"seconds/{name}", time.perf_counter() - begin, f"({name} took {time.perf_counter() - begin:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    ref = commands.add_parser("reference")
    ref.add_argument("--clips", type=Path, required=True)
    ref.add_argument("--out", type=Path, required=True)
    run = commands.add_parser("measure")
    run.add_argument("--clips", type=Path, required=True)
    run.add_argument("--reference", type=Path, required=True)
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--seconds-budget", type=float, default=420.0)
    args = parser.parse_args(argv)
    if args.command == "reference":
        reference(args.clips, args.out)
    else:
        measure(args.clips, args.reference, args.out, args.seconds_budget)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
