"""Image-quality metrics with the conventions every published SR table uses (numpy only).

No torch here: the runtime and the benchmarks import this module on machines without it.

The SR convention (``psnr_y`` / ``ssim_y``), as in the EDSR/RCAN/IMDN MATLAB evaluation
scripts and BasicSR's ``test_y_channel=True``:

1. both images are brought to 8-bit: float images in [0, 1] are scaled by 255, rounded
   (half away from zero, as MATLAB's ``im2uint8``) and clipped; uint8 images are used as is;
2. ``scale`` pixels are cropped at each border (``crop_border=scale``);
3. the luma Y of ITU-R BT.601 in the 16-235 range is computed in float64 without rounding
   (MATLAB's ``rgb2ycbcr`` on ``im2double`` input, times 255);
4. PSNR uses a peak of 255; SSIM is Wang et al. (2004): 11x11 Gaussian window, sigma 1.5,
   K1 = 0.01, K2 = 0.03, L = 255, statistics over the 'valid' region only, then averaged.

Identical images give ``psnr == float('inf')`` and ``ssim == 1.0``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from edgesr.errors import ConfigError, ImageError

__all__ = ["psnr", "psnr_y", "rgb_to_y", "ssim", "ssim_y"]

# ITU-R BT.601 luma for R, G, B in [0, 1], giving Y in [16, 235] (MATLAB's rgb2ycbcr).
_BT601_Y = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_SSIM_WINDOW_PX = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def _as_image(image: object, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ImageError(
            f"{what} must be a numpy array (HxWx3 RGB, HxW gray); received "
            f"{type(image).__name__}. For a torch tensor use tensor[0].permute(1, 2, 0).cpu().numpy()."
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ImageError(
            f"{what} must be HxWx3 (RGB, channels last) or HxW (gray); received shape "
            f"{image.shape}. NCHW batches must be split and transposed to HWC first."
        )
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise ImageError(
            f"{what} has dtype {image.dtype}; expected uint8 (0-255) or float (0-1)."
        )
    return image


def _to_8bit(image: np.ndarray) -> np.ndarray:
    """uint8 as is; float in [0, 1] scaled to 0-255, rounded half away from zero, clipped."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    return np.clip(np.floor(image.astype(np.float64) * 255.0 + 0.5), 0.0, 255.0)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in the 16-235 range, float64, HxW (not rounded).

    ``image`` is HxWx3 RGB, uint8 (0-255) or float (0-1); an HxW or HxWx1 gray image is
    treated as R = G = B. Float values are used as given (no rounding or clipping here).
    """
    image = _as_image(image, "image")
    rgb = image.astype(np.float64)
    if image.dtype == np.uint8:
        rgb = rgb / 255.0
    if rgb.ndim == 2:
        return 16.0 + rgb * float(_BT601_Y.sum())
    return 16.0 + rgb @ _BT601_Y


def _crop(image: np.ndarray, crop_border: int) -> np.ndarray:
    if crop_border == 0:
        return image
    return image[crop_border:-crop_border, crop_border:-crop_border]


def _check_crop(crop_border: object) -> int:
    if isinstance(crop_border, bool) or not isinstance(crop_border, numbers.Integral) or crop_border < 0:
        raise ConfigError(
            f"crop_border must be an integer >= 0 (the SR convention crops `scale` pixels); "
            f"received {crop_border!r}."
        )
    return int(crop_border)


def _y_pair(sr: np.ndarray, hr: np.ndarray, crop_border: object) -> tuple[np.ndarray, np.ndarray]:
    sr = _as_image(sr, "sr")
    hr = _as_image(hr, "hr")
    if sr.shape != hr.shape:
        raise ImageError(
            f"sr and hr differ in shape: sr {sr.shape}, hr {hr.shape}; expected equal shapes. "
            "Crop hr to a multiple of the scale (edgesr.data.degrade.lr_from_hr) before comparing."
        )
    crop = _check_crop(crop_border)
    if sr.shape[0] <= 2 * crop or sr.shape[1] <= 2 * crop:
        raise ImageError(
            f"images of {sr.shape[0]}x{sr.shape[1]} pixels leave nothing after cropping "
            f"{crop} pixels at each border; expected more than {2 * crop} pixels per side."
        )
    sr8 = _crop(_to_8bit(sr), crop)
    hr8 = _crop(_to_8bit(hr), crop)
    return rgb_to_y(sr8 / 255.0), rgb_to_y(hr8 / 255.0)


def _check_pair(a: object, b: object, data_range: object) -> tuple[np.ndarray, np.ndarray, float]:
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        raise ImageError(
            f"expected two numpy arrays; received {type(a).__name__} and {type(b).__name__}."
        )
    if a.shape != b.shape:
        raise ImageError(f"arrays differ in shape: {a.shape} vs {b.shape}; expected equal shapes.")
    if a.size == 0:
        raise ImageError("arrays are empty; expected at least one element.")
    if (
        isinstance(data_range, bool)
        or not isinstance(data_range, numbers.Real)
        or not math.isfinite(data_range)
        or data_range <= 0
    ):
        raise ConfigError(
            f"data_range must be a finite number > 0 (1.0 for [0, 1] floats, 255 for 8-bit); "
            f"received {data_range!r}."
        )
    return a.astype(np.float64), b.astype(np.float64), float(data_range)


def _psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(data_range * data_range / mse)


def psnr(a: np.ndarray, b: np.ndarray, *, data_range: float) -> float:
    """PSNR in dB between two arrays of equal shape (any dtype, compared in float64).

    ``float('inf')`` when they are identical. For parity checks of float outputs, e.g.
    ``psnr(sr_onnx, sr_torch, data_range=1.0)``.
    """
    a64, b64, peak = _check_pair(a, b, data_range)
    return _psnr(a64, b64, peak)


def psnr_y(sr: np.ndarray, hr: np.ndarray, *, crop_border: int) -> float:
    """PSNR (dB) on the BT.601 Y channel with the SR convention (see the module docstring).

    ``sr`` and ``hr`` are HxWx3 RGB, uint8 or float in [0, 1]; pass ``crop_border=scale``.
    """
    y_sr, y_hr = _y_pair(sr, hr, crop_border)
    return _psnr(y_sr, y_hr, 255.0)


def _gaussian_window_1d() -> np.ndarray:
    radius = _SSIM_WINDOW_PX // 2
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x * x) / (2.0 * _SSIM_SIGMA * _SSIM_SIGMA))
    return g / g.sum()  # the 2-D window (outer product) then sums to 1, as fspecial's


def _filter_valid(image: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation with the symmetric 1-D kernel ``g`` on both axes."""
    k = g.size
    h, w = image.shape
    rows = np.zeros((h - k + 1, w), dtype=np.float64)
    for i in range(k):
        rows += g[i] * image[i : i + h - k + 1]
    out = np.zeros((h - k + 1, w - k + 1), dtype=np.float64)
    for j in range(k):
        out += g[j] * rows[:, j : j + w - k + 1]
    return out


def _ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    if a.ndim != 2:
        raise ImageError(f"ssim compares 2-D (single-channel) arrays; received shape {a.shape}.")
    if min(a.shape) < _SSIM_WINDOW_PX:
        raise ImageError(
            f"SSIM needs at least {_SSIM_WINDOW_PX}x{_SSIM_WINDOW_PX} pixels (after any border "
            f"crop); received {a.shape[0]}x{a.shape[1]}. Use larger images."
        )
    g = _gaussian_window_1d()
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    mu_a = _filter_valid(a, g)
    mu_b = _filter_valid(b, g)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = _filter_valid(a * a, g) - mu_aa
    var_b = _filter_valid(b * b, g) - mu_bb
    cov = _filter_valid(a * b, g) - mu_ab
    ssim_map = ((2.0 * mu_ab + c1) * (2.0 * cov + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float) -> float:
    """SSIM (Wang et al. 2004) of two HxW arrays: 11x11 Gaussian window (sigma 1.5), valid."""
    a64, b64, peak = _check_pair(a, b, data_range)
    return _ssim(a64, b64, peak)


def ssim_y(sr: np.ndarray, hr: np.ndarray, *, crop_border: int) -> float:
    """SSIM on the BT.601 Y channel with the SR convention (see the module docstring).

    ``sr`` and ``hr`` are HxWx3 RGB, uint8 or float in [0, 1]; pass ``crop_border=scale``.
    """
    y_sr, y_hr = _y_pair(sr, hr, crop_border)
    return _ssim(y_sr, y_hr, 255.0)
