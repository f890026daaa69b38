"""How visible tile seams are in an upscaled image (numpy only): a measure for tests and
``benchmarks/tiling_report.py``, not part of inference."""

from __future__ import annotations

import math

import numpy as np

from edgesr.errors import ConfigError, ImageError
from edgesr.runtime.tiling import check_tiling, check_int, tile_spans

__all__ = ["seam_score"]


def seam_score(sr: np.ndarray, *, tile_px: int, overlap_px: int, scale: int) -> float:
    """How visible the tile seams of ``sr`` are: 1.0 means no seam.

    Mean absolute difference across the lines where two tile cores meet (recomputed with
    :func:`tile_spans` from the LR size ``sr.shape / scale``), divided by the mean absolute
    difference across all other lines *at the same phase*, i.e. the other multiples of
    ``scale`` (the other LR pixel boundaries), over all images and channels, both axes.
    Comparing like with like keeps pixel-replicating upscalers (nearest neighbour), whose
    gradients sit only at LR pixel boundaries, from reading as seams. Accepts (N, C, H, W),
    (C, H, W) or (H, W). Returns 1.0 for a single tile and inf when only the seams vary.
    """
    scale = check_int("scale", scale, minimum=1, hint="pass the model's spec.scale, e.g. 4")
    tile, overlap, _ = check_tiling(tile_px, overlap_px, None)
    if not isinstance(sr, np.ndarray) or sr.ndim not in (2, 3, 4):
        shape = getattr(sr, "shape", type(sr).__name__)
        raise ImageError(
            f"seam_score received sr of shape {shape}, expected (N, C, H, W), (C, H, W) or "
            "(H, W); pass the upscaled array"
        )
    height, width = sr.shape[-2:]
    if height % scale or width % scale:
        raise ConfigError(
            f"seam_score received sr of {width}x{height} px (width x height), not a multiple "
            f"of scale={scale}; pass the scale the image was upscaled with"
        )
    values = np.asarray(sr, dtype=np.float64)
    seam_sum = seam_count = other_sum = other_count = 0.0
    for axis, length in ((-2, height // scale), (-1, width // scale)):
        spans = tile_spans(length, tile_px=tile, overlap_px=overlap)
        seams = {s.core_start for s in spans[1:]}
        for lr_line in range(1, length):
            line = lr_line * scale  # SR index of the first pixel after the boundary
            after = np.take(values, line, axis=axis)
            before = np.take(values, line - 1, axis=axis)
            diff = np.abs(after - before)
            if lr_line in seams:
                seam_sum += float(diff.sum())
                seam_count += diff.size
            else:
                other_sum += float(diff.sum())
                other_count += diff.size
    if seam_count == 0:
        return 1.0
    seam_mean = seam_sum / seam_count
    other_mean = other_sum / other_count if other_count else 0.0
    if other_mean == 0.0:
        return 1.0 if seam_mean == 0.0 else math.inf
    return seam_mean / other_mean
