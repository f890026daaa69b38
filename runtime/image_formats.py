"""What the image containers say about themselves, read from their bytes: the format,
PNG chunks, JPEG/WebP/TIFF EXIF orientation and alpha, and which TIFF layouts OpenCV
orients or premultiplies on decode (probed once on tiny files made here)."""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Iterable

import cv2
import numpy as np

from edgesr.image_guard import image_kind

logger = logging.getLogger(__name__)

def sniff(data: bytes) -> str | None:
    """The container format from the magic bytes, or None when it is none of ours (the one
    table of signatures lives in :mod:`edgesr.image_guard`, which checks it before reading)."""
    return image_kind(data)


def png_chunks(data: bytes) -> Iterable[tuple[bytes, int, int]]:
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


def png_info(data: bytes) -> tuple[int, bool, bytes | None]:
    """(IHDR colour type, IEND present and complete, eXIf payload or None)."""
    color_type = -1
    complete = False
    exif = None
    for ctype, start, end in png_chunks(data):
        if end > len(data):
            break
        if ctype == b"IHDR" and end - start >= 10:
            color_type = data[start + 9]
        elif ctype == b"eXIf":
            exif = data[start:end]
        elif ctype == b"IEND":
            complete = True
    return color_type, complete, exif


def jpeg_info(data: bytes) -> tuple[bool, bytes | None]:
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


def webp_info(data: bytes) -> tuple[bool, bytes | None]:
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


def tiff_ifd0(block: bytes) -> dict[int, int]:
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
TAG_SAMPLES_PER_PIXEL = 0x0115


def exif_orientation(block: bytes | None) -> int:
    if not block:
        return 1
    if block.startswith(b"Exif\x00\x00"):  # some writers keep the APP1 prefix in eXIf/EXIF
        block = block[6:]
    value = tiff_ifd0(block).get(_TAG_ORIENTATION, 1)
    return value if 1 <= value <= 8 else 1


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
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


def tiny_tiff(tags: dict[int, tuple[int, list[int]]], pixels: bytes) -> bytes:
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


def probe_decode(blob: bytes) -> np.ndarray | None:
    try:
        return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


@functools.lru_cache(maxsize=1)
def opencv_orients_tiff() -> bool:
    """Whether this OpenCV's TIFF decoder applies the Orientation tag under IMREAD_UNCHANGED.

    Decodes a hand-made 2×1 gray TIFF with Orientation=2 (mirror): the pixels come back
    swapped exactly when the decoder already applied it (OpenCV 5 does).
    """
    blob = tiny_tiff(
        {256: (3, [2]), 257: (3, [1]), 258: (3, [8]), 259: (3, [1]), 262: (3, [1]),
         274: (3, [2]), 277: (3, [1]), 278: (3, [1])},
        bytes([10, 200]),
    )
    probe = probe_decode(blob)
    applied = probe is not None and int(probe.reshape(-1)[0]) == 200
    logger.debug("OpenCV %s TIFF decoder applies Orientation itself: %s", cv2.__version__, applied)
    return applied


@functools.lru_cache(maxsize=2)
def opencv_premultiplies_tiff(bits: int) -> bool:
    """Whether this OpenCV returns premultiplied colour for an unassociated-alpha RGBA TIFF.

    OpenCV decodes 8-bit TIFFs through libtiff's RGBA interface, which converts unassociated
    alpha (ExtraSamples=2, what Pillow/GIMP write) to associated (premultiplied) colour;
    16-bit TIFFs are read raw. A 1×1 probe with colour (0.8, 0.4, 0.2) at alpha 0.5 decides.
    """
    top = (1 << bits) - 1
    values = [round(0.8 * top), round(0.4 * top), round(0.2 * top), round(0.5 * top)]
    pixels = bytes(values) if bits == 8 else struct.pack("<4H", *values)
    blob = tiny_tiff(
        {256: (3, [1]), 257: (3, [1]), 258: (3, [bits] * 4), 259: (3, [1]), 262: (3, [2]),
         277: (3, [4]), 278: (3, [1]), 284: (3, [1]), 338: (3, [2])},
        pixels,
    )
    probe = probe_decode(blob)
    premultiplied = (
        probe is not None and probe.ndim == 3 and probe.shape[2] == 4
        and abs(int(probe[0, 0, 2]) - values[0] * values[3] / top) < 0.01 * top
    )
    logger.debug(
        "OpenCV %s premultiplies %d-bit RGBA TIFF: %s", cv2.__version__, bits, premultiplied
    )
    return premultiplied


_TAG_EXTRA_SAMPLES = 338


def tiff_colour_is_premultiplied(data: bytes, dtype: np.dtype) -> bool:
    """Whether OpenCV handed back premultiplied colour for this RGBA TIFF.

    ExtraSamples=1 (associated alpha) is premultiplied in the file itself; ExtraSamples=2
    (unassociated) is premultiplied by OpenCV's decoder for 8-bit data (see the probe).
    """
    extra = tiff_ifd0(data).get(_TAG_EXTRA_SAMPLES)
    if extra == 1:
        return True
    if extra == 2 and dtype in (np.uint8, np.uint16):
        return opencv_premultiplies_tiff(8 if dtype == np.uint8 else 16)
    return False
