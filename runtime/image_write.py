"""Writing images: output-path checks before the work, 8/16-bit quantisation, alpha, and one
atomic, no-clobber write per file (``edgesr.fileio``). What an input was (bit depth, gray,
alpha; :class:`~edgesr.runtime.imageio.LoadedImage`) decides how its output is written:

- **16-bit** is preserved for PNG and TIFF outputs; JPEG, WebP and BMP are 8-bit only, so a
  16-bit image written there is rounded to 8 bits with a logged warning.
- **Writing is atomic and no-clobber** (:func:`edgesr.fileio.write_atomically`): encode in
  memory, write a hidden temporary file in the destination folder, fsync, then link it into
  place, which fails if the output appeared meanwhile (``overwrite`` replaces atomically).
  :func:`check_output_path` refuses an input, an existing file, a read-only folder and a disk
  without room for the image, before any work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from edgesr.errors import ImageError
from edgesr.fileio import check_output_file, write_bytes_atomically
from edgesr.runtime.imageio import (
    ALPHA_EXTENSIONS,
    SIXTEEN_BIT_EXTENSIONS,
    JPEG_QUALITY,
    SUPPORTED_LIST,
    PathLike,
    is_supported,
)

logger = logging.getLogger(__name__)


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
    if not is_supported(out.suffix):
        raise ImageError(
            f"cannot write {output!s}: extension {out.suffix or '(none)'!r} is not supported, "
            f"expected one of {SUPPORTED_LIST}; change the output file name"
        )
    return check_output_file(out, inputs=inputs, overwrite=overwrite,
                             estimate_bytes=estimate_bytes, what="output image")


def encoded_size_bound(*, height: int, width: int, channels: int = 4, bit_depth: int = 16) -> int:
    """Bytes an encoded image of this size can need at most (uncompressed samples): the free
    space asked for before upscaling. Generous on purpose: PNG/JPEG usually need far less."""
    return height * width * channels * (bit_depth // 8) + 64 * 1024


def quantize(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """[0, 1] floats -> uint8/uint16 by clip and round-half-even: the one rounding every writer
    (and edgesr-serve) uses, so their bytes agree."""
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
            pixels = quantize(gray, bit_depth)
        else:
            g = quantize(gray, bit_depth)
            pixels = np.dstack([g, g, g, quantize(np.asarray(alpha, np.float32), bit_depth)])
    else:
        bgr = quantize(rgb32[:, :, ::-1], bit_depth)
        if alpha is None:
            pixels = bgr
        else:
            pixels = np.dstack([bgr, quantize(np.asarray(alpha, np.float32), bit_depth)])

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
