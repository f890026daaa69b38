"""Reading and writing images for ``edgesr-run`` (numpy + OpenCV only, never torch).

Formats: PNG, JPEG, WebP, TIFF and BMP, 8- and 16-bit, gray, gray+alpha, RGB and RGBA.
Everything the model sees is float32 RGB in [0, 1]; what the file was (bit depth, gray,
alpha) is remembered in :class:`LoadedImage` so the output can be written the same way.

Decisions (each one is tested in ``tests/test_runtime_imageio.py``):

- **Decoding** is ``cv2.imdecode(bytes, cv2.IMREAD_UNCHANGED)`` on the file's bytes, so paths
  with non-ASCII characters work on every platform. The content decides the decoder; the
  extension must still be one of :data:`SUPPORTED_EXTENSIONS`.
- **EXIF orientation is applied.** ``IMREAD_UNCHANGED`` ignores it, so this module reads the
  Orientation tag itself (JPEG APP1, PNG ``eXIf``, WebP ``EXIF``, TIFF IFD0) and rotates/flips
  the pixels the way image viewers show them. OpenCV writes no EXIF, so the upscaled file
  then looks the same as the input in any viewer. (Some OpenCV versions already apply the
  TIFF Orientation tag inside the TIFF decoder; a one-time probe finds out, so it is never
  applied twice.)
- **Gray** files (PNG/TIFF/JPEG/BMP gray, PNG gray+alpha) are expanded to 3 equal channels for
  the model and remembered as gray. On writing, the SR RGB is turned back into one channel
  with OpenCV's ``RGB2GRAY`` weights (0.299 R + 0.587 G + 0.114 B, the same weights as
  ``BGR2GRAY`` with the channel order handled); for a gray input the model's three channels
  are nearly equal, and these weights leave an exactly gray pixel unchanged. Gray+alpha is
  written as RGBA with three equal channels (OpenCV cannot encode two-channel images).
- **Palette PNGs** are expanded to RGB (or RGBA when the palette has transparency) by OpenCV.
- **CMYK JPEGs** are converted to RGB by OpenCV's JPEG decoder (libjpeg's Adobe CMYK handling);
  the result is an ordinary 8-bit RGB image.
- **Float TIFFs** (32/64-bit float samples) are accepted when every value lies in [0, 1]
  (a rounding tolerance of 1e-3 is clipped away) and are written back as 16-bit; other float
  ranges (HDR, unnormalised data) are refused with a message saying how to convert them.
- **16-bit** is preserved for PNG and TIFF outputs; JPEG, WebP and BMP are 8-bit only, so a
  16-bit image written there is rounded to 8 bits with a logged warning.
- **Alpha** is returned separately and never goes through the model; callers upscale it with
  :func:`upscale_alpha` (bicubic, clipped to [0, 1]). JPEG cannot store alpha: writing alpha to
  a JPEG drops it with a logged warning. OpenCV ignores the alpha of gray+alpha TIFFs and of
  some BMP variants; the gray+alpha TIFF case is detected and logged as a warning.
- **RGBA TIFF colour** is returned straight (not premultiplied): associated-alpha files
  (ExtraSamples=1) are divided by alpha, and so are unassociated ones when this OpenCV
  premultiplies them while decoding (its 8-bit TIFF path does, through libtiff's RGBA
  interface; a one-time probe checks). Colour under very small alpha keeps only the
  precision the file had.
- **Bounded input** (:mod:`edgesr.image_guard`): only regular files are read (a FIFO or
  ``/dev/zero`` named .png is refused, not waited on or read forever); width, height and
  frame count come from the header before decoding, and more than ``max_pixels`` pixels
  (``--max-pixels``, default 64 MP) or more than one frame (multi-page TIFF, animated
  PNG/WebP) is refused. Decoder messages (libpng) go to the debug log, not stderr.
- **Writing is atomic and no-clobber** (:func:`edgesr.fileio.write_atomically`): encode in
  memory, write a hidden temporary file in the destination folder, fsync, then link it into
  place, which fails if the output appeared meanwhile (``overwrite`` replaces atomically).
  :func:`check_output_path` refuses an input, an existing file, a read-only folder and a disk
  without room for the image, before any work.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from edgesr.errors import ImageError
from edgesr.fileio import check_output_file, write_bytes_atomically
from edgesr.image_guard import (
    DEFAULT_MAX_PIXELS,
    native_stderr_captured,
    probe_header,
    read_regular_file,
)

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Extensions read and written (lower case; matching is case-insensitive).
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".tif",
    ".tiff",
    ".bmp",
)
#: Output extensions that can hold 16-bit samples.
SIXTEEN_BIT_EXTENSIONS: tuple[str, ...] = (".png", ".tif", ".tiff")
#: Output extensions that can hold an alpha channel (as OpenCV encodes them).
ALPHA_EXTENSIONS: tuple[str, ...] = (".png", ".webp", ".tif", ".tiff", ".bmp")
#: Smallest image side accepted (a 1-pixel side has no neighbourhood to super-resolve).
MIN_SIDE_PX = 2
#: JPEG quality used when writing (OpenCV's default, stated explicitly).
JPEG_QUALITY = 95
#: Float TIFF values this far outside [0, 1] are clipped silently; further out is refused.
FLOAT_RANGE_TOLERANCE = 1e-3

_SUPPORTED_LIST = " ".join(SUPPORTED_EXTENSIONS)


@dataclass(frozen=True, kw_only=True, eq=False)  # arrays: compare fields explicitly
class LoadedImage:
    """An image as the model needs it, plus what the file was.

    ``rgb`` is float32 H×W×3 in [0, 1] (RGB order, EXIF orientation applied);
    ``alpha`` is float32 H×W in [0, 1] or None; ``bit_depth`` is 8 or 16 (float TIFFs
    report 16, the depth they are written back with); ``is_gray`` says the file had one
    colour channel (``rgb`` then has three equal channels).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    is_gray: bool
    source_path: Path

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def has_alpha(self) -> bool:
        return self.alpha is not None


# ----------------------------------------------------------------------------- helpers


def _is_supported(ext: str) -> bool:
    return ext.lower() in SUPPORTED_EXTENSIONS


def _sniff(data: bytes) -> str | None:
    """The container format from the magic bytes, or None when it is none of ours."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    return None


def _png_chunks(data: bytes) -> Iterable[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each PNG chunk; stops at IEND or the data end."""
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        start, end = pos + 8, pos + 8 + length
        yield ctype, start, end
        if ctype == b"IEND":
            return
        pos = end + 4  # CRC


def _png_info(data: bytes) -> tuple[int, bool, bytes | None]:
    """(IHDR colour type, IEND present and complete, eXIf payload or None)."""
    color_type = -1
    complete = False
    exif = None
    for ctype, start, end in _png_chunks(data):
        if end > len(data):
            break
        if ctype == b"IHDR" and end - start >= 10:
            color_type = data[start + 9]
        elif ctype == b"eXIf":
            exif = data[start:end]
        elif ctype == b"IEND":
            complete = True
    return color_type, complete, exif


def _jpeg_info(data: bytes) -> tuple[bool, bytes | None]:
    """(an end-of-image marker follows the first scan, EXIF TIFF block or None)."""
    pos = 2
    exif = None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False, exif  # lost sync: malformed header
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == 0xDA:  # start of scan: entropy-coded data follows, EOI must come later
            return data.find(b"\xff\xd9", pos + 2 + length) != -1, exif
        if marker == 0xD9:
            return True, exif
        payload = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and exif is None and payload.startswith(b"Exif\x00\x00"):
            exif = payload[6:]
        pos += 2 + length
    return False, exif


def _webp_info(data: bytes) -> tuple[bool, bytes | None]:
    """(RIFF size fits the data, EXIF payload or None)."""
    (riff_size,) = struct.unpack("<I", data[4:8])
    complete = riff_size + 8 <= len(data)
    exif = None
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if fourcc == b"EXIF":
            exif = data[pos + 8 : pos + 8 + size]
            break
        pos += 8 + size + (size & 1)
    return complete, exif


def _tiff_ifd0(block: bytes) -> dict[int, int]:
    """First-value of each SHORT/LONG tag of IFD0 of a (classic) TIFF structure."""
    if len(block) < 8 or block[:2] not in (b"II", b"MM"):
        return {}
    end = "<" if block[:2] == b"II" else ">"
    (magic,) = struct.unpack(end + "H", block[2:4])
    if magic != 42:
        return {}
    (ifd,) = struct.unpack(end + "I", block[4:8])
    if ifd + 2 > len(block):
        return {}
    (count,) = struct.unpack(end + "H", block[ifd : ifd + 2])
    tags: dict[int, int] = {}
    for i in range(count):
        off = ifd + 2 + 12 * i
        if off + 12 > len(block):
            break
        tag, typ, _n = struct.unpack(end + "HHI", block[off : off + 8])
        if typ == 3:  # SHORT
            (value,) = struct.unpack(end + "H", block[off + 8 : off + 10])
        elif typ == 4:  # LONG
            (value,) = struct.unpack(end + "I", block[off + 8 : off + 12])
        else:
            continue
        tags[tag] = value
    return tags


_TAG_ORIENTATION = 0x0112
_TAG_SAMPLES_PER_PIXEL = 0x0115


def _exif_orientation(block: bytes | None) -> int:
    if not block:
        return 1
    if block.startswith(b"Exif\x00\x00"):  # some writers keep the APP1 prefix in eXIf/EXIF
        block = block[6:]
    value = _tiff_ifd0(block).get(_TAG_ORIENTATION, 1)
    return value if 1 <= value <= 8 else 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the pixels look as viewers display them."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(array, k=-1)
    if orientation == 7:
        return array[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(array, k=1)
    return array


def _tiny_tiff(tags: dict[int, tuple[int, list[int]]], pixels: bytes) -> bytes:
    """A minimal little-endian, uncompressed, single-strip TIFF (for the decoder probes).

    ``tags`` maps tag -> (type 3=SHORT | 4=LONG, values); StripOffsets (273) and
    StripByteCounts (279) are filled in here.
    """
    tags = {**tags, 273: (4, [0]), 279: (4, [len(pixels)])}
    order = sorted(tags)
    ifd_size = 2 + 12 * len(order) + 4
    extra = b""
    fields = []
    for tag in order:
        typ, values = tags[tag]
        fmt = "H" if typ == 3 else "I"
        fields.append((tag, typ, fmt, values))
        if struct.calcsize("<" + fmt * len(values)) > 4:
            extra += struct.pack("<" + fmt * len(values), *values)
    pixel_offset = 8 + ifd_size + len(extra)
    ifd = struct.pack("<H", len(order))
    extra_pos = 8 + ifd_size
    for tag, typ, fmt, values in fields:
        if tag == 273:
            values = [pixel_offset]
        packed = struct.pack("<" + fmt * len(values), *values)
        if len(packed) > 4:
            value = struct.pack("<I", extra_pos)
            extra_pos += len(packed)
        else:
            value = packed.ljust(4, b"\x00")
        ifd += struct.pack("<HHI", tag, typ, len(values)) + value
    ifd += struct.pack("<I", 0)
    return b"II" + struct.pack("<HI", 42, 8) + ifd + extra + pixels


def _probe_decode(blob: bytes) -> np.ndarray | None:
    try:
        return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


@functools.lru_cache(maxsize=1)
def _opencv_orients_tiff() -> bool:
    """Whether this OpenCV's TIFF decoder applies the Orientation tag under IMREAD_UNCHANGED.

    Decodes a hand-made 2×1 gray TIFF with Orientation=2 (mirror): the pixels come back
    swapped exactly when the decoder already applied it (OpenCV 5 does).
    """
    blob = _tiny_tiff(
        {256: (3, [2]), 257: (3, [1]), 258: (3, [8]), 259: (3, [1]), 262: (3, [1]),
         274: (3, [2]), 277: (3, [1]), 278: (3, [1])},
        bytes([10, 200]),
    )
    probe = _probe_decode(blob)
    applied = probe is not None and int(probe.reshape(-1)[0]) == 200
    logger.debug("OpenCV %s TIFF decoder applies Orientation itself: %s", cv2.__version__, applied)
    return applied


@functools.lru_cache(maxsize=2)
def _opencv_premultiplies_tiff(bits: int) -> bool:
    """Whether this OpenCV returns premultiplied colour for an unassociated-alpha RGBA TIFF.

    OpenCV decodes 8-bit TIFFs through libtiff's RGBA interface, which converts unassociated
    alpha (ExtraSamples=2, what Pillow/GIMP write) to associated (premultiplied) colour;
    16-bit TIFFs are read raw. A 1×1 probe with colour (0.8, 0.4, 0.2) at alpha 0.5 decides.
    """
    top = (1 << bits) - 1
    values = [round(0.8 * top), round(0.4 * top), round(0.2 * top), round(0.5 * top)]
    pixels = bytes(values) if bits == 8 else struct.pack("<4H", *values)
    blob = _tiny_tiff(
        {256: (3, [1]), 257: (3, [1]), 258: (3, [bits] * 4), 259: (3, [1]), 262: (3, [2]),
         277: (3, [4]), 278: (3, [1]), 284: (3, [1]), 338: (3, [2])},
        pixels,
    )
    probe = _probe_decode(blob)
    premultiplied = (
        probe is not None and probe.ndim == 3 and probe.shape[2] == 4
        and abs(int(probe[0, 0, 2]) - values[0] * values[3] / top) < 0.01 * top
    )
    logger.debug(
        "OpenCV %s premultiplies %d-bit RGBA TIFF: %s", cv2.__version__, bits, premultiplied
    )
    return premultiplied


_TAG_EXTRA_SAMPLES = 338


def _tiff_colour_is_premultiplied(data: bytes, dtype: np.dtype) -> bool:
    """Whether OpenCV handed back premultiplied colour for this RGBA TIFF.

    ExtraSamples=1 (associated alpha) is premultiplied in the file itself; ExtraSamples=2
    (unassociated) is premultiplied by OpenCV's decoder for 8-bit data (see the probe).
    """
    extra = _tiff_ifd0(data).get(_TAG_EXTRA_SAMPLES)
    if extra == 1:
        return True
    if extra == 2 and dtype in (np.uint8, np.uint16):
        return _opencv_premultiplies_tiff(8 if dtype == np.uint8 else 16)
    return False


def _read_bytes(p: Path, received: PathLike, *, max_pixels: int) -> bytes:
    if p.is_dir():
        raise ImageError(
            f"cannot read image {received!s}: it is a folder, expected an image file; "
            "pass a file, or use the folder mode of edgesr-run to process every image in it"
        )
    if not p.exists() and not p.is_symlink():
        raise ImageError(
            f"cannot read image {received!s}: the file does not exist; check the path "
            f"(working folder is {os.getcwd()})"
        )
    return read_regular_file(p, max_pixels=max_pixels)  # FIFOs, devices, oversized files


def _to_unit_float(raw: np.ndarray, received: PathLike) -> tuple[np.ndarray, int]:
    """Samples as float32 in [0, 1] and the bit depth to write back with."""
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / np.float32(255.0), 8  # exact k/255, not k*(1/255)
    if raw.dtype == np.uint16:
        return raw.astype(np.float32) / np.float32(65535.0), 16
    if raw.dtype in (np.float32, np.float64):
        values = raw.astype(np.float32)
        if not np.isfinite(values).all():
            raise ImageError(
                f"cannot use image {received!s}: float samples include NaN or infinity, "
                "expected finite values in [0, 1]; fix or re-export the image"
            )
        lo, hi = float(values.min()), float(values.max())
        if lo < -FLOAT_RANGE_TOLERANCE or hi > 1.0 + FLOAT_RANGE_TOLERANCE:
            raise ImageError(
                f"cannot use image {received!s}: float samples span [{lo:.4g}, {hi:.4g}], "
                "expected [0, 1]; normalise it or convert it to a 16-bit PNG/TIFF first"
            )
        logger.info("%s: float TIFF in [0, 1] read; it will be written back as 16-bit", received)
        return np.clip(values, 0.0, 1.0), 16
    raise ImageError(
        f"cannot use image {received!s}: samples are {raw.dtype}, expected 8- or 16-bit "
        "unsigned integers (or float in [0, 1]); convert it to an 8- or 16-bit PNG first"
    )


# ------------------------------------------------------------------------------ reading


def _refuse_zero_size_png(data: bytes, path: PathLike) -> None:
    # libpng prints its own warnings for a zero width or height straight to the process's
    # stderr before OpenCV gives up; checking the IHDR first keeps the error to one line.
    if len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        if min(width, height) == 0:
            raise ImageError(
                f"cannot read image {path!s}: its PNG header says {width}x{height} pixels "
                f"(width x height), the minimum is {MIN_SIDE_PX}x{MIN_SIDE_PX}; re-create the file"
            )


def read_image(path: PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file into float32 RGB [0, 1] (+ separate alpha); see the module notes.

    Raises :class:`ImageError` (one line, with what to do) for a missing path, a folder, a
    FIFO or device, an unsupported extension, an empty, truncated or corrupt file, a file that
    is not an image, more than ``max_pixels`` pixels or more than one frame (both read from
    the header, before decoding), unsupported sample types, and images smaller than 2×2.
    """
    p = Path(path)
    if p.exists() and not p.is_dir() and not _is_supported(p.suffix):
        raise ImageError(
            f"cannot read image {path!s}: extension {p.suffix or '(none)'!r} is not supported, "
            f"expected one of {_SUPPORTED_LIST}; convert the file to PNG"
        )
    data = _read_bytes(p, path, max_pixels=max_pixels)
    if not data:
        raise ImageError(
            f"cannot read image {path!s}: the file is empty (0 bytes), expected image data; "
            "re-create or re-download it"
        )
    kind = _sniff(data)
    if kind is None:
        raise ImageError(
            f"cannot read image {path!s}: the content is not a PNG, JPEG, WebP, TIFF or BMP "
            f"image (starts with {data[:8]!r}); check that this is the file you meant"
        )

    truncated = False
    color_type = -1
    exif: bytes | None = None
    if kind == "png":
        _refuse_zero_size_png(data, path)
        color_type, complete, exif = _png_info(data)
        truncated = not complete
    elif kind == "jpeg":
        complete, exif = _jpeg_info(data)
        truncated = not complete
    elif kind == "webp":
        complete, exif = _webp_info(data)
        truncated = not complete
    elif kind == "tiff":
        exif = data
    if truncated:
        raise ImageError(
            f"cannot read image {path!s}: the {kind.upper()} data is truncated "
            f"({len(data)} bytes, the end-of-image marker is missing); re-create or "
            "re-download the file"
        )

    probe_header(data, source=str(path), max_pixels=max_pixels)  # size and frames, undecoded
    try:
        with native_stderr_captured():  # libpng's own "libpng error:" line stays off stderr
            raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        raw = None
    if raw is None:
        raise ImageError(
            f"cannot read image {path!s}: OpenCV could not decode this {kind.upper()} file "
            f"({len(data)} bytes): it is corrupt, truncated or uses an unsupported variant; "
            "re-save it as PNG"
        )

    # EXIF orientation (see module notes); TIFF only when OpenCV did not already apply it.
    orientation = _exif_orientation(exif)
    if kind == "tiff" and _opencv_orients_tiff():
        orientation = 1
    if orientation != 1:
        logger.debug("%s: applying EXIF orientation %d", path, orientation)
        raw = _orient(raw, orientation)

    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[:, :, 0]
    if raw.ndim == 2:
        channels = 1
    elif raw.ndim == 3 and raw.shape[2] in (3, 4):
        channels = raw.shape[2]
    else:
        raise ImageError(
            f"cannot use image {path!s}: decoded shape {raw.shape}, expected gray, RGB or "
            "RGBA; convert it to an RGB or RGBA PNG"
        )

    height, width = raw.shape[:2]
    if height < MIN_SIDE_PX or width < MIN_SIDE_PX:
        raise ImageError(
            f"cannot use image {path!s}: it is {width}x{height} pixels (width x height), "
            f"the minimum is {MIN_SIDE_PX}x{MIN_SIDE_PX}; use a larger image"
        )

    values, bit_depth = _to_unit_float(raw, path)
    alpha = None
    is_gray = channels == 1 or (kind == "png" and color_type == 4)
    if channels == 1:
        rgb = np.repeat(values[:, :, None], 3, axis=2)
    elif is_gray:  # PNG gray+alpha: OpenCV expands it to BGRA with equal colour channels
        rgb = np.repeat(values[:, :, :1], 3, axis=2)
        alpha = np.ascontiguousarray(values[:, :, 3])
    else:
        rgb = np.ascontiguousarray(values[:, :, 2::-1])
        if channels == 4:
            alpha = np.ascontiguousarray(values[:, :, 3])

    if kind == "tiff" and alpha is not None and _tiff_colour_is_premultiplied(data, raw.dtype):
        # Straight (unassociated) colour is what PNG/WebP hold and what the model expects.
        logger.debug("%s: un-premultiplying TIFF colour by alpha", path)
        safe = np.where(alpha > 0, alpha, 1.0)[:, :, None]
        rgb = np.where(alpha[:, :, None] > 0, np.clip(rgb / safe, 0.0, 1.0), 0.0)
    if kind == "tiff" and channels == 1 and _tiff_ifd0(data).get(_TAG_SAMPLES_PER_PIXEL) == 2:
        logger.warning(
            "%s: OpenCV drops the alpha channel of gray+alpha TIFFs; the output will have no "
            "alpha (save the input as PNG to keep it)",
            path,
        )
    return LoadedImage(
        rgb=np.ascontiguousarray(rgb, dtype=np.float32),
        alpha=alpha,
        bit_depth=bit_depth,
        is_gray=is_gray,
        source_path=p,
    )


# ------------------------------------------------------------------------------ writing


def check_output_path(
    output: PathLike, *, inputs: Iterable[PathLike], overwrite: bool, estimate_bytes: int = 0
) -> Path:
    """Refuse an output edgesr cannot or must not write, before any work: a folder, an
    extension that is not in :data:`SUPPORTED_EXTENSIONS`, a missing or read-only parent
    folder, one of ``inputs``, an existing file while ``overwrite`` is False, a name longer
    than the file system allows, or less free space than ``estimate_bytes``
    (:func:`edgesr.fileio.check_output_file`).

    "Is an input" means the same file by ``os.path.samefile``, so symlinks, hard links,
    relative spellings and case-insensitive file systems are all caught. Overwriting an input
    is refused even with ``overwrite=True``. "Exists" is checked again when the file is
    committed (:func:`write_image`), so a file created meanwhile is never replaced. Returns
    the output as a :class:`Path`.
    """
    out = Path(output)
    if out.is_dir():
        raise ImageError(
            f"cannot write to {output!s}: it is a folder, expected an image file path; "
            "add a file name such as out.png"
        )
    if not _is_supported(out.suffix):
        raise ImageError(
            f"cannot write {output!s}: extension {out.suffix or '(none)'!r} is not supported, "
            f"expected one of {_SUPPORTED_LIST}; change the output file name"
        )
    return check_output_file(out, inputs=inputs, overwrite=overwrite,
                             estimate_bytes=estimate_bytes, what="output image")


def encoded_size_bound(*, height: int, width: int, channels: int = 4, bit_depth: int = 16) -> int:
    """Bytes an encoded image of this size can need at most (uncompressed samples): the free
    space asked for before upscaling. Generous on purpose: PNG/JPEG usually need far less."""
    return height * width * channels * (bit_depth // 8) + 64 * 1024


def _quantize(values: np.ndarray, bit_depth: int) -> np.ndarray:
    top = 65535.0 if bit_depth == 16 else 255.0
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    scaled = np.clip(values, 0.0, 1.0) * np.float32(top)
    return np.rint(scaled).astype(dtype)


def _check_array(
    name: str, array: object, ndim: int, shape_hint: str, fix: str, path: PathLike
) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise ImageError(
            f"cannot write {path!s}: {name} is a {type(array).__name__}, expected a numpy "
            f"array {shape_hint}; convert it with numpy.asarray"
        )
    if array.ndim != ndim or (ndim == 3 and array.shape[2] != 3):
        raise ImageError(
            f"cannot write {path!s}: {name} has shape {array.shape}, expected {shape_hint}; "
            f"{fix}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise ImageError(
            f"cannot write {path!s}: {name} has dtype {array.dtype}, expected float in [0, 1]; "
            "divide integer images by 255 (or 65535) first"
        )
    if not np.isfinite(array).all():
        raise ImageError(
            f"cannot write {path!s}: {name} contains NaN or infinity, expected finite values "
            "in [0, 1]; the engine produced invalid output (try precision fp32)"
        )
    return array


def write_image(
    path: PathLike,
    *,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    bit_depth: int,
    is_gray: bool,
    inputs: Iterable[PathLike] = (),
    overwrite: bool = False,
) -> Path:
    """Write float RGB [0, 1] (H×W×3) and optional alpha (H×W) atomically; return the path.

    The extension decides the format (:data:`SUPPORTED_EXTENSIONS`). ``bit_depth`` 16 is kept
    for PNG/TIFF; JPEG/WebP/BMP get 8 bits and a logged warning. ``is_gray`` writes one
    channel (OpenCV RGB2GRAY weights; with alpha, RGBA with equal colour channels). Values are
    clipped to [0, 1] and rounded. WebP is written lossless, JPEG at quality 95.
    ``inputs``: paths this write must never replace. Without ``overwrite`` an existing file
    (even one another process wrote while this one worked) is refused at commit time. The path
    is checked with :func:`check_output_path` (callers should also call that before inference,
    to fail before spending time on the model).
    """
    p = check_output_path(path, inputs=inputs, overwrite=overwrite)
    ext = p.suffix.lower()
    if bit_depth not in (8, 16) or isinstance(bit_depth, bool):
        raise ImageError(
            f"cannot write {path!s}: bit_depth={bit_depth!r}, expected 8 or 16; pass the "
            "LoadedImage's bit_depth"
        )
    rgb = _check_array(
        "rgb", rgb, 3, "of shape (height, width, 3)",
        "turn NCHW model output into H×W×3 with rgb_from_nchw first", path,
    )
    if alpha is not None:
        alpha = _check_array(
            "alpha", alpha, 2, "of shape (height, width)", "pass LoadedImage.alpha upscaled", path
        )
        if alpha.shape != rgb.shape[:2]:
            raise ImageError(
                f"cannot write {path!s}: alpha is {alpha.shape[1]}x{alpha.shape[0]}, the image "
                f"is {rgb.shape[1]}x{rgb.shape[0]} (width x height); upscale alpha with "
                "upscale_alpha(alpha, scale=...) first"
            )

    if bit_depth == 16 and ext not in SIXTEEN_BIT_EXTENSIONS:
        logger.warning(
            "%s: %s stores 8 bits per sample; the 16-bit image is rounded to 8 bits "
            "(write .png or .tif to keep 16 bits)",
            path,
            ext.lstrip(".").upper(),
        )
        bit_depth = 8
    if alpha is not None and ext not in ALPHA_EXTENSIONS:
        logger.warning(
            "%s: %s has no alpha channel; alpha is dropped (write .png, .webp or .tif to keep it)",
            path,
            ext.lstrip(".").upper(),
        )
        alpha = None

    rgb32 = np.asarray(rgb, dtype=np.float32)
    if is_gray:
        gray = cv2.cvtColor(np.ascontiguousarray(rgb32), cv2.COLOR_RGB2GRAY)
        if alpha is None:
            pixels = _quantize(gray, bit_depth)
        else:
            g = _quantize(gray, bit_depth)
            pixels = np.dstack([g, g, g, _quantize(np.asarray(alpha, np.float32), bit_depth)])
    else:
        bgr = _quantize(rgb32[:, :, ::-1], bit_depth)
        if alpha is None:
            pixels = bgr
        else:
            pixels = np.dstack([bgr, _quantize(np.asarray(alpha, np.float32), bit_depth)])

    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    try:
        ok, encoded = cv2.imencode(ext, np.ascontiguousarray(pixels), params)
    except cv2.error as exc:
        raise ImageError(
            f"cannot write {path!s}: OpenCV could not encode a {pixels.shape} {pixels.dtype} "
            f"image as {ext} ({str(exc).strip().splitlines()[-1]}); try writing .png"
        ) from None
    if not ok:
        raise ImageError(
            f"cannot write {path!s}: OpenCV could not encode a {pixels.shape} {pixels.dtype} "
            f"image as {ext}; try writing .png"
        )
    write_bytes_atomically(p, encoded.tobytes(), overwrite=overwrite)
    logger.debug("wrote %s (%dx%d, %d-bit)", p, pixels.shape[1], pixels.shape[0], bit_depth)
    return p


# --------------------------------------------------------------- alpha and array layout


def upscale_alpha(alpha: np.ndarray, *, scale: int) -> np.ndarray:
    """Upscale an alpha plane (H×W float in [0, 1]) by ``scale`` with bicubic interpolation.

    Uses ``cv2.INTER_CUBIC`` and clips to [0, 1] (cubic overshoots at hard edges). Alpha never
    goes through the SR model: models are trained on RGB only.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ImageError(
            f"cannot upscale alpha: scale={scale!r}, expected an integer >= 1; pass the "
            "model's spec.scale"
        )
    if not isinstance(alpha, np.ndarray) or alpha.ndim != 2:
        shape = getattr(alpha, "shape", type(alpha).__name__)
        raise ImageError(
            f"cannot upscale alpha: received {shape}, expected a (height, width) float array; "
            "pass LoadedImage.alpha"
        )
    a = np.asarray(alpha, dtype=np.float32)
    if scale == 1:
        return a.copy()
    height, width = a.shape
    up = cv2.resize(a, (width * int(scale), height * int(scale)), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0.0, 1.0, out=up)


def nchw_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 float RGB -> contiguous float32 (1, 3, H, W), the engines' ``lr`` layout."""
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)[None])


def rgb_from_nchw(sr: np.ndarray, *, index: int = 0) -> np.ndarray:
    """Image ``index`` of an (N, 3, H, W) batch as contiguous float32 H×W×3."""
    return np.ascontiguousarray(np.asarray(sr[index], dtype=np.float32).transpose(1, 2, 0))


# ------------------------------------------------------------------------------ folders


def _hidden(name: str) -> bool:
    return name.startswith(".")


def list_images(folder: PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted by relative path.

    Only :data:`SUPPORTED_EXTENSIONS` (any case) count. Hidden files and folders (names that
    start with '.', which includes this module's temporary files) are skipped; symlinked
    folders are not followed (no cycles). Returns an empty list when nothing matches.
    """
    root = Path(folder)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise ImageError(
            f"cannot list images in {folder!s}: it {what}, expected a folder of images; "
            "check the path"
        )
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        for name in filenames:
            if not _hidden(name) and _is_supported(os.path.splitext(name)[1]):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda f: f.relative_to(root).as_posix())


def mirror_output_path(
    input_file: PathLike,
    *,
    input_root: PathLike,
    output_root: PathLike,
    suffix: str,
    extension: str | None = None,
) -> Path:
    """Where the output of ``input_file`` goes when a folder tree is mirrored.

    ``input_root/a/b/img.png`` -> ``output_root/a/b/img{suffix}.png`` (``extension``, e.g.
    ".png", replaces the input's extension when given). Does not create folders.
    """
    if any(sep in suffix for sep in ("/", "\\", os.sep)):
        raise ImageError(
            f"invalid output suffix {suffix!r}: it contains a path separator, expected a plain "
            "name part such as '_x4'; remove the separator"
        )
    src = Path(os.path.abspath(input_file))
    root = Path(os.path.abspath(input_root))
    try:
        rel = src.relative_to(root)
    except ValueError:
        raise ImageError(
            f"cannot mirror {input_file!s}: it is not inside the input folder {input_root!s}; "
            "pass files found under that folder (list_images)"
        ) from None
    ext = src.suffix if extension is None else extension
    if extension is not None:
        ext = extension if extension.startswith(".") else "." + extension
        if not _is_supported(ext):
            raise ImageError(
                f"invalid output extension {extension!r}, expected one of {_SUPPORTED_LIST}; "
                "pick one of those"
            )
    return Path(output_root) / rel.parent / f"{src.stem}{suffix}{ext}"


__all__ = [
    "ALPHA_EXTENSIONS",
    "LoadedImage",
    "MIN_SIDE_PX",
    "SIXTEEN_BIT_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "check_output_path",
    "encoded_size_bound",
    "list_images",
    "mirror_output_path",
    "nchw_from_rgb",
    "read_image",
    "rgb_from_nchw",
    "upscale_alpha",
    "write_image",
]
