"""MATLAB-compatible bicubic resizing: how every published SR number makes its LR images.

``imresize`` follows MATLAB's ``imresize(A, scale, 'bicubic')`` (Image Processing Toolbox):

* cubic convolution kernel with a = -0.5 (Keys 1981), kernel width 4;
* antialiasing when shrinking: the kernel is stretched by ``1/scale`` (and scaled by
  ``scale``), so a x4 reduction reads 16 + 2 input pixels per output pixel;
* the pixel-centre mapping ``u = x/scale + 0.5 * (1 - 1/scale)`` (1-based), so output
  pixel centres fall between input pixel centres exactly as MATLAB places them;
* borders by index mirroring over ``[1..n, n..1]`` (half-sample symmetric, the edge pixel
  repeated), applied periodically when the kernel reaches further than the image;
* the output size is ``ceil(scale * size)``; when only ``height`` or ``width`` is given the
  other side keeps the aspect ratio (MATLAB's ``[M NaN]`` form);
* one separable pass per axis, the axis with the smaller scale first (rows first on ties);
* integer images (uint8, uint16, int8, int16) come back in their own type, rounded half
  away from zero and clipped **after each pass**, as MATLAB's ``imresizemex`` does. This
  matters: it reproduces MATLAB's uint8 reference outputs exactly, where rounding only at
  the end is off by one in about a quarter of the pixels of the MATLAB reference cases
  (see ``tests/test_degrade.py``).
  Float images are resized in float64 and returned in their own float type, not clipped
  (bicubic overshoots).

Everything is vectorised: per axis a small (out, taps) weight matrix and index matrix is
built once (and cached), then the pass is a loop over the taps (at most 4/scale + 2), each
one a gather and a multiply-add over the whole image.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from edgesr.errors import ConfigError, ImageError

__all__ = ["imresize", "lr_from_hr"]

_KERNEL_WIDTH = 4.0  # the cubic kernel is non-zero on (-2, 2)
_INTEGER_DTYPES = (np.uint8, np.uint16, np.int8, np.int16)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1.0)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1.0) & (ax <= 2.0))
    return inner + outer


@functools.lru_cache(maxsize=256)
def _contributions(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out, taps) and 0-based input indices (out, taps) along one axis.

    Mirrors MATLAB's ``contributions`` subfunction: weights are normalised per output
    pixel over all taps, indices are mirrored over ``[1..n, n..1]``, and taps whose weight
    is zero for every output pixel are dropped.
    """
    if scale < 1.0:  # antialiasing: stretch the kernel over 1/scale input pixels
        kernel_width = _KERNEL_WIDTH / scale

        def kernel(d: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * d)

    else:
        kernel_width = _KERNEL_WIDTH
        kernel = _cubic

    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # matching input coordinates (1-based)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)

    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]

    used = np.any(weights != 0.0, axis=0)
    weights = np.ascontiguousarray(weights[:, used])
    indices = np.ascontiguousarray(indices[:, used])
    weights.flags.writeable = False
    indices.flags.writeable = False
    return weights, indices


def _round_clip(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round half away from zero and clip to the integer type's range (MATLAB casting)."""
    info = np.iinfo(dtype)
    rounded = np.sign(values) * np.floor(np.abs(values) + 0.5)
    return np.clip(rounded, info.min, info.max)


def _resize_axis(
    image: np.ndarray, axis: int, out_length: int, scale: float, dtype: np.dtype
) -> np.ndarray:
    weights, indices = _contributions(image.shape[axis], out_length, scale)
    moved = np.moveaxis(image, axis, 0)
    extra = (1,) * (moved.ndim - 1)
    out = np.zeros((out_length,) + moved.shape[1:], dtype=np.float64)
    for tap in range(weights.shape[1]):
        out += weights[:, tap].reshape((-1,) + extra) * moved[indices[:, tap]]
    if np.issubdtype(dtype, np.integer):
        out = _round_clip(out, dtype)
    return np.moveaxis(out, 0, axis)


def _check_image(image: object, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ImageError(
            f"{what} must be a numpy array (HxW or HxWxC); received {type(image).__name__}. "
            "Convert it with numpy.asarray(...) first."
        )
    if image.ndim not in (2, 3):
        raise ImageError(
            f"{what} must be HxW or HxWxC; received an array of shape {image.shape}. "
            "For NCHW tensors, resize each image after moving channels last."
        )
    if image.shape[0] == 0 or image.shape[1] == 0 or (image.ndim == 3 and image.shape[2] == 0):
        raise ImageError(f"{what} is empty (shape {image.shape}); expected at least 1x1 pixels.")
    if not (np.issubdtype(image.dtype, np.floating) or image.dtype.type in _INTEGER_DTYPES):
        raise ImageError(
            f"{what} has dtype {image.dtype}; expected a float type or uint8/uint16/int8/int16. "
            "Convert it with .astype(numpy.float64) (or to uint8) first."
        )
    return image


def _positive_size(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ConfigError(f"{name} must be a positive integer; received {value!r}.")
    return int(value)


def _resize(image: np.ndarray, sizes: tuple[int, int], scales: tuple[float, float]) -> np.ndarray:
    dtype = image.dtype
    out = image.astype(np.float64)
    # MATLAB resizes along the axis with the smaller scale factor first (rows on ties).
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        if sizes[axis] == image.shape[axis] and scales[axis] == 1.0:
            continue  # identity pass: weights are exactly 1 at the same pixel
        out = _resize_axis(out, axis, sizes[axis], scales[axis], dtype)
    return out.astype(dtype)


def imresize(
    image: np.ndarray,
    *,
    scale: float | None = None,
    height: int | None = None,
    width: int | None = None,
) -> np.ndarray:
    """Resize an HxW or HxWxC image with MATLAB's ``imresize(..., 'bicubic')`` semantics.

    Give either ``scale`` (output ``ceil(scale * size)``, e.g. ``scale=1/4`` for x4 LR), or
    ``height`` and/or ``width`` in pixels (one of them alone keeps the aspect ratio). The
    result has the input's dtype: integer images are rounded and clipped after each pass as
    MATLAB does; float images are not clipped. To get unrounded values from a uint8 image,
    pass ``image.astype(numpy.float64)`` (or ``/ 255``).
    """
    image = _check_image(image, "image")
    in_h, in_w = image.shape[:2]
    if scale is not None:
        if height is not None or width is not None:
            raise ConfigError(
                f"imresize got scale={scale!r} together with height={height!r}/width={width!r}; "
                "expected either scale or an output size. Pass only one of them."
            )
        if (
            isinstance(scale, bool)
            or not isinstance(scale, numbers.Real)
            or not math.isfinite(scale)
            or scale <= 0
        ):
            raise ConfigError(
                f"scale must be a finite number > 0 (e.g. 1/4 to shrink x4); received {scale!r}."
            )
        s = float(scale)
        sizes = (math.ceil(s * in_h), math.ceil(s * in_w))
        scales = (s, s)
    elif height is not None and width is not None:
        sizes = (_positive_size(height, "height"), _positive_size(width, "width"))
        scales = (sizes[0] / in_h, sizes[1] / in_w)
    elif height is not None:
        out_h = _positive_size(height, "height")
        s = out_h / in_h
        sizes, scales = (out_h, math.ceil(s * in_w)), (s, s)
    elif width is not None:
        out_w = _positive_size(width, "width")
        s = out_w / in_w
        sizes, scales = (math.ceil(s * in_h), out_w), (s, s)
    else:
        raise ConfigError(
            "imresize needs a target: received neither scale nor height/width. "
            "Pass scale=... (e.g. 0.25) or height=..., width=...."
        )
    return _resize(image, sizes, scales)


def lr_from_hr(hr: np.ndarray, *, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``hr`` to a multiple of ``scale`` and bicubic-downscale it (MATLAB convention).

    Returns ``(hr_cropped, lr)``; ``hr_cropped`` is a view of the top-left
    ``(H - H % scale) x (W - W % scale)`` region and ``lr`` is exactly ``scale`` times
    smaller, in ``hr``'s dtype (uint8 in, uint8 out, as the published LR images are made).
    """
    hr = _check_image(hr, "hr")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or int(scale) < 1:
        raise ConfigError(f"scale must be a positive integer (2, 3, 4, ...); received {scale!r}.")
    s = int(scale)
    h, w = hr.shape[0] - hr.shape[0] % s, hr.shape[1] - hr.shape[1] % s
    if h == 0 or w == 0:
        raise ImageError(
            f"hr is {hr.shape[0]}x{hr.shape[1]} pixels, smaller than the scale {s}; "
            f"expected at least {s}x{s}. Use a larger image or a smaller scale."
        )
    hr_cropped = hr[:h, :w]
    if s == 1:
        return hr_cropped, hr_cropped.copy()
    lr = _resize(hr_cropped, (h // s, w // s), (1.0 / s, 1.0 / s))
    return hr_cropped, lr
