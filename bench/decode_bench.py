"""How to sample frames fastest: decoder threading, B-frame skipping, seeking vs decoding through.

    python -m bench.decode_bench [--frames 32] [--repeat 3] [--videos DIR]

For each clip, times `ml.sampling.sample_video` under each FFmpeg threading mode with and without
B-frame skipping, next to a plain "decode every frame" reference, and prints the keyframe spacing
that decides between seeking and decoding straight through. Median of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.pipeline_bench import default_videos, machine  # noqa: E402
from ml.sampling import sample_video  # noqa: E402


def keyframe_spacing(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        flags = [p.is_keyframe for p in container.demux(stream) if p.size]
    return len(flags), len(flags) / max(sum(flags), 1)


def decode_all(path: Path) -> None:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray(format="rgb24")


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm the page cache and the codec
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}\n")
    for path in sorted((args.videos or default_videos()).rglob("*.mp4")):
        frames, spacing = keyframe_spacing(path)
        print(f"{path.name}: {frames} frames, a keyframe every {spacing:.0f} frames")
        for thread_type in ("SLICE", "FRAME", "AUTO"):
            for skip in (False, True):
                seconds = median_seconds(
                    lambda p=path, t=thread_type, s=skip: sample_video(p, args.frames, skip_b_frames=s, thread_type=t),
                    args.repeat,
                )
                print(f"  sample {args.frames} frames  thread_type={thread_type:5}  skip_b_frames={skip!s:5}  "
                      f"{seconds:6.3f} s")
        reference = median_seconds(lambda p=path: decode_all(p), 1)
        print(f"  decode and convert every frame (reference)                 {reference:6.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
