"""Decode images and sample video frames, upright, with their timestamps (PyAV).

A video is sampled at `count` targets spread evenly over its duration (the centres of `count`
equal segments); each target takes the decoded frame nearest to it, and every sampled frame
carries its real presentation time, so variable frame rates need no special case.

Decoding is the expensive part on a CPU, so the sampler plans it from the packet index (one
demux pass, no decoding): for each target it either keeps decoding forward or seeks to the
keyframe before the target, whichever decodes fewer frames. Short keyframe intervals favour
seeking, x264's default (250 frames) favours decoding straight through. When targets are at
least `B_SKIP_MIN_SPACING` frames apart, B-frames are not decoded at all (FFmpeg's
`skip_frame=BIDIR`): they are most of the frames in a typical H.264 stream, nothing references
them, and the nearest I/P frame is at most a couple of frames from each target.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ml.contracts import AnalysisError, ErrorCode, MediaInfo, MediaKind
from ml.media import PacketIndex, open_image_upright, read_packet_index

logger = logging.getLogger(__name__)

B_SKIP_MIN_SPACING = 3.0
"""Skip B-frames only when consecutive targets are at least this many frames apart."""
SEEK_COST_FRAMES = 4
"""A seek (demuxer seek, decoder flush, refilling frame threads) costs about this many decoded frames."""
DECODE_THREAD_TYPE = "AUTO"
"""FFmpeg decoder threading (see bench/decode_bench.py and docs/performance.md for the measurements)."""
MIN_FILLED_SHARE = 0.75
"""If skipping B-frames leaves fewer distinct frames than this share of targets, decode them all."""


@dataclass(frozen=True)
class DecodedFrame:
    """A sampled frame: RGB uint8 HxWx3, upright (EXIF orientation or rotation metadata applied)."""

    index: int
    timestamp_seconds: float
    image: np.ndarray


def sample_media(path: Path, info: MediaInfo, count: int, *, skip_b_frames: bool = True,
                 threads: int = 0) -> list[DecodedFrame]:
    """The frames to analyse: the image itself, or up to `count` frames of a video.

    Raises `AnalysisError(corrupt_media)` when the media cannot be decoded.
    """
    if info.kind is MediaKind.image:
        try:
            image = np.asarray(open_image_upright(path))
        except (OSError, SyntaxError, ValueError) as exc:
            raise AnalysisError(ErrorCode.corrupt_media, f"The image could not be decoded: {exc}") from exc
        return [DecodedFrame(0, 0.0, image)]
    return sample_video(path, count, skip_b_frames=skip_b_frames, threads=threads)


def target_times(duration: float, count: int) -> list[float]:
    """Centres of `count` equal segments of [0, duration): evenly spread, never the very ends."""
    return [(i + 0.5) * duration / count for i in range(count)]


def sample_video(path: Path, count: int, *, skip_b_frames: bool = True, threads: int = 0,
                 thread_type: str = DECODE_THREAD_TYPE) -> list[DecodedFrame]:
    """Up to `count` upright frames spread evenly over the video, in time order.

    Fewer when the clip has fewer frames than `count` (then every frame is taken). Raises
    `AnalysisError(corrupt_media)` when nothing can be decoded.
    """
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            index = read_packet_index(container, container.streams.video[0])
        if index is None:
            raise AnalysisError(ErrorCode.corrupt_media, "The video has no timed frames.")
        if len(index.pts) <= count:
            times = [index.seconds(p) for p in index.pts]
            skip = False
        else:
            times = target_times(index.duration_seconds(), count)
            skip = skip_b_frames and len(index.pts) / count >= B_SKIP_MIN_SPACING
        frames = _decode_at(path, index, times, skip_b_frames=skip, threads=threads, thread_type=thread_type)
        if skip and len(frames) < MIN_FILLED_SHARE * len(times):
            logger.info("Only %d of %d targets filled without B-frames; decoding them too.", len(frames), len(times))
            frames = _decode_at(path, index, times, skip_b_frames=False, threads=threads, thread_type=thread_type)
    except AnalysisError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise AnalysisError(ErrorCode.corrupt_media, f"The video could not be decoded: {exc}") from exc
    if not frames:
        raise AnalysisError(ErrorCode.corrupt_media, "No frame of the video could be decoded.")
    return frames


def _decode_at(path: Path, index: PacketIndex, times: list[float], *, skip_b_frames: bool,
               threads: int, thread_type: str) -> list[DecodedFrame]:
    """Decode the frame nearest to each target time, seeking where that decodes less."""
    chosen: list[tuple[int, av.VideoFrame]] = []
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        if threads:
            context.thread_count = threads
        context.thread_type = thread_type
        if skip_b_frames:
            context.skip_frame = "BIDIR"
        decoder: Iterator[av.VideoFrame] | None = None
        pending: tuple[int, av.VideoFrame] | None = None  # first decoded frame not yet passed
        position = -1  # index (in `index.pts`) of the last frame the decoder handed out
        seeks = 0
        for target in times:
            goal = index.nearest(target)
            keyframe = index.keyframe_before(goal)
            if keyframe > position + 1 and (goal - keyframe) + SEEK_COST_FRAMES < goal - position:
                container.seek(index.pts[keyframe], stream=stream, backward=True, any_frame=False)
                decoder, pending = None, None
                seeks += 1
            if decoder is None:
                decoder = container.decode(stream)
            target_pts = index.start + target / index.time_base
            before: tuple[int, av.VideoFrame] | None = None
            while True:
                if pending is None:
                    frame = next(decoder, None)
                    if frame is None:
                        break
                    stamp = frame.pts if frame.pts is not None else frame.dts
                    if stamp is None:
                        continue
                    pending = (stamp, frame)
                    position = max(position, bisect.bisect_left(index.pts, stamp))
                if pending[0] < target_pts:
                    before, pending = pending, None
                    continue
                break
            candidates = [c for c in (before, pending) if c is not None]
            if not candidates:
                continue
            best = min(candidates, key=lambda c: (abs(c[0] - target_pts), c[0]))
            if not chosen or chosen[-1][0] != best[0]:
                chosen.append(best)
        logger.debug("Sampled %d frames with %d seeks (B-frames skipped: %s).", len(chosen), seeks, skip_b_frames)
        return [DecodedFrame(i, index.seconds(stamp), _upright_rgb(frame)) for i, (stamp, frame) in enumerate(chosen)]


def _upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """RGB uint8 pixels as a viewer shows them: the display matrix's rotation applied."""
    image: np.ndarray = frame.to_ndarray(format="rgb24")
    rotation = int(getattr(frame, "rotation", 0) or 0)
    quarter_turns = round(rotation / 90) % 4  # counter-clockwise, as FFmpeg's display matrix reports it
    if rotation and not math.isclose(rotation % 90, 0):
        logger.warning("Ignoring a %d degree rotation that is not a multiple of 90.", rotation)
        quarter_turns = 0
    if quarter_turns:
        image = np.ascontiguousarray(np.rot90(image, k=quarter_turns))
    return image
