"""A corpus of hostile uploads, generated on the fly (no media is committed).

Each `Hostile` is one request body the API must answer with a 4xx in the one error shape, or
accept (202) and then fail or finish cleanly as a job — never a 500, never a stuck worker. Items
marked `accept=True` are valid media wearing something nasty (a ZIP after the JPEG, a huge EXIF
block, a hostile filename): refusing them would be wrong, running them must not hurt.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from PIL import Image

from tests.backend.factories import jpeg_bytes, mp4_bytes, png_bytes, png_header_only

BOUNDARY = "reliability-boundary"


@dataclass(frozen=True)
class Hostile:
    """One hostile request: a multipart body (or raw body + content type) and what must happen."""

    id: str
    build: Callable[[], bytes]
    """The file's bytes (wrapped in a normal multipart body), or the whole body when `raw`."""
    accept: bool | None = False
    """True: valid media that must be accepted (202) and then end in a final state in a worker;
    False: must be refused with a 4xx; None: either is a correct answer (never a 5xx)."""
    codes: tuple[str, ...] = ()
    """Accepted error codes for a refusal (empty: any 4xx code)."""
    filename: bytes = b"upload.bin"
    raw: bool = False
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(data: bytes, filename: bytes = b"upload.bin", field: bytes = b"file") -> bytes:
    """A multipart body built by hand, so filenames can carry any bytes a client might send."""
    head = b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"" + field + b"\""
    head += b"; filename=\"" + filename + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    return head + data + b"\r\n--" + BOUNDARY.encode() + b"--\r\n"


def body_of(item: Hostile) -> bytes:
    return item.build() if item.raw else multipart(item.build(), item.filename)


# --- builders ---------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@cache
def png_bomb(side: int = 12_000) -> bytes:
    """A real, fully valid greyscale PNG of `side`² zero pixels: ~100 kB that inflate to `side`² bytes."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@cache
def png_ztxt_bomb() -> bytes:
    """A small valid PNG with a compressed text chunk that inflates to 200 MB."""
    base = png_bytes(32, 32)
    compressor = zlib.compressobj(9)
    text = b"".join(compressor.compress(b"A" * 1_000_000) for _ in range(200)) + compressor.flush()
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + text)
    return base[:33] + ztxt + base[33:]  # right after IHDR


def png_with_dimensions(width: int, height: int) -> bytes:
    return png_header_only(width, height)


def jpeg_with_dimensions(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 frame header is rewritten to claim `width`x`height`."""
    data = bytearray(jpeg_bytes(16, 16))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_with_exif(exif: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), (200, 150, 120)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def huge_exif() -> bytes:
    """About 64 kB of EXIF (the most one APP1 segment holds): a giant UserComment plus many tags."""
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x010E] = "x" * 30_000  # ImageDescription
    exif[0x013B] = "y" * 30_000  # Artist
    return jpeg_with_exif(exif.tobytes())


def exif_ifd_loop() -> bytes:
    """EXIF whose first IFD's next-IFD pointer points back at itself, and an absurd Orientation."""
    # TIFF header (little endian), IFD0 at offset 8 with one entry: Orientation=65535; next IFD -> 8.
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, 0xFFFF) + struct.pack("<I", 8)
    return jpeg_with_exif(b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd)


def exif_bad_offsets() -> bytes:
    """EXIF with an entry whose data offset points far past the end of the block."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x010E, 2, 4096, 0x7FFFFFF0) + struct.pack("<I", 0)
    return jpeg_with_exif(b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd)


@cache
def small_mp4() -> bytes:
    return mp4_bytes(seconds=1.0, fps=10, width=64, height=48)


def _box(data: bytes, kind: bytes) -> int:
    """Offset of the first box of `kind` (its size field), searching the raw bytes."""
    return data.index(kind) - 4


def mp4_moov_renamed() -> bytes:
    """The moov atom's type overwritten: the file has media data but no movie header."""
    data = bytearray(small_mp4())
    at = _box(data, b"moov")
    data[at + 4 : at + 8] = b"xxxx"
    return bytes(data)


def mp4_moov_oversized() -> bytes:
    """The moov atom claims to be 4 GB long."""
    data = bytearray(small_mp4())
    at = _box(data, b"moov")
    data[at : at + 4] = struct.pack(">I", 0xFFFFFFF0)
    return bytes(data)


def mp4_moov_garbage() -> bytes:
    """Everything inside moov after its header replaced by 0xAB bytes."""
    data = bytearray(small_mp4())
    at = _box(data, b"moov")
    size = struct.unpack(">I", data[at : at + 4])[0]
    data[at + 8 : at + size] = b"\xab" * (size - 8)
    return bytes(data)


def mp4_unknown_codec() -> bytes:
    """The sample entry's codec fourcc (avc1) replaced by one FFmpeg has no decoder for (found by atheris)."""
    data = bytearray(small_mp4())
    at = data.index(b"avc1", data.index(b"stsd"))
    data[at : at + 4] = b"zzzz"
    return bytes(data)


def mp4_absurd_duration() -> bytes:
    """mvhd and mdhd durations set to 2^32-1 ticks: a 1 s clip claiming to last days."""
    data = bytearray(small_mp4())
    for kind in (b"mvhd", b"mdhd"):
        at = _box(data, kind)
        # version 0 full box: size, type, version+flags, creation, modification, timescale, duration
        data[at + 24 : at + 28] = struct.pack(">I", 0xFFFFFFFF)
    return bytes(data)


def mp4_absurd_frame_count() -> bytes:
    """The time-to-sample table claims 2^31 samples (frames) in a 10-frame clip."""
    data = bytearray(small_mp4())
    at = _box(data, b"stts")
    # size, type, version+flags, entry count, then (sample count, sample delta)
    data[at + 16 : at + 20] = struct.pack(">I", 0x7FFFFFFF)
    return bytes(data)


def mp4_absurd_dimensions() -> bytes:
    """The avc1 sample entry and tkhd claim 65535x65535 frames (the H.264 SPS still says 64x48)."""
    data = bytearray(small_mp4())
    at = _box(data, b"avc1")
    data[at + 32 : at + 36] = struct.pack(">HH", 0xFFFF, 0xFFFF)
    at = _box(data, b"tkhd")
    data[at + 84 : at + 92] = struct.pack(">II", 0xFFFF << 16, 0xFFFF << 16)
    return bytes(data)


@cache
def large_frame_mp4() -> bytes:
    """A genuinely encoded clip with 4096x4096 frames, over the default frame-pixel limit."""
    return mp4_bytes(seconds=0.1, fps=10, width=4096, height=4096)


def polyglot_jpeg_zip() -> bytes:
    """A valid JPEG with a ZIP archive appended (readable as both)."""
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("payload.html", "<script>alert(1)</script>")
    return jpeg_bytes(64, 64) + archive.getvalue()


def polyglot_png_html() -> bytes:
    """A valid PNG followed by an HTML page after IEND."""
    return png_bytes(64, 64) + b"<!doctype html><html><script>alert(document.cookie)</script></html>" * 20


def jpeg_magic_then_html() -> bytes:
    """JPEG magic bytes followed by an HTML page: sniffed as JPEG, must not decode."""
    return b"\xff\xd8\xff\xe0" + b"<html><body><script>alert(1)</script></body></html>" * 10


def webp_magic_then_garbage() -> bytes:
    return b"RIFF\x00\x10\x00\x00WEBPVP8 " + b"\x00" * 200


def avi_magic_then_garbage() -> bytes:
    return b"RIFF\x00\x10\x00\x00AVI LIST" + b"\xff" * 500


def mkv_magic_then_garbage() -> bytes:
    return b"\x1a\x45\xdf\xa3" + b"\x42\x86\x81\x01" + b"\xaa" * 500


def mp4_header_only() -> bytes:
    """An ftyp box and nothing else."""
    return struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isomiso2"


def avif_image() -> bytes:
    """A real AVIF (Pillow's encoder): an ISO-BMFF file like MP4, with the still-image brand `avif`."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 60, 30)).save(buffer, format="AVIF")
    return buffer.getvalue()


def zip_file() -> bytes:
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("a.jpg", jpeg_bytes())
    return archive.getvalue()


# --- malformed multipart bodies ---------------------------------------------------------------


def _part_head(name: bytes = b"file", filename: bytes = b"a.png") -> bytes:
    return (
        b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"" + name
        + b"\"; filename=\"" + filename + b"\"\r\n\r\n"
    )


def multipart_no_closing_boundary() -> bytes:
    return _part_head() + png_bytes()


def multipart_header_without_colon() -> bytes:
    return b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition form-data name=file\r\n\r\n" + png_bytes()


def multipart_huge_part_header() -> bytes:
    return (
        b"--" + BOUNDARY.encode() + b"\r\nX-Padding: " + b"a" * 2_000_000 + b"\r\n"
        + b"Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + png_bytes()
        + b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    )


def multipart_many_parts() -> bytes:
    parts = b"".join(
        b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"f" + str(i).encode()
        + b"\"\r\n\r\nx\r\n" for i in range(20_000)
    )
    return parts + b"--" + BOUNDARY.encode() + b"--\r\n"


def multipart_two_file_fields() -> bytes:
    """Two `file` parts: the first (a PNG) is taken, the second (text) ignored."""
    end = b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    return _part_head() + png_bytes() + b"\r\n" + _part_head() + b"not an image" + end


def multipart_disposition_without_name() -> bytes:
    return (
        b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; filename=\"a.png\"\r\n\r\n"
        + png_bytes() + b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    )


def multipart_nul_and_crlf_in_header() -> bytes:
    return (
        b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\x00b\r\n"
        b"X-Injected: yes.png\"\r\n\r\n" + png_bytes() + b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    )


def _keep(data: bytes) -> Callable[[], bytes]:
    return lambda: data


CORPUS: tuple[Hostile, ...] = (
    # truncated and zero-length media
    Hostile("zero-length", _keep(b""), codes=("empty_file",)),
    Hostile("one-byte", _keep(b"\xff"), codes=("unsupported_media",)),
    Hostile("jpeg-magic-only", _keep(b"\xff\xd8\xff"), codes=("corrupt_media",)),
    Hostile("truncated-jpeg", lambda: jpeg_bytes(256, 256)[:300], codes=("corrupt_media",)),
    Hostile("truncated-png", lambda: png_bytes(256, 256)[:100], codes=("corrupt_media",)),
    Hostile("truncated-mp4-head", lambda: small_mp4()[:1024], codes=("corrupt_media",)),
    Hostile("truncated-mp4-half", lambda: small_mp4()[: len(small_mp4()) // 2], codes=("corrupt_media",)),
    Hostile("mp4-ftyp-only", mp4_header_only, codes=("corrupt_media",)),
    # absurd dimensions and frame counts
    Hostile("png-bomb-12000x12000", png_bomb, codes=("dimensions_too_large",)),
    Hostile("png-header-2^31-wide", lambda: png_with_dimensions(2**31 - 1, 1), codes=("dimensions_too_large",
                                                                                       "corrupt_media")),
    Hostile("png-header-0x0", lambda: png_with_dimensions(0, 0), codes=("corrupt_media",)),
    Hostile("png-ztxt-bomb", png_ztxt_bomb, codes=("corrupt_media",)),
    Hostile("jpeg-sof-65535x65535", lambda: jpeg_with_dimensions(65535, 65535), codes=("dimensions_too_large",)),
    Hostile("jpeg-sof-0x0", lambda: jpeg_with_dimensions(0, 0), codes=("corrupt_media",)),
    Hostile("mp4-4096x4096-frames", large_frame_mp4, codes=("dimensions_too_large",)),
    # tiny media: no face fits (face detection crashed on them: `internal`)
    Hostile("png-1x1", lambda: png_bytes(1, 1), codes=("dimensions_too_small",)),
    Hostile("png-32x32", lambda: png_bytes(32, 32), codes=("dimensions_too_small",)),
    Hostile("jpeg-200x2", lambda: jpeg_bytes(200, 2), codes=("dimensions_too_small",)),
    Hostile("mp4-2x2", lambda: mp4_bytes(seconds=0.5, fps=10, width=2, height=2), codes=("dimensions_too_small",)),
    Hostile("mp4-64x2", lambda: mp4_bytes(seconds=0.5, fps=10, width=64, height=2), codes=("dimensions_too_small",)),
    Hostile("mp4-absurd-duration", mp4_absurd_duration, accept=None, codes=("too_long",)),
    Hostile("mp4-absurd-frame-count", mp4_absurd_frame_count, accept=True),
    Hostile("mp4-absurd-container-dimensions", mp4_absurd_dimensions, accept=True),
    # broken moov
    Hostile("mp4-moov-renamed", mp4_moov_renamed, codes=("corrupt_media",)),
    Hostile("mp4-moov-4GB", mp4_moov_oversized, accept=None, codes=("corrupt_media",)),
    Hostile("mp4-moov-garbage", mp4_moov_garbage, codes=("corrupt_media",)),
    Hostile("mp4-unknown-codec", mp4_unknown_codec, codes=("corrupt_media",)),
    # polyglots and magic-only files
    Hostile("polyglot-jpeg+zip", polyglot_jpeg_zip, accept=True),
    Hostile("polyglot-png+html", polyglot_png_html, accept=True),
    Hostile("jpeg-magic+html", jpeg_magic_then_html, codes=("corrupt_media",)),
    Hostile("webp-magic+garbage", webp_magic_then_garbage, codes=("corrupt_media",)),
    Hostile("avi-magic+garbage", avi_magic_then_garbage, codes=("corrupt_media",)),
    Hostile("mkv-magic+garbage", mkv_magic_then_garbage, codes=("corrupt_media",)),
    Hostile("zip", zip_file, codes=("unsupported_media",)),
    Hostile("avif-still-image", avif_image, codes=("unsupported_media",)),
    Hostile("html", _keep(b"<!doctype html><script>alert(1)</script>" * 4), codes=("unsupported_media",)),
    # EXIF
    Hostile("huge-exif", huge_exif, accept=True),
    Hostile("exif-ifd-loop", exif_ifd_loop, accept=True),
    Hostile("exif-bad-offsets", exif_bad_offsets, accept=True),
    # filenames
    Hostile("filename-non-utf8", lambda: png_bytes(), accept=True, filename=b"\xff\xfe\xc3(bad\x80.png"),
    Hostile("filename-traversal", lambda: png_bytes(), accept=True, filename=b"../../../../etc/passwd"),
    Hostile("filename-windows-traversal", lambda: png_bytes(), accept=True, filename=b"..\\..\\boot.ini"),
    Hostile("filename-5000", lambda: png_bytes(), accept=True, filename=b"b" * 5000 + b".png"),
    Hostile("filename-10k", lambda: png_bytes(), accept=True, filename=b"a" * 10_000 + b".png"),
    Hostile("filename-5000-multibyte", lambda: png_bytes(), accept=True, filename="\u00e9".encode() * 5000 + b".png"),
    Hostile("filename-rtl-override", lambda: png_bytes(), accept=True,
            filename="photo\u202egnp.exe".encode()),
    Hostile("filename-only-dots", lambda: png_bytes(), accept=True, filename=b"...."),
    Hostile("filename-nul", lambda: png_bytes(), accept=True, filename=b"a\x00b.png"),
    Hostile("filename-lone-surrogate", lambda: png_bytes(), accept=True,
            filename="a\ud800b.png".encode("utf-8", "surrogatepass")),
    # malformed multipart
    Hostile("multipart-not-multipart", _keep(b'{"file": "x"}'), raw=True, content_type="application/json",
            codes=("malformed_multipart",)),
    Hostile("multipart-no-boundary-param", lambda: multipart(png_bytes()), raw=True,
            content_type="multipart/form-data", codes=("malformed_multipart",)),
    Hostile("multipart-wrong-boundary", lambda: multipart(png_bytes()), raw=True,
            content_type="multipart/form-data; boundary=something-else", codes=("malformed_multipart",)),
    Hostile("multipart-no-closing-boundary", multipart_no_closing_boundary, raw=True,
            codes=("malformed_multipart",)),
    Hostile("multipart-header-without-colon", multipart_header_without_colon, raw=True,
            codes=("malformed_multipart",)),
    Hostile("multipart-2MB-part-header", multipart_huge_part_header, raw=True, accept=None),
    Hostile("multipart-20000-parts", multipart_many_parts, raw=True, codes=("missing_file",
                                                                           "malformed_multipart")),
    Hostile("multipart-two-file-fields", multipart_two_file_fields, raw=True, accept=True),
    Hostile("multipart-disposition-without-name", multipart_disposition_without_name, raw=True,
            codes=("missing_file",)),
    Hostile("multipart-nul-crlf-in-filename", multipart_nul_and_crlf_in_header, raw=True, accept=None),
    Hostile("multipart-boundary-300-chars", lambda: multipart(png_bytes()).replace(BOUNDARY.encode(), b"b" * 300),
            raw=True, content_type="multipart/form-data; boundary=" + "b" * 300, codes=("malformed_multipart",)),
)


# --- text no database can store: NUL and lone surrogates --------------------------------------


@dataclass(frozen=True)
class HostileText:
    """One request carrying a NUL or a lone UTF-16 surrogate where text reaches the database.
    Answered 4xx in the one error shape on SQLite and PostgreSQL alike (psycopg raised on both,
    which was a 500)."""

    id: str
    method: str
    path: str
    body: str | None = None
    """A JSON document as text, so `\\u0000` and `\\ud800` escapes travel as a client sends them."""
    headers: tuple[tuple[str, str], ...] = ()
    signed_in: bool = False
    """Sent with a signed-in user's Bearer token, so routes behind sign-in parse the input too."""


_NUL_EMAIL = '{"email": "a\\u0000@b.co", "password": "long enough password"}'
_SURROGATE_EMAIL = '{"email": "a\\ud800@b.co", "password": "long enough password"}'
_NUL_PASSWORD = '{"email": "a@b.co", "password": "long enough\\u0000password"}'
_SURROGATE_PASSWORD = '{"email": "a@b.co", "password": "long enough\\udfffpassword"}'

TEXT_CASES: tuple[HostileText, ...] = (
    HostileText("job-id-nul", "GET", "/api/jobs/%00"),
    HostileText("job-id-nul-inside", "GET", "/api/jobs/abc%00def"),
    HostileText("delete-job-id-nul", "DELETE", "/api/jobs/%00"),
    HostileText("events-job-id-nul", "GET", "/api/jobs/%00/events"),
    HostileText("artifact-job-id-nul", "GET", "/api/jobs/%00/artifacts/report.json"),
    HostileText("artifact-name-nul", "GET", "/api/jobs/abc/artifacts/a%00.png"),
    HostileText("token-query-nul", "GET", "/api/jobs?token=%00"),
    HostileText("job-token-query-nul", "GET", "/api/jobs/abc?token=a%00b"),
    HostileText("limit-query-nul", "GET", "/api/jobs?limit=1%00"),
    HostileText("job-token-header-nul", "GET", "/api/jobs", headers=(("X-Job-Token", "a\x00b"),)),
    HostileText("bearer-nul", "GET", "/api/auth/me", headers=(("Authorization", "Bearer a\x00b"),)),
    HostileText("cookie-nul", "GET", "/api/auth/me", headers=(("Cookie", "deepscreen_session=a\x00b"),)),
    HostileText("register-email-nul", "POST", "/api/auth/register", body=_NUL_EMAIL),
    HostileText("register-email-surrogate", "POST", "/api/auth/register", body=_SURROGATE_EMAIL),
    HostileText("register-password-nul", "POST", "/api/auth/register", body=_NUL_PASSWORD),
    HostileText("register-password-surrogate", "POST", "/api/auth/register", body=_SURROGATE_PASSWORD),
    HostileText("login-email-nul", "POST", "/api/auth/login", body=_NUL_EMAIL),
    HostileText("login-email-surrogate", "POST", "/api/auth/login", body=_SURROGATE_EMAIL),
    HostileText("login-password-nul", "POST", "/api/auth/login", body=_NUL_PASSWORD),
    HostileText("login-key-nul", "POST", "/api/auth/login", body='{"email\\u0000": "a@b.co", "password": "x"}'),
    HostileText("api-key-name-nul", "POST", "/api/account/keys", body='{"name": "ci\\u0000"}', signed_in=True),
    HostileText("api-key-name-surrogate", "POST", "/api/account/keys", body='{"name": "ci\\ud83d"}',
                signed_in=True),
    HostileText("revoke-key-id-nul", "DELETE", "/api/account/keys/%00", signed_in=True),
    HostileText("me-query-nul", "GET", "/api/auth/me?x=%00", signed_in=True),
)
