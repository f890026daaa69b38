"""The ``edgesr-run`` pipeline: image file -> tiled inference through an engine -> image file.

numpy + OpenCV only (never torch); any :class:`~edgesr.runtime.engines.protocol.Engine` works.

Steps for one file (:func:`upscale_file`; folder mode is :mod:`edgesr.runtime.upscale_folder`):
check the output path first (:func:`~edgesr.runtime.image_write.check_output_path`: supported
extension, existing folder, never an input, no silent overwrite), read the image
(:func:`~edgesr.runtime.imageio.read_image`: 8/16-bit, gray, alpha, palette, CMYK, EXIF
orientation), plan the tiling, run the engine on the RGB (NCHW float32), upscale alpha
separately (bicubic), write atomically with the input's bit depth and gray-ness.

Tile size rule (:func:`plan_tiling`), in LR pixels:

- ``tile_px=None`` (the default, no ``--tile``), engines without a fixed input range (ONNX
  Runtime on the CPU or CUDA, torch): the budget tile, so the whole image when it fits
  (measured: small tiles never won on a CPU; ``tile_plan``'s notes).
- ``tile_px=None``, engines with one (TensorRT): ``min(advised, budget tile)``. ``advised`` is
  the export's advice (``edgesr.tile_px``), adjusted when ``--overlap`` differs from the
  advised overlap so that the engine input ``tile + 2 * overlap`` stays at the advised
  ``tile_px + 2 * overlap_px``: never larger, because the TensorRT engine's optimisation
  profile ends there (``TrtEngine`` refuses bigger inputs). The budget tile is
  :func:`~edgesr.runtime.tile_plan.tile_px_from_budget` for the memory budget (default
  :data:`DEFAULT_MEMORY_BUDGET_MB`), the model's scale and precision, and
  :data:`PEAK_VALUES_PER_PIXEL`. An image no larger than one tile plus its context
  (``tile + 2 * overlap`` per side) goes through in a single call, so tiling only happens
  when it is needed.
- ``tile_px > 0`` (``--tile PX``): that size, whatever the advice (a warning is logged when it
  exceeds the memory budget).
- ``tile_px == 0`` (``--tile 0``): the whole image in one call, refused with a
  :class:`ConfigError` when its estimated memory exceeds the budget (the message says to drop
  ``--tile 0`` so the image is tiled, or to raise the budget).
- ``overlap_px`` defaults to the export's advice (``edgesr.overlap_px``).

Memory estimate (:func:`estimate_inference_bytes`): ``bytes_per_value * H * W *
(PEAK_VALUES_PER_PIXEL + 3 + 3 * scale²)`` for an H×W engine input (the model of
:func:`~edgesr.runtime.tile_plan.inference_bytes`). The constant was measured:
the shipped deployment-form graphs in ONNX Runtime's CPU provider peak at 1,402-1,673
float32 values per LR pixel (with its memory arena; OSFFNet x4 at 320x180: 379 MiB), 1,792
keeps the estimate 7% above the largest (it was 2,048, 17-44% above). It is
conservative for TensorRT, which reuses activation memory more aggressively, and for the
smaller baselines. The full-size SR output (float32, 3·s²·H·W values) and the blend weights
live in host memory in addition, whatever the tile size.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesr.image_guard import DEFAULT_MAX_PIXELS
from edgesr.runtime.engines.protocol import Engine
from edgesr.runtime.image_resize import outscale_size, resize_to_outscale
from edgesr.runtime.image_write import check_output_path, encoded_size_bound, write_image
from edgesr.runtime.output_budget import DEFAULT_MAX_OUTPUT_MB, check_output_budget
from edgesr.runtime.imageio import (
    LoadedImage,
    nchw_from_rgb,
    read_image,
    rgb_from_nchw,
    upscale_alpha,
)
from edgesr.runtime.tile_plan import DEFAULT_MEMORY_BUDGET_MB, MIB, TilingPlan, plan_tiling
from edgesr.runtime.tiling import ProgressCallback, upscale_tiled

logger = logging.getLogger(__name__)

#: Show a tile progress bar from this many tiles on (the CLI's choice; exported for it).
TILE_PROGRESS_MIN_TILES = 4

#: ``tile_progress(total_tiles)`` returns a ``progress(done, total)`` callback or None.
TileProgressFactory = Callable[[int], "ProgressCallback | None"]


@dataclass(frozen=True, kw_only=True)
class UpscaleResult:
    """What :func:`upscale_file` did."""

    input_path: Path
    output_path: Path
    width: int
    height: int
    out_width: int
    out_height: int
    plan: TilingPlan
    inference_ms: float
    total_ms: float


# ----------------------------------------------------------------------- running


def upscale_image(
    image: LoadedImage,
    engine: Engine,
    *,
    plan: TilingPlan,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(SR RGB H×W×3 float32, upscaled alpha or None, inference time in ms).

    Always through :func:`~edgesr.runtime.tiling.upscale_tiled`: a whole-image plan (tile =
    the longer side, no overlap) is one tile, run in one engine call."""
    scale = engine.spec.scale
    lr = nchw_from_rgb(image.rgb)
    start = time.perf_counter()
    sr = upscale_tiled(lr, engine.run, scale=scale, tile_px=plan.tile_px,
                       overlap_px=plan.overlap_px, progress=progress)
    inference_ms = (time.perf_counter() - start) * 1000.0
    alpha = upscale_alpha(image.alpha, scale=scale) if image.alpha is not None else None
    return rgb_from_nchw(sr), alpha, inference_ms


def upscale_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    engine: Engine,
    tile_px: int | None = None,
    overlap_px: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_MB * MIB,
    overwrite: bool = False,
    tile_progress: TileProgressFactory | None = None,
    image: LoadedImage | None = None,
    plan: TilingPlan | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    outscale: float | None = None,
    max_output_mb: int = DEFAULT_MAX_OUTPUT_MB,
) -> UpscaleResult:
    """Upscale one image file into ``output_path`` (format from its extension) with an open
    ``engine``.

    A caller that already read ``input_path`` (to check it, or to plan before opening the
    engine, as ``edgesr-run`` does) passes it as ``image``, and its ``plan`` (then ``tile_px``,
    ``overlap_px`` and ``memory_budget_bytes`` are not used); otherwise both are made here.
    ``total_ms`` counts from this call (not the caller's earlier read). ``max_pixels`` bounds
    the input (read from its header, before decoding). The output is committed without
    replacing a file that appeared meanwhile, unless ``overwrite``. ``outscale`` (None = the
    model's scale) resizes the network's output as Real-ESRGAN's ``-s`` does
    (:mod:`~edgesr.runtime.image_resize`). An output larger than ``max_output_mb`` as float32
    is refused before the work (:mod:`~edgesr.runtime.output_budget`).
    """
    start = time.perf_counter()
    check_output_path(output_path, inputs=[input_path], overwrite=overwrite)
    if image is None:
        image = read_image(input_path, max_pixels=max_pixels)
    scale = engine.spec.scale
    check_output_budget(source=input_path, width=image.width, height=image.height, scale=scale,
                        outscale=outscale, alpha=image.has_alpha, max_output_mb=max_output_mb)
    final_h, final_w = outscale_size(height=image.height, width=image.width,
                                     outscale=scale if outscale is None else outscale)
    out = check_output_path(  # again, now that the size (and so the free space needed) is known
        output_path, inputs=[input_path], overwrite=overwrite,
        estimate_bytes=encoded_size_bound(height=final_h, width=final_w),
    )
    if plan is None:
        plan = plan_tiling(height=image.height, width=image.width, spec=engine.spec, tile_px=tile_px,
                           overlap_px=overlap_px, memory_budget_bytes=memory_budget_bytes,
                           limit_to_advice=getattr(engine, "tiles_limited_to_advice", True))
    progress = tile_progress(plan.tiles) if tile_progress is not None else None
    rgb, alpha, inference_ms = upscale_image(image, engine, plan=plan, progress=progress)
    if outscale is not None:
        rgb, alpha = resize_to_outscale(rgb, alpha, height=image.height, width=image.width,
                                        outscale=outscale, bit_depth=image.bit_depth,
                                        extension=out.suffix)
    write_image(out, rgb=rgb, alpha=alpha, bit_depth=image.bit_depth, is_gray=image.is_gray,
                inputs=[input_path], overwrite=overwrite)
    return UpscaleResult(
        input_path=Path(input_path), output_path=out, width=image.width, height=image.height,
        out_width=rgb.shape[1], out_height=rgb.shape[0], plan=plan, inference_ms=inference_ms,
        total_ms=(time.perf_counter() - start) * 1000.0,
    )


__all__ = [
    "TILE_PROGRESS_MIN_TILES",
    "UpscaleResult",
    "upscale_file",
    "upscale_image",
]
