from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.contracts import AnalysisError, MediaLimits
from ml.media import probe
from ml.sampling import sample_media, sample_video, target_times
from tests.ml.factories import index_pattern, read_index, write_video


def test_target_times_are_segment_centres() -> None:
    assert target_times(6.0, 6) == pytest.approx([0.5, 1.5, 2.5, 3.5, 4.5, 5.5])


def test_samples_evenly_with_exact_timestamps(tmp_path: Path) -> None:
    path = write_video(tmp_path / "sixty.mp4", [index_pattern(i) for i in range(60)], fps=10)
    frames = sample_video(path, 6)
    assert [f.timestamp_seconds for f in frames] == pytest.approx([0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    assert [read_index(f.image) for f in frames] == [5, 15, 25, 35, 45, 55]
    assert [f.index for f in frames] == list(range(6))


def test_short_clip_gives_every_frame(tmp_path: Path) -> None:
    path = write_video(tmp_path / "five.mp4", [index_pattern(i) for i in range(5)], fps=10)
    frames = sample_video(path, 32)
    assert [f.timestamp_seconds for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert [read_index(f.image) for f in frames] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("gop", [5, 250])  # seeking to keyframes, and decoding straight through
def test_b_frames_skipped_and_seeking_keep_frames_and_times_consistent(tmp_path: Path, gop: int) -> None:
    path = write_video(tmp_path / "b.mp4", [index_pattern(i) for i in range(100)], fps=10, b_frames=True, gop=gop)
    for skip in (True, False):
        frames = sample_video(path, 10, skip_b_frames=skip)
        assert len(frames) == 10
        for frame, target in zip(frames, target_times(10.0, 10), strict=True):
            # the timestamp is the decoded frame's own, and lies near its target
            assert read_index(frame.image) == round(frame.timestamp_seconds * 10)
            assert abs(frame.timestamp_seconds - target) <= 0.25
        if not skip:
            assert [f.timestamp_seconds for f in frames] == pytest.approx([i + 0.5 for i in range(10)])


def test_variable_frame_rate_uses_real_presentation_times(tmp_path: Path) -> None:
    # 10 fps for a second, a 2 s freeze, then 10 fps again: 20 frames over 4 s
    times_ms = [i * 100 for i in range(10)] + [3000 + i * 100 for i in range(10)]
    path = write_video(tmp_path / "vfr.mp4", [index_pattern(i) for i in range(20)], times_ms=times_ms)
    frames = sample_video(path, 4)
    # targets 0.5, 1.5, 2.5, 3.5 s: nearest frames are at 0.5, 0.9 (before the gap), 3.0, 3.5
    assert [f.timestamp_seconds for f in frames] == pytest.approx([0.5, 0.9, 3.0, 3.5])
    assert [read_index(f.image) for f in frames] == [5, 9, 10, 15]


def test_rotated_video_is_decoded_upright(tmp_path: Path) -> None:
    upright = np.full((96, 64, 3), 40, dtype=np.uint8)  # portrait, marker in the top-left corner
    upright[:24, :16] = 230
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # what a phone held upright stores
    # the display matrix phones write for "turn 90 degrees clockwise to show" (ISO BMFF tkhd)
    phone_matrix = [0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30]
    path = write_video(tmp_path / "rotated.mp4", [stored] * 10, display_matrix=phone_matrix)
    info = probe(path, MediaLimits())
    assert (info.width, info.height) == (64, 96)
    frames = sample_media(path, info, 2)
    assert frames[0].image.shape == (96, 64, 3)
    assert frames[0].image[:24, :16].mean() > 200
    assert frames[0].image[-24:, -16:].mean() < 80


def test_image_exif_orientation_is_applied(tmp_path: Path, face_photo: np.ndarray) -> None:
    path = tmp_path / "rotated.jpg"
    stored = np.ascontiguousarray(np.rot90(face_photo[:, :200], k=1))  # 200 wide, 250 tall turned to 250x200
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    info = probe(path, MediaLimits())
    (frame,) = sample_media(path, info, 32)
    assert frame.timestamp_seconds == 0.0
    assert frame.image.shape == (250, 200, 3)
    assert np.abs(frame.image.astype(int) - face_photo[:, :200]).mean() < 6


def test_corrupt_video_raises_analysis_error(tmp_path: Path) -> None:
    path = write_video(tmp_path / "ok.mp4", [index_pattern(i) for i in range(30)])
    data = path.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(AnalysisError) as caught:
        sample_video(broken, 8)
    assert caught.value.code == "corrupt_media"


def test_a_blanked_header_duration_is_measured_from_packets(tmp_path: Path) -> None:
    from tests.reliability.corpus import mp4_absurd_duration

    path = tmp_path / "no-duration.mp4"
    path.write_bytes(mp4_absurd_duration())  # mvhd/mdhd durations 2^32-1: FFmpeg reports none
    assert probe(path, MediaLimits()).duration_seconds == pytest.approx(1.0)
    with pytest.raises(AnalysisError) as caught:
        probe(path, MediaLimits(max_video_seconds=0.5))
    assert caught.value.code == "too_long"
