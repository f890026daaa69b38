"""What every engine checks on its way in and out (never imports torch).

:func:`check_lr` (input validation, one-line errors), :func:`pad_for_model` /
:func:`crop_sr` (replicate-pad inputs smaller than ``spec.min_size_px`` or not a multiple of
``spec.size_multiple``, then crop the output), :func:`check_sr` (the output has the shape the
spec promises) and :func:`check_precision` (the graph's precision against a requested one).
:class:`edgesr.runtime.engines.base.BaseEngine` runs them around every engine's inference;
Engines that do not use the base class (TensorRT's builder) import them from here.
"""

from __future__ import annotations

import logging

import numpy as np

from edgesr.errors import ConfigError, ImageError, ModelFileError
from edgesr.spec import PRECISIONS, ModelSpec

logger = logging.getLogger(__name__)

#: Input values this far outside the spec's input range are tolerated (rounding).
RANGE_TOLERANCE = 1e-3


def check_precision(spec: ModelSpec, wanted: str | None, *, source: str) -> str:
    """The precision of the model's graph (``spec.precision``; fp32 when the metadata names
    none edgesr knows), checked against ``wanted`` (None = whatever the graph is).

    Precision is fixed by the ONNX graph's types: no engine converts it (ONNX Runtime runs the
    graph as typed, TensorRT builds strongly typed networks), so a mismatch is a ConfigError
    that says which export to use.
    """
    graph = spec.precision if spec.precision in PRECISIONS else "fp32"
    if wanted is None or wanted == graph:
        return graph
    arch = spec.arch if spec.arch != "unknown" else "<name>"
    if wanted == "fp16":
        fix = f"export an FP16 graph with `edgesr-export --model {arch} --fp16` and pass that file"
    else:
        fix = (f"pass the {wanted} export of the model (`edgesr-export --model {arch}` without "
               "--fp16), or drop the precision request")
    request = " (--fp16)" if wanted == "fp16" else ""
    raise ConfigError(
        f"{source} is an {graph} model, but {wanted} was requested{request}; precision is fixed "
        f"by the ONNX graph's types (engines run it strongly typed, with no switch to convert "
        f"it), so {fix}"
    )


def _input_range(spec: ModelSpec) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in spec.input_range.split(","))
    except ValueError:
        raise ModelFileError(
            f"model metadata input_range={spec.input_range!r}, expected 'low,high' such as '0,1'; "
            "re-export the model"
        ) from None
    return lo, hi


def check_lr(lr: object, spec: ModelSpec, *, engine: str) -> np.ndarray:
    """Validate an engine input and return it as contiguous float32 (N, 3, H, W).

    One-line ImageError for: not an array, not 4-D, not 3 channels, not floating point,
    empty, NaN/inf, or values outside the spec's input range (by more than 1e-3).
    """
    where = f"engine {engine!r} received lr"
    if not isinstance(lr, np.ndarray):
        raise ImageError(f"{where} of type {type(lr).__name__}, expected a numpy array (N, 3, H, W); use numpy.asarray")
    if lr.ndim != 4 or lr.shape[1] != 3:
        raise ImageError(
            f"{where} of shape {lr.shape}, expected (N, 3, H, W) RGB; turn an H×W×3 image into "
            "that with nchw_from_rgb"
        )
    if not np.issubdtype(lr.dtype, np.floating):
        raise ImageError(f"{where} of dtype {lr.dtype}, expected float32 in [0, 1]; divide 8-bit data by 255")
    if min(lr.shape) < 1:
        raise ImageError(f"{where} of shape {lr.shape}, expected N, H, W >= 1; check the image was read")
    x = np.ascontiguousarray(lr, dtype=np.float32)
    lo, hi = _input_range(spec)
    x_min, x_max = float(x.min()), float(x.max())  # NaN propagates into both
    if not (np.isfinite(x_min) and np.isfinite(x_max)):
        raise ImageError(f"{where} containing NaN or infinity, expected finite values in [{lo:g}, {hi:g}]; check the input")
    if x_min < lo - RANGE_TOLERANCE or x_max > hi + RANGE_TOLERANCE:
        raise ImageError(
            f"{where} with values in [{x_min:.4g}, {x_max:.4g}], expected [{lo:g}, {hi:g}] "
            f"(the model's input range); scale the input (8-bit / 255, 16-bit / 65535)"
        )
    return x


def padded_size(size: int, spec: ModelSpec) -> int:
    """The side the model is run at for an input side of ``size`` pixels."""
    target = max(size, spec.min_size_px)
    multiple = max(1, spec.size_multiple)
    return -(-target // multiple) * multiple


def pad_for_model(lr: np.ndarray, spec: ModelSpec) -> tuple[np.ndarray, int, int]:
    """Replicate-pad (bottom/right) ``lr`` to the model's minimum size and size multiple.

    Returns (padded, height, width) with the original height and width for :func:`crop_sr`.
    Models with ESA pool a 3×3 stride-2 conv output with a 7×7 window, so they need 15 px;
    ONNX Runtime does not fail cleanly below that (it can crash the process), hence padding.
    """
    height, width = int(lr.shape[2]), int(lr.shape[3])
    ph, pw = padded_size(height, spec), padded_size(width, spec)
    if (ph, pw) == (height, width):
        return lr, height, width
    logger.debug("padding input %dx%d to %dx%d (min_size_px=%d, size_multiple=%d)",
                 width, height, pw, ph, spec.min_size_px, spec.size_multiple)
    padded = np.pad(lr, ((0, 0), (0, 0), (0, ph - height), (0, pw - width)), mode="edge")
    return np.ascontiguousarray(padded), height, width


def check_sr(sr: object, lr_shape: tuple[int, ...], spec: ModelSpec, *, source: str) -> np.ndarray:
    """The model output as float32, checked to be (N, 3, s·H, s·W) for input (N, 3, H, W)."""
    n, c, h, w = lr_shape
    expected = (n, c, h * spec.scale, w * spec.scale)
    shape = tuple(getattr(sr, "shape", ()))
    if shape != expected:
        raise ModelFileError(
            f"{source} returned shape {shape} for an input of shape {tuple(lr_shape)}, expected "
            f"{expected} (scale {spec.scale}); it is not an x{spec.scale} super-resolution model "
            "(check --scale or the file)"
        )
    return np.asarray(sr, dtype=np.float32)


def crop_sr(sr: np.ndarray, height: int, width: int, spec: ModelSpec) -> np.ndarray:
    """Undo :func:`pad_for_model` on the output: keep the top-left s·H × s·W."""
    s = spec.scale
    if sr.shape[2] == height * s and sr.shape[3] == width * s:
        return sr
    return np.ascontiguousarray(sr[:, :, : height * s, : width * s])


__all__ = [
    "RANGE_TOLERANCE",
    "check_lr",
    "check_precision",
    "check_sr",
    "crop_sr",
    "pad_for_model",
    "padded_size",
]
