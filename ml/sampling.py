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

Long videos are sampled in bursts (`plan_targets`): when evenly spread samples would be more
than `BURST_MIN_SPACING_SECONDS` apart, they are grouped into short bursts of frames a few
frames apart at spread-out positions, so that detection between key frames and tracking always
compare faces a fraction of a second apart; the frame budget grows with the duration.

`iter_video` yields frames as they are decoded, so the pipeline can detect faces in one frame
while the next is decoded (`ml.pipeline`), and never holds more than it needs.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import queue
import threading
import time
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
BURST_MIN_SPACING_SECONDS = 2.0
"""Evenly spread samples further apart than this are grouped into bursts..."""
BURST_MIN_DURATION_SECONDS = 60.0
"""...in videos longer than this (a short clip sampled sparsely on request stays evenly spread)."""
BURST_STEP_FRAMES = 3
"""Frames between the samples of a burst: `B_SKIP_MIN_SPACING`, so B-frames can still be skipped."""


@dataclass(frozen=True)
class SamplingPlan:
    """How many frames to take from a video, and how: evenly, or `burst_length` at a time."""

    base_frames: int = 32
    """Frames for a video up to a minute long (or fewer, when it has fewer)."""
    frames_per_minute: float = 16.0
    """Beyond a minute the budget grows by this many frames per minute..."""
    max_frames: int = 128
    """...up to this many."""
    burst_length: int = 4

    def budget(self, duration_seconds: float) -> int:
        grown = math.ceil(self.frames_per_minute * duration_seconds / 60.0)
        return max(self.base_frames, min(self.max_frames, grown))


@dataclass(frozen=True)
class DecodedFrame:
    """A sampled frame: RGB uint8 HxWx3, upright (EXIF orientation or rotation metadata applied)."""

    index: int
    timestamp_seconds: float
    image: np.ndarray


def sample_media(path: Path, info: MediaInfo, count: int, *, skip_b_frames: bool = True,
                 threads: int = 0) -> list[DecodedFrame]:
    """The frames to analyse: the image itself, or up to `count` frames of a video, evenly spread.

    Raises `AnalysisError(corrupt_media)` when the media cannot be decoded.
    """
    if info.kind is MediaKind.image:
        return [decode_image(path)]
    return sample_video(path, count, skip_b_frames=skip_b_frames, threads=threads)


def decode_image(path: Path) -> DecodedFrame:
    try:
        image = np.asarray(open_image_upright(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise AnalysisError(ErrorCode.corrupt_media, f"The image could not be decoded: {exc}") from exc
    return DecodedFrame(0, 0.0, image)


def target_times(duration: float, count: int) -> list[float]:
    """Centres of `count` equal segments of [0, duration): evenly spread, never the very ends."""
    return [(i + 0.5) * duration / count for i in range(count)]


def plan_targets(duration: float, frame_step: float, plan: SamplingPlan) -> list[float]:
    """`plan.budget(duration)` target times for a video whose frames are `frame_step` seconds apart.

    Evenly spread for videos up to `BURST_MIN_DURATION_SECONDS`, or while that keeps samples
    within `BURST_MIN_SPACING_SECONDS`; otherwise bursts of about `plan.burst_length` targets
    `BURST_STEP_FRAMES` frames apart, centred on the centres of equal segments.
    """
    count = plan.budget(duration)
    spread = duration <= BURST_MIN_DURATION_SECONDS or duration / count <= BURST_MIN_SPACING_SECONDS
    if spread or plan.burst_length <= 1:
        return target_times(duration, count)
    bursts = max(1, count // plan.burst_length)
    step = BURST_STEP_FRAMES * frame_step
    times = []
    for i, centre in enumerate(target_times(duration, bursts)):
        length = count // bursts + (1 if i < count % bursts else 0)
        span = (length - 1) * step
        start = min(max(centre - span / 2.0, 0.0), max(0.0, duration - span - frame_step))
        times.extend(start + k * step for k in range(length))
    return times


@dataclass(frozen=True)
class VideoSamples:
    """Where to sample a video, planned from its packet index before anything is decoded."""

    path: Path
    index: PacketIndex
    times: list[float]
    skip_b_frames: bool


def plan_video(path: Path, count: int | SamplingPlan, *, skip_b_frames: bool = True) -> VideoSamples:
    """Target times (every frame when the video has no more than the budget) and the B-frame choice.

    `count` is a fixed number of evenly spread frames, or a `SamplingPlan` whose budget grows
    with the duration. B-frames are skipped when no two targets are closer than
    `B_SKIP_MIN_SPACING` frames. Raises `AnalysisError(corrupt_media)`.
    """
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            index = read_packet_index(container, container.streams.video[0])
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise AnalysisError(ErrorCode.corrupt_media, f"The video could not be decoded: {exc}") from exc
    if index is None:
        raise AnalysisError(ErrorCode.corrupt_media, "The video has no timed frames.")
    duration = index.duration_seconds()
    frame_step = duration / len(index.pts) if index.pts else 0.0
    budget = count if isinstance(count, int) else count.budget(duration)
    if len(index.pts) <= budget:
        return VideoSamples(path, index, [index.seconds(p) for p in index.pts], False)
    times = target_times(duration, count) if isinstance(count, int) else plan_targets(duration, frame_step, count)
    spacing = min((b - a for a, b in itertools.pairwise(times)), default=duration) / max(frame_step, 1e-9)
    return VideoSamples(path, index, times, skip_b_frames and spacing >= B_SKIP_MIN_SPACING - 1e-6)


def sample_video(path: Path, count: int | SamplingPlan, *, skip_b_frames: bool = True, threads: int = 0,
                 thread_type: str = DECODE_THREAD_TYPE) -> list[DecodedFrame]:
    """Up to `count` upright frames spread over the video, in time order.

    Fewer when the clip has fewer frames than `count` (then every frame is taken). Raises
    `AnalysisError(corrupt_media)` when nothing can be decoded.
    """
    samples = plan_video(path, count, skip_b_frames=skip_b_frames)
    frames = list(iter_video(samples, threads=threads, thread_type=thread_type))
    if samples.skip_b_frames and len(frames) < MIN_FILLED_SHARE * len(samples.times):
        logger.info("Only %d of %d targets filled without B-frames; decoding them too.",
                    len(frames), len(samples.times))
        frames = list(iter_video(without_b_frame_skip(samples), threads=threads, thread_type=thread_type))
    if not frames:
        raise AnalysisError(ErrorCode.corrupt_media, "No frame of the video could be decoded.")
    return frames


def without_b_frame_skip(samples: VideoSamples) -> VideoSamples:
    return VideoSamples(samples.path, samples.index, samples.times, False)


def iter_video(samples: VideoSamples, *, threads: int = 0,
               thread_type: str = DECODE_THREAD_TYPE) -> Iterator[DecodedFrame]:
    """The planned frames, upright, in time order, each as soon as it is decoded.

    Raises `AnalysisError(corrupt_media)` when decoding fails (frames yielded before stay valid).
    """
    try:
        yield from _decode_at(samples.path, samples.index, samples.times, skip_b_frames=samples.skip_b_frames,
                              threads=threads, thread_type=thread_type)
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise AnalysisError(ErrorCode.corrupt_media, f"The video could not be decoded: {exc}") from exc


def _decode_at(path: Path, index: PacketIndex, times: list[float], *, skip_b_frames: bool,
               threads: int, thread_type: str) -> Iterator[DecodedFrame]:
    """Decode the frame nearest to each target time, seeking where that decodes less."""
    last_stamp: int | None = None
    emitted = 0
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
            if best[0] != last_stamp:
                last_stamp = best[0]
                yield DecodedFrame(emitted, index.seconds(best[0]), _upright_rgb(best[1]))
                emitted += 1
        logger.debug("Sampled %d frames with %d seeks (B-frames skipped: %s).", emitted, seeks, skip_b_frames)


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


class DecodeAhead:
    """Decode in a background thread, at most `depth` frames ahead of the consumer.

    PyAV releases the GIL while FFmpeg decodes and converts, so on a 2-core machine decoding
    runs on one core while MTCNN (one torch thread) runs on the other. The queue bound keeps
    memory at `depth` full-size frames however long the video. `busy_seconds` is the time the
    thread spent decoding (the "sampling" stage, overlapped with the stages after it).
    """

    _DONE = object()

    def __init__(self, frames: Iterator[DecodedFrame], depth: int = 4) -> None:
        self._frames = frames
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.busy_seconds = 0.0
        self._thread = threading.Thread(target=self._produce, name="deepscreen-decode", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                begin = time.perf_counter()
                frame = next(self._frames, None)
                self.busy_seconds += time.perf_counter() - begin
                if frame is None:
                    break
                self._put(frame)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
        finally:
            self._put(self._DONE)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[DecodedFrame]:
        try:
            while True:
                item = self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, DecodedFrame)
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the thread (also when the consumer stops early) and wait for it."""
        self._stop.set()
        self._thread.join()
        close = getattr(self._frames, "close", None)
        if callable(close):
            close()
