"""Recognise and probe uploaded media without trusting names or client content types.

Torch-free: the API calls `sniff` and `probe` before a job is queued so that bad input is
refused with a 4xx instead of failing later in a worker; the pipeline calls `probe` again.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from ml.contracts import AnalysisError, ErrorCode, MediaInfo, MediaKind, MediaLimits

SNIFF_BYTES = 64
"""How many leading bytes `sniff` needs."""


@dataclass(frozen=True)
class MediaType:
    kind: MediaKind
    format: str
    label: str


JPEG = MediaType(MediaKind.image, "jpeg", "JPEG image")
PNG = MediaType(MediaKind.image, "png", "PNG image")
WEBP = MediaType(MediaKind.image, "webp", "WebP image")
MP4 = MediaType(MediaKind.video, "mp4", "MP4/MOV video")
MATROSKA = MediaType(MediaKind.video, "matroska", "WebM/MKV video")
AVI = MediaType(MediaKind.video, "avi", "AVI video")

ACCEPTED_TYPES: tuple[MediaType, ...] = (JPEG, PNG, WEBP, MP4, MATROSKA, AVI)

_ISOBMFF_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
"""Major brands of HEIF/AVIF image files (ISO/IEC 23008-12), which share MP4's container."""
_MP4_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}


def sniff(head: bytes) -> MediaType | None:
    """The media type from the file's first bytes (magic numbers), or None if not accepted."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AVI
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MATROSKA
    if head[4:8] == b"ftyp" and head[8:12] in _ISOBMFF_IMAGE_BRANDS:
        return None  # AVIF/HEIF: ISO-BMFF like MP4, but a still image; FFmpeg would read it as a video
    if len(head) >= 12 and head[4:8] in _MP4_BOX_TYPES:
        return MP4
    return None


def probe(path: Path, limits: MediaLimits) -> MediaInfo:
    """Read the media's dimensions and duration and check them against `limits`.

    Raises `AnalysisError` with `unsupported_media`, `empty_file`, `corrupt_media`, `too_long`
    or `dimensions_too_large`. Decodes at most one video frame and one image.
    """
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        raise AnalysisError(ErrorCode.empty_file, "The file is empty.")
    media_type = sniff(head)
    if media_type is None:
        raise AnalysisError(
            ErrorCode.unsupported_media,
            "The file is not an accepted image or video type.",
            {"accepted": [t.label for t in ACCEPTED_TYPES]},
        )
    if media_type.kind is MediaKind.image:
        return _probe_image(path, media_type, limits)
    return _probe_video(path, media_type, limits)


def _probe_image(path: Path, media_type: MediaType, limits: MediaLimits) -> MediaInfo:
    try:
        with Image.open(path) as image:
            width, height = image.size  # read from the header; nothing decoded yet
            _check_image_dimensions(width, height, limits)
            orientation = image.getexif().get(0x0112, 1)
            image.load()  # decodes fully: truncated or corrupt data fails here
    except AnalysisError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses huge headers in Image.open itself
        raise AnalysisError(
            ErrorCode.dimensions_too_large,
            f"The image is too large to decode safely; the limit is {limits.max_image_pixels} pixels.",
            {"limit": "max_image_pixels", "max_image_pixels": limits.max_image_pixels,
             "max_image_side": limits.max_image_side},
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise AnalysisError(ErrorCode.corrupt_media, f"The image could not be decoded: {exc}") from exc
    if orientation in (5, 6, 7, 8):  # EXIF rotations by 90 or 270 degrees swap the sides
        width, height = height, width
    return MediaInfo(kind=MediaKind.image, format=media_type.format, width=width, height=height)


def _check_image_dimensions(width: int, height: int, limits: MediaLimits) -> None:
    if width <= 0 or height <= 0:
        raise AnalysisError(ErrorCode.corrupt_media, "The image has no pixels.")
    if max(width, height) > limits.max_image_side or width * height > limits.max_image_pixels:
        raise AnalysisError(
            ErrorCode.dimensions_too_large,
            f"The image is {width}x{height}; the limit is {limits.max_image_pixels} pixels "
            f"and {limits.max_image_side} pixels a side.",
            {"width": width, "height": height, "limit": "max_image_pixels",
             "max_image_pixels": limits.max_image_pixels, "max_image_side": limits.max_image_side},
        )


def _probe_video(path: Path, media_type: MediaType, limits: MediaLimits) -> MediaInfo:
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise AnalysisError(ErrorCode.corrupt_media, "The file has no video stream.")
            stream = container.streams.video[0]
            if stream.codec_context is None:  # FFmpeg has no decoder for this codec (e.g. an unknown fourcc)
                raise AnalysisError(ErrorCode.corrupt_media, "The video's codec is unknown or not supported.")
            width, height = stream.codec_context.width, stream.codec_context.height
            if width <= 0 or height <= 0:
                raise AnalysisError(ErrorCode.corrupt_media, "The video has no frame size.")
            if width * height > limits.max_frame_pixels:
                raise AnalysisError(
                    ErrorCode.dimensions_too_large,
                    f"Video frames are {width}x{height}; the limit is {limits.max_frame_pixels} pixels.",
                    {"width": width, "height": height, "limit": "max_frame_pixels",
                     "max_frame_pixels": limits.max_frame_pixels},
                )
            duration = video_duration_seconds(container, stream)
            if duration is None:  # no header duration, or a sentinel such as 2^32-1 ticks
                duration = packet_span_seconds(path, stream.index)
            if duration is not None and duration > limits.max_video_seconds:
                raise AnalysisError(
                    ErrorCode.too_long,
                    f"The video lasts {duration:.1f} s; the limit is {limits.max_video_seconds:.0f} s.",
                    {"duration_seconds": duration, "limit": "max_video_seconds",
                     "max_video_seconds": limits.max_video_seconds},
                )
            fps = float(stream.average_rate) if stream.average_rate else None
            first = next(container.decode(stream), None)
            if first is None:
                raise AnalysisError(ErrorCode.corrupt_media, "The video has no decodable frame.")
            rotation = int(getattr(first, "rotation", 0) or 0) % 360
            frame_count = stream.frames or (round(duration * fps) if duration and fps else None)
            codec = stream.codec_context.name
    except AnalysisError:
        raise
    except (av.FFmpegError, OSError, ValueError, StopIteration) as exc:
        raise AnalysisError(ErrorCode.corrupt_media, f"The video could not be read: {exc}") from exc
    if rotation in (90, 270):
        width, height = height, width
    return MediaInfo(
        kind=MediaKind.video, format=media_type.format, width=width, height=height,
        duration_seconds=duration, fps=fps, frame_count=frame_count,
        rotation_degrees=rotation, codec=codec,
    )


def video_duration_seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """The stream's duration, falling back to the container's; None when neither is known."""
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0 and math.isfinite(seconds):
            return seconds
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


@dataclass(frozen=True)
class PacketIndex:
    """Presentation times of every frame (in stream time-base units) and which are keyframes."""

    pts: list[int]
    keyframes: list[int]
    time_base: Fraction

    @property
    def start(self) -> int:
        return self.pts[0]

    def seconds(self, pts: int) -> float:
        return float((pts - self.start) * self.time_base)

    def duration_seconds(self) -> float:
        """From the first frame to the end of the last (one median frame interval after it)."""
        if len(self.pts) < 2:
            return 0.0
        step = float(np.median(np.diff(self.pts))) * float(self.time_base)
        return self.seconds(self.pts[-1]) + step

    def nearest(self, seconds: float) -> int:
        """Index of the frame nearest to `seconds` (the earlier one on a tie)."""
        target = self.start + seconds / self.time_base
        i = bisect.bisect_left(self.pts, target)
        if i == 0:
            return 0
        if i == len(self.pts):
            return len(self.pts) - 1
        return i - 1 if target - self.pts[i - 1] <= self.pts[i] - target else i

    def keyframe_before(self, index: int) -> int:
        """Index of the last keyframe at or before frame `index` (0 if none is marked)."""
        k = bisect.bisect_right(self.keyframes, self.pts[index]) - 1
        return bisect.bisect_left(self.pts, self.keyframes[k]) if k >= 0 else 0


def read_packet_index(container: av.container.InputContainer, stream: av.VideoStream) -> PacketIndex | None:
    """Every timed packet of `stream`: one demux pass, nothing decoded; None when there is none."""
    pts: list[int] = []
    keyframes: list[int] = []
    for packet in container.demux(stream):
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None or packet.size == 0:
            continue
        pts.append(stamp)
        if packet.is_keyframe:
            keyframes.append(stamp)
    if not pts or stream.time_base is None:
        return None
    pts.sort()
    keyframes.sort()
    return PacketIndex(pts, keyframes, Fraction(stream.time_base))


def packet_span_seconds(path: Path, stream_index: int) -> float | None:
    """The video's length from its packet index, for files whose header states no duration.

    So `max_video_seconds` holds for them too: a long video with a blanked duration would
    otherwise be accepted and run until the time limit.
    """
    with av.open(str(path), metadata_errors="ignore") as container:
        index = read_packet_index(container, container.streams[stream_index])
    seconds = index.duration_seconds() if index is not None else 0.0
    return seconds if seconds > 0 and math.isfinite(seconds) else None


def open_image_upright(path: Path) -> Image.Image:
    """An RGB image with its EXIF orientation applied, as people see it."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")
