"""Seamless tiled inference (numpy only, never torch).

An image larger than one tile is cut into a grid of *cores* (at most ``tile_px`` per side,
evenly sized so there is no thin last tile). Each tile sent to the engine is its core plus
``overlap_px`` of **real** image context on every side that has a neighbour; at the image
border a tile simply starts at the border (no fake padding is invented here). So an engine
never receives more than ``tile_px + 2 * overlap_px`` pixels per side. An axis that fits in
that bound is not split at all, so images up to one maximal tile go through in one call.

Blending: each tile's SR output is weighted with a separable raised-cosine ramp of total
width ``blend_px`` (LR pixels, default ``overlap_px``) centred on every core boundary, and the
weighted outputs are summed. Across a boundary the two ramps add up to exactly 1, so the
weights of all tiles sum to 1 everywhere (:func:`blend_weights`; no normalisation pass), as
long as no two ramps of one tile overlap: the ramp is narrowed to the narrowest core where a
core is thinner than ``blend_px`` (possible only with an explicit ``blend_px`` above
``overlap_px``). Every weight that is not zero lies at least ``overlap_px - blend_px / 2``
pixels inside the tile's real context. Consequences:

- for a purely local model whose receptive-field radius is at most
  ``overlap_px - blend_px / 2`` (``overlap_px / 2`` by default) tiled output equals
  whole-image output up to float rounding;
- for models with global statistics (CCA's mean/std, ESA's pooled mask, GroupNorm) tiles
  differ slightly from whole-image inference; the ramp turns what would be a step at the core
  boundary into a smooth transition over ``blend_px * scale`` output pixels;
- ``blend_px=0`` gives plain centre-cropping (exact for radius <= ``overlap_px``).

All N images of the batch go through together, one tile position per ``run`` call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgesr.errors import ConfigError, ImageError

logger = logging.getLogger(__name__)


ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class TileSpan:
    """One tile along one axis, in LR pixels: the core it owns and the input it reads."""

    core_start: int
    core_end: int
    in_start: int
    in_end: int

    @property
    def in_size(self) -> int:
        return self.in_end - self.in_start


def check_int(name: str, value: object, *, minimum: int, hint: str) -> int:
    """``value`` as an int when it is an integer (not a bool) >= ``minimum``; else a one-line
    ConfigError naming ``name`` and ending with ``hint`` (what to do)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(
            f"{name}={value!r} ({type(value).__name__}), expected an integer >= {minimum}; {hint}"
        )
    if value < minimum:
        raise ConfigError(f"{name}={value}, expected an integer >= {minimum}; {hint}")
    return int(value)


def check_tiling(
    tile_px: object, overlap_px: object, blend_px: object | None
) -> tuple[int, int, int]:
    tile = check_int("tile_px", tile_px, minimum=1, hint="pass a tile side in pixels such as 256")
    overlap = check_int(
        "overlap_px", overlap_px, minimum=0, hint="pass the context in pixels such as 16"
    )
    if tile <= 2 * overlap:
        raise ConfigError(
            f"tile_px={tile} must exceed 2*overlap_px={2 * overlap}, otherwise a tile is mostly "
            "context; raise tile_px or lower overlap_px"
        )
    if blend_px is None:
        blend = overlap
    else:
        blend = check_int(
            "blend_px", blend_px, minimum=0, hint="pass 0 (centre crop) up to 2*overlap_px"
        )
        if blend > 2 * overlap:
            raise ConfigError(
                f"blend_px={blend} exceeds 2*overlap_px={2 * overlap}: the ramp would use pixels "
                "without real context; lower blend_px or raise overlap_px"
            )
    return tile, overlap, blend


def tile_spans(length: int, *, tile_px: int, overlap_px: int) -> list[TileSpan]:
    """Split one axis of ``length`` LR pixels into tiles (see the module notes).

    Uses the fewest tiles whose input stays within ``tile_px + 2 * overlap_px``: one when the
    axis fits, two (cores up to ``tile_px + overlap_px``) when that fits, else
    ``ceil(length / tile_px)`` evenly sized cores.
    """
    length = check_int("length", length, minimum=1, hint="pass the image height or width")
    tile, overlap, _ = check_tiling(tile_px, overlap_px, None)
    if length <= tile + 2 * overlap:
        return [TileSpan(0, length, 0, length)]
    if -(-length // 2) <= tile + overlap:
        count = 2
    else:
        count = -(-length // tile)
    cuts = [i * length // count for i in range(count + 1)]
    return [
        TileSpan(a, b, max(0, a - overlap), min(length, b + overlap))
        for a, b in zip(cuts[:-1], cuts[1:])
    ]


def _weights(span: TileSpan, *, length: int, scale: int, blend: int) -> np.ndarray:
    """1-D blend weights over the tile's SR output (``scale * span.in_size`` values)."""
    u = span.in_start + (np.arange(span.in_size * scale, dtype=np.float64) + 0.5) / scale
    w = np.ones_like(u)
    if span.core_start > 0:  # neighbour before: ramp up across core_start
        if blend == 0:
            w[u < span.core_start] = 0.0
        else:
            t = np.clip((u - (span.core_start - blend / 2)) / blend, 0.0, 1.0)
            w *= 0.5 - 0.5 * np.cos(np.pi * t)
    if span.core_end < length:  # neighbour after: ramp down across core_end
        if blend == 0:
            w[u >= span.core_end] = 0.0
        else:
            t = np.clip((u - (span.core_end - blend / 2)) / blend, 0.0, 1.0)
            w *= 0.5 + 0.5 * np.cos(np.pi * t)
    return w


def blend_weights(spans: list[TileSpan], *, length: int, scale: int, blend: int) -> list[np.ndarray]:
    """The 1-D blend weights of each tile of one axis (see the module notes): ``scale *
    span.in_size`` values per span, which add up to 1 at every output pixel of the axis.

    ``blend`` is narrowed to the narrowest core, so the ramps at the two ends of one tile never
    overlap (overlapping ramps would not sum to 1)."""
    if len(spans) > 1:
        blend = min(blend, min(s.core_end - s.core_start for s in spans))
    return [_weights(s, length=length, scale=scale, blend=blend) for s in spans]


def _nonzero_range(w: np.ndarray) -> tuple[int, int]:
    idx = np.flatnonzero(w > 0)
    return int(idx[0]), int(idx[-1]) + 1


def _check_lr(lr: object) -> np.ndarray:
    if not isinstance(lr, np.ndarray):
        raise ImageError(
            f"upscale_tiled received lr of type {type(lr).__name__}, expected a numpy array "
            "(N, 3, H, W); convert it with numpy.asarray"
        )
    if lr.ndim != 4:
        raise ImageError(
            f"upscale_tiled received lr of shape {lr.shape}, expected (N, 3, H, W); add the "
            "batch axis with lr[None] or transpose H×W×3 with nchw_from_rgb"
        )
    if not np.issubdtype(lr.dtype, np.floating):
        raise ImageError(
            f"upscale_tiled received lr of dtype {lr.dtype}, expected float32 in [0, 1]; "
            "divide 8-bit images by 255 (16-bit by 65535)"
        )
    if min(lr.shape) < 1:
        raise ImageError(
            f"upscale_tiled received an empty lr of shape {lr.shape}, expected N, C, H, W >= 1; "
            "check the image was read correctly"
        )
    return np.asarray(lr, dtype=np.float32)


def _run_checked(
    run: Callable[[np.ndarray], np.ndarray], tile: np.ndarray, scale: int
) -> np.ndarray:
    out = run(np.ascontiguousarray(tile))
    n, c, h, w = tile.shape
    expected = (n, c, h * scale, w * scale)
    shape = getattr(out, "shape", None)
    if shape is None or tuple(shape) != expected:
        raise ConfigError(
            f"the engine returned shape {shape} for an input tile of shape {tile.shape}, "
            f"expected {expected} at scale={scale}; pass the model's own scale (spec.scale)"
        )
    return np.asarray(out, dtype=np.float32)


def upscale_tiled(
    lr: np.ndarray,
    run: Callable[[np.ndarray], np.ndarray],
    *,
    scale: int,
    tile_px: int,
    overlap_px: int,
    progress: ProgressCallback | None = None,
    blend_px: int | None = None,
) -> np.ndarray:
    """Upscale ``lr`` (N, C, H, W float) by calling ``run`` on overlapping tiles.

    ``run`` maps an (N, C, h, w) float32 tile to (N, C, scale*h, scale*w); it never receives
    more than ``tile_px + 2 * overlap_px`` pixels per side. ``progress(done, total)`` is called
    after each tile. ``blend_px`` is the width of the cosine ramp across each core boundary
    (LR pixels, default ``overlap_px``, 0 = centre crop, at most ``2 * overlap_px``).
    Returns float32 (N, C, scale*H, scale*W).
    """
    scale = check_int("scale", scale, minimum=1, hint="pass the model's spec.scale, e.g. 4")
    tile, overlap, blend = check_tiling(tile_px, overlap_px, blend_px)
    lr = _check_lr(lr)
    n, c, height, width = lr.shape
    ys = tile_spans(height, tile_px=tile, overlap_px=overlap)
    xs = tile_spans(width, tile_px=tile, overlap_px=overlap)
    total = len(ys) * len(xs)
    if total == 1:
        sr = _run_checked(run, lr, scale)
        if progress is not None:
            progress(1, total)
        return np.ascontiguousarray(sr)

    logger.debug(
        "tiling %dx%d into %dx%d tiles (tile_px=%d, overlap_px=%d, blend_px=%d)",
        width, height, len(xs), len(ys), tile, overlap, blend,
    )
    sr = np.zeros((n, c, height * scale, width * scale), dtype=np.float32)
    wy_all = blend_weights(ys, length=height, scale=scale, blend=blend)
    wx_all = blend_weights(xs, length=width, scale=scale, blend=blend)
    done = 0
    for sy, wy in zip(ys, wy_all):
        y0, y1 = _nonzero_range(wy)
        for sx, wx in zip(xs, wx_all):
            x0, x1 = _nonzero_range(wx)
            out = _run_checked(
                run, lr[:, :, sy.in_start : sy.in_end, sx.in_start : sx.in_end], scale
            )
            w2 = (wy[y0:y1, None] * wx[None, x0:x1]).astype(np.float32)
            oy, ox = sy.in_start * scale, sx.in_start * scale
            sr[:, :, oy + y0 : oy + y1, ox + x0 : ox + x1] += out[:, :, y0:y1, x0:x1] * w2
            done += 1
            if progress is not None:
                progress(done, total)
    return sr  # the weights of every pixel sum to 1 (blend_weights)


__all__ = [
    "TileSpan",
    "blend_weights",
    "check_int",
    "check_tiling",
    "tile_spans",
    "upscale_tiled",
]
