"""Time and peak memory of `Pipeline.run` on generated long videos (1, 5 and 10 minutes).

    python -m bench.long_video_bench [--minutes 1 5 10] [--size 1280x720] [--device cpu] [--json OUT]

Each clip is a plain stage with two people (LFW photos from the shared data) appearing only in
the last minute, encoded at 5 fps with x264 ultrafast (a few seconds to make). Every duration is
measured in a fresh process: the pipeline is built and warmed on a 10 s clip first, the peak RSS
is reset (`/proc/self/clear_refs`), then the long clip is analysed with Grad-CAM artifacts.
"Frames held naively" is what keeping every sampled frame at full resolution until the
explanations would take, for comparison. Speed and memory are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def measure(clip: Path, warm: Path, device: str, out: Path) -> dict[str, object]:
    """In this process: build, warm up, reset the peak, analyse `clip`."""
    from ml.config import PipelineConfig
    from ml.pipeline import Pipeline

    pipeline = Pipeline(PipelineConfig(), device=device)  # the ONNX export shipped beside the checkpoint
    pipeline.run(warm, artifacts_dir=out / "warm")
    before = _peak_rss_mib()
    _reset_peak()
    begin = time.perf_counter()
    result = pipeline.run(clip, artifacts_dir=out / "artifacts")
    seconds = time.perf_counter() - begin
    width, height = result.media.width, result.media.height
    return {
        "clip": clip.name, "duration_seconds": result.media.duration_seconds, "size": f"{width}x{height}",
        "seconds": round(seconds, 2), "peak_rss_mib": round(_peak_rss_mib(), 1),
        "rss_before_mib": round(before, 1), "frames": len(result.frames), "faces": len(result.faces),
        "tracks": len(result.tracks), "first_face_seconds": min((f.timestamp_seconds for f in result.faces),
                                                                default=None),
        "frames_held_naively_mib": round(len(result.frames) * width * height * 3 / 2**20, 1),
        "stage_seconds": result.stage_seconds, "backend": pipeline.backend,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 10])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", nargs=3, metavar=("CLIP", "WARM", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        clip, warm, out = (Path(p) for p in args.child)
        sys.stdout.write(json.dumps(measure(clip, warm, args.device, out)) + "\n")
        return 0

    import numpy as np
    from PIL import Image

    from tests.ml.factories import write_long_clip

    data = Path(os.environ.get("DEEPSCREEN_DATA_DIR", REPO.parent / "shared" / "data"))
    people = [np.asarray(Image.open(data / "lfw-faceswap" / "real" / name).convert("RGB"))
              for name in ("real_1003.jpg", "real_1013.jpg")]
    width, height = (int(v) for v in args.size.split("x"))
    scratch = Path(tempfile.mkdtemp(prefix="deepscreen-long-"))
    face_px = height // 2
    warm = write_long_clip(scratch / "warm.mp4", 10, people, face_from=0, size=(width, height), face_px=face_px)
    rows = []
    print(f"{'minutes':>7} {'size':>10} {'seconds':>8} {'peak RSS MiB':>12} {'RSS before':>10} {'frames':>6} "
          f"{'faces':>5} {'tracks':>6} {'first face s':>12} {'naive frames MiB':>16}")
    for minutes in args.minutes:
        seconds = minutes * 60
        begin = time.perf_counter()
        clip = write_long_clip(scratch / f"long-{minutes:g}min.mp4", seconds, people, face_from=seconds - 60,
                               size=(width, height), face_px=face_px)
        encode = time.perf_counter() - begin
        done = subprocess.run([sys.executable, "-m", "bench.long_video_bench", "--device", args.device,
                               "--child", str(clip), str(warm), str(scratch / f"out-{minutes:g}")],
                              cwd=REPO, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["encode_seconds"] = round(encode, 1)
        rows.append(row)
        print(f"{minutes:7g} {row['size']:>10} {row['seconds']:8.2f} {row['peak_rss_mib']:12.0f} "
              f"{row['rss_before_mib']:10.0f} {row['frames']:6d} {row['faces']:5d} {row['tracks']:6d} "
              f"{row['first_face_seconds'] or 0:12.1f} {row['frames_held_naively_mib']:16.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
