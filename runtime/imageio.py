"""Reading images for ``edgesr-run`` (numpy + OpenCV only, never torch); writing them is
:mod:`edgesr.runtime.image_write`.

Formats: PNG, JPEG, WebP, TIFF and BMP, 8- and 16-bit, gray, gray+alpha, RGB and RGBA.
Everything the model sees is float32 RGB in [0, 1]; what the file was (bit depth, gray,
alpha) is remembered in :class:`LoadedImage` so the output can be written the same way.

How each case is decided (EXIF orientation, gray, palette, CMYK, float TIFF, alpha, RGBA TIFF
colour, bounded input) is written out in ``docs/run.md``, "Image formats in detail"; each
decision is tested in ``tests/test_runtime_imageio.py``.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from edgesr.errors import ImageError
from edgesr.image_guard import (
    DEFAULT_MAX_PIXELS,
    native_stderr_captured,
    probe_header,
    read_regular_file,
)

from edgesr.runtime.image_formats import (
    TAG_SAMPLES_PER_PIXEL,
    exif_orientation,
    jpeg_info,
    opencv_orients_tiff,
    orient,
    png_info,
    sniff,
    tiff_colour_is_premultiplied,
    tiff_ifd0,
    webp_info,
)
# re-exported: a caller reads an image and lays it out for an engine in one import
from edgesr.runtime.image_layout import nchw_from_rgb, rgb_from_nchw, upscale_alpha

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

SUPPORTED_LIST = " ".join(SUPPORTED_EXTENSIONS)


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


def is_supported(ext: str) -> bool:
    return ext.lower() in SUPPORTED_EXTENSIONS


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


def _container_info(data: bytes, kind: str, path: PathLike) -> tuple[int, bytes | None]:
    """(PNG colour type or -1, the bytes holding EXIF or None); refuses truncated data."""
    color_type, exif, complete = -1, None, True
    if kind == "png":
        _refuse_zero_size_png(data, path)
        color_type, complete, exif = png_info(data)
    elif kind == "jpeg":
        complete, exif = jpeg_info(data)
    elif kind == "webp":
        complete, exif = webp_info(data)
    elif kind == "tiff":
        exif = data
    if not complete:
        raise ImageError(
            f"cannot read image {path!s}: the {kind.upper()} data is truncated "
            f"({len(data)} bytes, the end-of-image marker is missing); re-create or "
            "re-download the file"
        )
    return color_type, exif


def _decode_oriented(data: bytes, kind: str, exif: bytes | None, path: PathLike) -> np.ndarray:
    """OpenCV's pixels (BGR order, H×W or H×W×C) turned the way viewers show them."""
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
    orientation = exif_orientation(exif)
    if kind == "tiff" and opencv_orients_tiff():
        orientation = 1
    if orientation != 1:
        logger.debug("%s: applying EXIF orientation %d", path, orientation)
        raw = orient(raw, orientation)
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[:, :, 0]
    return raw


def _checked_channels(raw: np.ndarray, path: PathLike) -> int:
    """1, 3 or 4; refuses other layouts and images below the minimum side."""
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
    return channels


def _rgb_and_alpha(values: np.ndarray, channels: int, *, gray_alpha: bool
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Straight RGB (H×W×3) and the alpha plane (or None) from OpenCV's unit-float channels."""
    if channels == 1:
        return np.repeat(values[:, :, None], 3, axis=2), None
    alpha = np.ascontiguousarray(values[:, :, 3]) if channels == 4 else None
    if gray_alpha:  # PNG gray+alpha: OpenCV expands it to BGRA with equal colour channels
        return np.repeat(values[:, :, :1], 3, axis=2), alpha
    return np.ascontiguousarray(values[:, :, 2::-1]), alpha


def read_image(path: PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file into float32 RGB [0, 1] (+ separate alpha); see the module notes.

    Raises :class:`ImageError` (one line, with what to do) for a missing path, a folder, a
    FIFO or device, an unsupported extension, an empty, truncated or corrupt file, a file that
    is not an image, more than ``max_pixels`` pixels or more than one frame (both read from
    the header, before decoding), unsupported sample types, and images smaller than 2×2.
    """
    p = Path(path)
    if p.exists() and not p.is_dir() and not is_supported(p.suffix):
        raise ImageError(
            f"cannot read image {path!s}: extension {p.suffix or '(none)'!r} is not supported, "
            f"expected one of {SUPPORTED_LIST}; convert the file to PNG"
        )
    # empty files and other signatures were refused after the first bytes (image_guard)
    data = _read_bytes(p, path, max_pixels=max_pixels)
    kind = sniff(data)
    color_type, exif = _container_info(data, kind, path)
    probe_header(data, source=str(path), max_pixels=max_pixels)  # size and frames, undecoded
    raw = _decode_oriented(data, kind, exif, path)
    channels = _checked_channels(raw, path)

    values, bit_depth = _to_unit_float(raw, path)
    is_gray = channels == 1 or (kind == "png" and color_type == 4)
    rgb, alpha = _rgb_and_alpha(values, channels, gray_alpha=channels == 4 and is_gray)
    if kind == "tiff" and alpha is not None and tiff_colour_is_premultiplied(data, raw.dtype):
        # Straight (unassociated) colour is what PNG/WebP hold and what the model expects.
        logger.debug("%s: un-premultiplying TIFF colour by alpha", path)
        safe = np.where(alpha > 0, alpha, 1.0)[:, :, None]
        rgb = np.where(alpha[:, :, None] > 0, np.clip(rgb / safe, 0.0, 1.0), 0.0)
    if kind == "tiff" and channels == 1 and tiff_ifd0(data).get(TAG_SAMPLES_PER_PIXEL) == 2:
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


__all__ = [
    "ALPHA_EXTENSIONS",
    "LoadedImage",
    "MIN_SIDE_PX",
    "SIXTEEN_BIT_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "nchw_from_rgb",
    "read_image",
    "rgb_from_nchw",
    "upscale_alpha",
]
