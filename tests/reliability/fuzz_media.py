"""Coverage-guided fuzzing of `ml.media.sniff` and `ml.media.probe` with atheris (libFuzzer).

Run as a program (the test does, bounded in time): `python -m tests.reliability.fuzz_media SEED_DIR
-max_total_time=30`. Any exception other than `AnalysisError` from `probe`, or any exception from
`sniff`, is a crash: libFuzzer stops, prints the input and exits non-zero. The seed folder holds
small valid files of every accepted type, written by `write_seeds`, so mutations start from
media the decoders understand.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ml.media"]):
    from ml.media import probe, sniff

from ml.contracts import AnalysisError, MediaLimits

LIMITS = MediaLimits(max_video_seconds=30.0, max_frame_pixels=1_000_000, max_image_pixels=4_000_000,
                     max_image_side=4096)
"""Small limits keep each input cheap; the code paths are the same as with the defaults."""


def write_seeds(folder: Path) -> None:
    """One small valid file per accepted type."""
    from PIL import Image

    from tests.backend.factories import jpeg_bytes, mp4_bytes, png_bytes

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seed.jpg").write_bytes(jpeg_bytes(24, 16))
    (folder / "seed.png").write_bytes(png_bytes(24, 16))
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (10, 200, 30)).save(buffer, format="WEBP")
    (folder / "seed.webp").write_bytes(buffer.getvalue())
    (folder / "seed.mp4").write_bytes(mp4_bytes(seconds=0.3, fps=10, width=32, height=16))
    _write_video(folder / "seed.mkv", "matroska", "libx264")
    _write_video(folder / "seed.avi", "avi", "mpeg4")


def _write_video(path: Path, container_format: str, codec: str) -> None:
    from fractions import Fraction

    import av
    import numpy as np

    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), i * 40, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


_SCRATCH = Path(tempfile.gettempdir()) / f"deepscreen-fuzz-input-{os.getpid()}"
"""Where each input is written for `probe`; next to the seed folder when one is given."""


def test_one_input(data: bytes) -> None:
    sniff(data[:64])
    _SCRATCH.write_bytes(data)
    try:
        probe(_SCRATCH, LIMITS)
    except AnalysisError:
        pass  # a clean refusal is the expected outcome for most inputs


def main(argv: list[str]) -> None:
    global _SCRATCH
    seeds = next((Path(arg) for arg in argv[1:] if not arg.startswith("-")), None)
    if seeds is not None:
        _SCRATCH = seeds.parent / "fuzz-input"
        if not any(seeds.glob("seed.*")):
            write_seeds(seeds)
    os.environ.setdefault("AV_LOG_FORCE_NOCOLOR", "1")
    import av.logging

    av.logging.set_level(av.logging.PANIC)  # FFmpeg's complaints about broken inputs are expected
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
