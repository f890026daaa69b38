"""Bounded image input: only regular files, the size read from the header before decoding.

Used by the runtime (``edgesr-run``) and the training/evaluation data loaders; standard
library and Pillow only (no numpy, no torch), so every layer may import it.

- :func:`read_regular_file` opens without blocking and refuses anything but a regular file:
  a FIFO named ``.png`` would otherwise hang forever, ``/dev/zero`` would fill memory.
  Files larger than any image within the pixel limit could be are refused unread. The rest is
  read in two steps: the first :data:`HEAD_BYTES`, whose signature (magic bytes) must be one
  of :data:`SIGNATURES` and whose header, when Pillow can parse it from them, must declare no
  more than ``max_pixels`` pixels and a size the file's length fits; only then the rest. A
  1.9 GB junk file named ``.png`` costs one 64 KiB read, not 1.9 GB of memory.
- :func:`probe_header` reads width, height and frame count with Pillow, which parses headers
  lazily (no pixel data is decoded), and refuses more than ``max_pixels`` pixels (a 389 KB
  PNG can declare 20000x20000 and need 9 GB to decode) and multi-frame files (edgesr upscales
  single images; the frames after the first would be lost silently).
- :func:`native_stderr_captured` keeps C decoders' own messages (``libpng error: ...``) off
  the terminal: they go to the debug log, and the caller's one-line error is all the user sees.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from edgesr.errors import ImageError

logger = logging.getLogger(__name__)

#: Default ``--max-pixels``: 64 million pixels (e.g. 8000x8000), far above any photo edgesr is
#: meant to upscale; decoding it takes about 1 GB (16-bit RGBA), upscaling it much more.
DEFAULT_MAX_PIXELS = 64_000_000
#: Upper bound of bytes per pixel in any file we read (uncompressed 64-bit float RGBA TIFF),
#: so a file larger than ``max_pixels * this`` cannot hold an image within the limit.
_MAX_BYTES_PER_PIXEL = 32
_HEADER_SLACK_BYTES = 16 << 20  # metadata (EXIF, ICC, XMP) on top of the pixels
#: Bytes read before anything else: the signature, and the whole header of nearly every PNG,
#: BMP and JPEG (a JPEG's EXIF/ICC segments come before its size, each at most 64 KiB).
HEAD_BYTES = 64 * 1024

#: The formats edgesr reads, by their leading bytes (WebP: "RIFF", 4 size bytes, "WEBP").
SIGNATURES: tuple[tuple[str, bytes], ...] = (
    ("png", b"\x89PNG\r\n\x1a\n"),
    ("jpeg", b"\xff\xd8\xff"),
    ("tiff", b"II*\x00"), ("tiff", b"MM\x00*"), ("tiff", b"II+\x00"), ("tiff", b"MM\x00+"),
    ("bmp", b"BM"),
)

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


@dataclass(frozen=True, kw_only=True)
class ImageHeader:
    """What a file's header says, before any pixel is decoded."""

    format: str
    width: int
    height: int
    frames: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def check_max_pixels(max_pixels: object) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ImageError(f"--max-pixels {max_pixels!r}: expected an integer >= 1 (default "
                         f"{DEFAULT_MAX_PIXELS})")
    return max_pixels


def image_kind(head: bytes) -> str | None:
    """The container format from a file's first bytes ("png", "jpeg", "webp", "tiff",
    "bmp"), or None when it is none of the formats edgesr reads."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((kind for kind, magic in SIGNATURES if head.startswith(magic)), None)


def read_regular_file(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """The bytes of ``path`` if it is a regular, non-empty image file (by its signature) no
    larger than ``max_pixels`` allows; the signature and header are checked on the first
    :data:`HEAD_BYTES` before the rest is read (see the module notes).

    Symlinks are followed (to a regular file they are fine). Raises ImageError otherwise.
    """
    max_bytes = check_max_pixels(max_pixels) * _MAX_BYTES_PER_PIXEL + _HEADER_SLACK_BYTES
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting forever.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageError(f"cannot read image {os.fspath(path)}: {exc.strerror or exc}; check "
                         "the path and its permissions") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise ImageError(f"cannot read image {os.fspath(path)}: it is {kind}, expected a "
                             "regular image file")
        if info.st_size > max_bytes:
            raise ImageError(
                f"cannot read image {os.fspath(path)}: the file is {info.st_size / 1e6:.0f} MB, "
                f"more than an image within --max-pixels {max_pixels} can be; raise "
                "--max-pixels if the image is meant to be this large"
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            head = handle.read(HEAD_BYTES)
            _check_head(head, size=info.st_size, source=os.fspath(path), max_pixels=max_pixels)
            return head + handle.read(max_bytes + 1 - len(head))
    except OSError as exc:
        raise ImageError(f"cannot read image {os.fspath(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _check_head(head: bytes, *, size: int, source: str, max_pixels: int) -> None:
    """Refuse, from the first bytes alone, an empty file, one that is not an image, and one
    whose header declares too many pixels or less image than the file is long."""
    if not head:
        raise ImageError(f"cannot read image {source}: the file is empty (0 bytes), expected "
                         "image data; re-create or re-download it")
    if image_kind(head) is None:
        raise ImageError(
            f"cannot read image {source}: the content is not a PNG, JPEG, WebP, TIFF or BMP "
            f"image (starts with {head[:8]!r}); check that this is the file you meant"
        )
    declared = _declared_size(head)
    if declared is None or size <= len(head):
        return  # the header lies further in (or the whole file is here): checked after reading
    width, height = declared
    _refuse_over_max_pixels(width, height, source=source, max_pixels=max_pixels)
    most = width * height * _MAX_BYTES_PER_PIXEL + _HEADER_SLACK_BYTES
    if size > most:
        raise ImageError(
            f"cannot read image {source}: the file is {size / 1e6:.0f} MB, but its header says "
            f"{width}x{height} (width x height), which no format needs more than "
            f"{most / 1e6:.0f} MB for; it holds something else too: re-save the image"
        )


def _declared_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) when Pillow can read the header from ``head`` alone, else None."""
    from PIL import Image

    saved_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # ours is applied by the caller, with the flag's name
    try:
        with native_stderr_captured(), Image.open(io.BytesIO(head)) as im:
            width, height = im.size
    except Exception:  # noqa: BLE001 (a header that does not fit in the head: checked later)
        tiff = _classic_tiff_header(head)
        return None if tiff is None else (tiff.width, tiff.height)
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    return int(width), int(height)


def _refuse_over_max_pixels(width: int, height: int, *, source: str, max_pixels: int) -> None:
    if width * height > check_max_pixels(max_pixels):
        raise ImageError(
            f"cannot read image {source}: its header says {width}x{height} "
            f"(width x height) = {width * height:,} pixels, more than --max-pixels "
            f"{max_pixels:,}; raise --max-pixels if this image is meant to be that large"
        )


def probe_header(data: bytes, *, source: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """Width, height and frame count from the header of an encoded image (nothing decoded).

    Refuses (ImageError) a header Pillow cannot parse, more than ``max_pixels`` pixels, and
    more than one frame (animated PNG/WebP, multi-page TIFF).
    """
    header = _pillow_header(data, source=source)
    _refuse_over_max_pixels(header.width, header.height, source=source, max_pixels=max_pixels)
    if header.frames > 1:
        raise ImageError(
            f"cannot read image {source}: it is a {header.format} with {header.frames} frames "
            "(animated or multi-page), and edgesr upscales single images; extract the frames "
            "(e.g. with ImageMagick or ffmpeg) and upscale them as a folder"
        )
    return header


def _pillow_header(data: bytes, *, source: str) -> ImageHeader:
    from PIL import Image

    # Pillow's own decompression-bomb limit would answer before ours, without the sizes and
    # without naming --max-pixels; ours is applied by the caller.
    saved_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with native_stderr_captured(), Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            frames = int(getattr(im, "n_frames", 1) or 1)
            fmt = im.format or "image"
    except Exception as exc:  # noqa: BLE001 (Pillow raises many types for broken headers)
        tiff = _classic_tiff_header(data)
        if tiff is not None:
            return tiff
        raise ImageError(
            f"cannot read image {source}: its header is corrupt or not an image ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); re-create or re-save the file"
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    return ImageHeader(format=fmt, width=int(width), height=int(height), frames=frames)


def _classic_tiff_header(data: bytes) -> ImageHeader | None:
    """Width, height and page count from a classic TIFF's IFD chain, or None.

    Written here because Pillow refuses TIFF sample layouts that OpenCV decodes (e.g. 3-channel
    32-bit float); only the tags needed for the limits are read (256 ImageWidth, 257 ImageLength).
    """
    if len(data) < 8 or data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    end = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(end + "I", data[4:8])
    sizes: dict[int, int] = {}
    pages, seen = 0, set()
    while offset and offset + 2 <= len(data) and offset not in seen and pages < 10_000:
        seen.add(offset)
        (count,) = struct.unpack(end + "H", data[offset:offset + 2])
        entries = data[offset + 2:offset + 2 + 12 * count]
        for i in range(0, len(entries) - 11, 12):
            tag, typ = struct.unpack(end + "HH", entries[i:i + 4])
            if pages == 0 and tag in (256, 257) and typ in (3, 4):
                fmt = end + ("H" if typ == 3 else "I")
                (sizes[tag],) = struct.unpack_from(fmt, entries, i + 8)
        pages += 1
        next_at = offset + 2 + 12 * count
        if next_at + 4 > len(data):
            break
        (offset,) = struct.unpack(end + "I", data[next_at:next_at + 4])
    if 256 not in sizes or 257 not in sizes:
        return None
    return ImageHeader(format="TIFF", width=sizes[256], height=sizes[257], frames=max(pages, 1))


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Route the process's fd 2 into a temp file while C code runs; log what it wrote.

    libpng/libtiff print their complaints straight to fd 2, below Python; the caller raises
    its own one-line error, so theirs goes to the debug log (``-v``) instead.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            chatter = sink.read().decode("utf-8", "replace").strip()
            if chatter:
                logger.debug("decoder said: %s", chatter)
