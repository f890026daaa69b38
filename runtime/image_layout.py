"""Alpha and array layout between image files and engines (numpy + OpenCV, never torch):
alpha planes are upscaled beside the model (bicubic), RGB goes to engines as NCHW float32.
Re-exported by :mod:`edgesr.runtime.imageio`."""

from __future__ import annotations

import cv2
import numpy as np

from edgesr.errors import ImageError

__all__ = ["nchw_from_rgb", "rgb_from_nchw", "upscale_alpha"]


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
