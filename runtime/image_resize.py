"""``-s/--outscale``: any final scale, as Real-ESRGAN's ``inference_realesrgan.py`` does it.

The network upscales by its own factor; when the requested factor differs, its output is
resized to ``(int(width * outscale), int(height * outscale))`` with ``cv2.INTER_LANCZOS4``,
after quantizing to the bit depth that will be written (Real-ESRGAN resizes the 8/16-bit image
it is about to save, so the same is done here: the final file equals ``cv2.resize`` of the
network-scale file). Alpha is resized the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgesr.errors import ConfigError
from edgesr.runtime.imageio import SIXTEEN_BIT_EXTENSIONS

__all__ = ["outscale_size", "resize_to_outscale"]


def outscale_size(*, height: int, width: int, outscale: float) -> tuple[int, int]:
    """(height, width) of the final image; Real-ESRGAN truncates ``side * outscale``."""
    out_h, out_w = int(height * outscale), int(width * outscale)
    if out_h < 1 or out_w < 1:
        raise ConfigError(
            f"-s/--outscale {outscale:g} makes this {width}x{height} image {out_w}x{out_h}; "
            "pick a factor that leaves at least one pixel per side"
        )
    return out_h, out_w


def _quantized(values: np.ndarray, bit_depth: int) -> tuple[np.ndarray, float]:
    top = 65535.0 if bit_depth == 16 else 255.0
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    return np.rint(np.clip(values, 0.0, 1.0) * np.float32(top)).astype(dtype), top


def _resize_plane(values: np.ndarray, size: tuple[int, int], bit_depth: int) -> np.ndarray:
    """Quantize, resize with Lanczos (OpenCV saturates integer results), back to [0, 1]."""
    quantized, top = _quantized(values, bit_depth)
    out_h, out_w = size
    resized = cv2.resize(quantized, (out_w, out_h), interpolation=cv2.INTER_LANCZOS4)
    return resized.astype(np.float32) / np.float32(top)


def resize_to_outscale(
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    *,
    height: int,
    width: int,
    outscale: float,
    bit_depth: int,
    extension: str,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The network-scale ``rgb`` (H·s×W·s×3 float) and ``alpha`` resized to ``outscale`` times
    the ``height``×``width`` input; unchanged when that is already their size.

    ``bit_depth`` and ``extension`` say what the writer keeps (16 bits only for PNG/TIFF), so
    the values resized are exactly those the file would hold."""
    size = outscale_size(height=height, width=width, outscale=outscale)
    if rgb.shape[:2] == size:
        return rgb, alpha
    depth = bit_depth if extension.lower() in SIXTEEN_BIT_EXTENSIONS else 8
    out_rgb = _resize_plane(rgb, size, depth)
    out_alpha = _resize_plane(alpha, size, depth) if alpha is not None else None
    return out_rgb, out_alpha
