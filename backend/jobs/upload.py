"""Receive a multipart upload by streaming it to a temporary file.

FastAPI's `UploadFile` parses the whole body (into memory, then a spool file) before a route
runs, so it can enforce no size limit while streaming. This parser writes the `file` part to
`STORAGE_DIR/tmp` chunk by chunk, hashes it on the way, refuses it with 413 the moment it
crosses `MAX_UPLOAD_BYTES`, refuses unknown types (415) as soon as the first bytes are in, and
deletes the temporary file on every failure, client disconnects included.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from anyio import to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from core.errors import BadRequest, DomainError, PayloadTooLarge, UnprocessableMedia, UnsupportedMedia
from core.jobs.storage import Storage
from core.settings import Settings
from ml.contracts import ErrorCode, MediaInfo
from ml.media import ACCEPTED_TYPES, SNIFF_BYTES, MediaType, sniff

logger = logging.getLogger(__name__)

FILE_FIELD = "file"
_MULTIPART_OVERHEAD_BYTES = 64 * 1024
"""Room for boundaries, part headers and small form fields on top of the file's own size."""
_MAX_PART_HEADER_BYTES = 32 * 1024
"""One part header line (python-multipart's default is 4 kB): a 5000-character filename was refused
with 400; it is display metadata, shortened to MAX_FILENAME_LENGTH by `sanitize_filename`."""


@dataclass(frozen=True)
class ReceivedUpload:
    path: Path
    size: int
    sha256: str
    media_type: MediaType
    filename: str | None
    """As the client sent it: untrusted, for display only after sanitising."""


def ensure_min_side(info: MediaInfo, min_side: int) -> None:
    """Refuse media too small to hold a face the pipeline would keep, before it is queued."""
    if min(info.width, info.height) < min_side:
        raise UnprocessableMedia(
            f"The {info.kind.value} is {info.width}x{info.height} pixels; a face needs at least {min_side} "
            "pixels on the shorter side.",
            code=ErrorCode.dimensions_too_small.value,
            details={"width": info.width, "height": info.height, "limit": "min_media_side", "min_media_side": min_side},
        )


def unsupported_media() -> UnsupportedMedia:
    return UnsupportedMedia(
        "The file is not an accepted image or video type.",
        details={"accepted": [t.label for t in ACCEPTED_TYPES]},
    )


class _FilePartSink:
    """Collects the `file` part's bytes from parser callbacks; the async caller flushes them to disk."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.handle: BinaryIO | None = None
        self.pending = bytearray()
        self.size = 0
        self.digest = hashlib.sha256()
        self.head = b""
        self.media_type: MediaType | None = None
        self.filename: str | None = None
        self.started = False
        self.finished = False

    def add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(
                f"The file is larger than the limit of {self.max_bytes} bytes.",
                details={"limit": "max_upload_bytes", "max_upload_bytes": self.max_bytes},
            )
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
            if len(self.head) >= SNIFF_BYTES:
                self.check_type()
        self.digest.update(data)
        self.pending += data

    def check_type(self) -> None:
        if self.media_type is None:
            self.media_type = sniff(self.head)
            if self.media_type is None:
                raise unsupported_media()

    def flush(self) -> None:
        if self.handle is None:
            self.handle = self.path.open("wb")
        if self.pending:
            self.handle.write(self.pending)
            self.pending.clear()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


async def receive_upload(request: Request, storage: Storage, *, max_bytes: int, flush_bytes: int) -> ReceivedUpload:
    """Stream the request's `file` part to a temporary file; the caller owns (and deletes) the file."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise BadRequest(
            "Send the file as multipart/form-data with a 'file' field.", code="malformed_multipart"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _MULTIPART_OVERHEAD_BYTES:
        raise PayloadTooLarge(
            f"The upload is larger than the limit of {max_bytes} bytes.",
            details={"limit": "max_upload_bytes", "max_upload_bytes": max_bytes},
        )

    sink = _FilePartSink(storage.new_temp_path(), max_bytes)
    part: dict[str, bytes] = {}
    header_field = bytearray()
    header_value = bytearray()
    in_file_part = False
    ended = False

    def on_part_begin() -> None:
        part.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part[bytes(header_field).lower().decode("latin-1")] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal in_file_part
        _, disposition = parse_options_header(part.get("content-disposition", b""))
        in_file_part = disposition.get(b"name") == FILE_FIELD.encode() and not sink.started
        if in_file_part:
            sink.started = True
            raw_name = disposition.get(b"filename")
            sink.filename = raw_name.decode("utf-8", "replace") if raw_name is not None else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if in_file_part:
            sink.add(data[start:end])

    def on_part_end() -> None:
        nonlocal in_file_part
        if in_file_part:
            sink.finished = True
        in_file_part = False

    def on_end() -> None:
        nonlocal ended
        ended = True

    try:
        parser = MultipartParser(boundary, max_header_size=_MAX_PART_HEADER_BYTES, callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        })
    except FormParserError as exc:  # e.g. a boundary longer than the parser allows (256 bytes)
        raise BadRequest(f"The multipart body is malformed: {exc}", code="malformed_multipart") from exc
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_bytes + _MULTIPART_OVERHEAD_BYTES:
                raise PayloadTooLarge(
                    f"The upload is larger than the limit of {max_bytes} bytes.",
                    details={"limit": "max_upload_bytes", "max_upload_bytes": max_bytes},
                )
            parser.write(chunk)
            if len(sink.pending) >= flush_bytes:
                await to_thread.run_sync(sink.flush)
        parser.finalize()
        if not ended:
            raise BadRequest("The multipart body ended early.", code="malformed_multipart")
        if not sink.finished:
            raise UnprocessableMedia("The form has no 'file' field.", code="missing_file")
        if sink.size == 0:
            raise UnprocessableMedia("The file is empty.", code=ErrorCode.empty_file.value)
        sink.check_type()
        await to_thread.run_sync(sink.flush)
        sink.close()
    except BaseException as exc:
        sink.close()
        sink.path.unlink(missing_ok=True)
        if isinstance(exc, MultipartParseError):
            raise BadRequest(f"The multipart body is malformed: {exc}", code="malformed_multipart") from exc
        if isinstance(exc, ClientDisconnect):
            logger.info("client disconnected during upload; partial file removed")
            raise BadRequest("The client disconnected before the upload finished.", code="client_disconnected") from exc
        if not isinstance(exc, DomainError):
            logger.warning("upload failed; partial file removed", exc_info=exc)
        raise
    assert sink.media_type is not None  # check_type() above either set it or raised
    return ReceivedUpload(
        path=sink.path, size=sink.size, sha256=sink.digest.hexdigest(), media_type=sink.media_type,
        filename=sink.filename,
    )


def declared_size(request: Request, settings: Settings) -> int:
    """The bytes an upload will take: its declared length, capped at MAX_UPLOAD_BYTES (the most it may be)."""
    declared = request.headers.get("content-length", "")
    return min(int(declared), settings.MAX_UPLOAD_BYTES) if declared.isdigit() else settings.MAX_UPLOAD_BYTES
