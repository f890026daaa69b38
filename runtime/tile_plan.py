"""How one image goes through the engine: whole, or in tiles sized from the model's advice
and a memory budget (the rule is in ``edgesr.runtime.upscale``'s module notes).

The tile maths (spans, blending) are in :mod:`edgesr.runtime.tiling`; this module holds the
memory model and chooses sizes. On a CPU, small tiles never won (docs/performance.md "Tiles on a
CPU", measured by ``edgesr-bench floor ... --tiles``): at 320x180, OSFFNet x4 in 128 px
tiles took 1.08x the whole image; at 960x540, LKDN x4 in 128 px tiles 0.95x and in 328 or
480 px tiles 0.82x. So engines without a fixed input range take the largest tile the memory
budget allows (344 px at the default 1 GiB), and the whole image when it fits.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from edgesr.errors import ConfigError
from edgesr.runtime.engines.checks import padded_size
from edgesr.runtime.tiling import check_int, tile_spans
from edgesr.spec import ModelSpec

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
#: Default memory budget for one engine call (``--memory-budget-mb``).
DEFAULT_MEMORY_BUDGET_MB = 1024
#: Peak live values per input pixel inside the engine: ONNX Runtime's CPU provider on the
#: shipped deployment-form graphs peaked at 1,402-1,673 float32 values per LR pixel besides
#: the input and output (LKDN, OSFFNet, LMFN x4 at 160x90 to 480x270, peak RSS over the
#: resident size before the call); 1,792 keeps the estimate 7% above the largest.
PEAK_VALUES_PER_PIXEL = 1792
#: Bounds of the tile size chosen from a memory budget.
MIN_TILE_PX = 64
MAX_TILE_PX = 2048
TILE_MULTIPLE = 8


def inference_bytes(
    *, height: int, width: int, scale: int, channels_estimate: int, bytes_per_value: int
) -> int:
    """Engine memory for one call on a ``height`` × ``width`` input (the model of
    :func:`tile_px_from_budget`): ``bytes_per_value * height * width * (channels_estimate + 3
    + 3 * scale²)``, i.e. the live activations plus the input and the output tile."""
    return bytes_per_value * height * width * (channels_estimate + 3 + 3 * scale * scale)


def tile_px_from_budget(
    *,
    budget_bytes: int,
    scale: int,
    channels_estimate: int,
    bytes_per_value: int = 4,
    overlap_px: int = 0,
) -> int:
    """A default ``tile_px`` whose tiles fit a memory budget.

    Model: a tile of side t = tile_px + 2*overlap_px (what the engine receives) needs about
    ``bytes_per_value * t² * (channels_estimate + 3 + 3 * scale²)`` bytes: the live
    activations (``channels_estimate`` feature maps of t×t, the peak number of channels alive
    at once, e.g. a few hundred for OSFFNet's concatenations), the input tile and the output
    tile. Solved for t, minus the overlap, rounded down to a multiple of 8 and clamped to
    [64, 2048] (a budget too small for 64 logs a warning and returns 64).
    """
    budget = check_int(
        "budget_bytes", budget_bytes, minimum=1, hint="pass free device memory, e.g. 2 * 1024**3"
    )
    scale = check_int("scale", scale, minimum=1, hint="pass the model's spec.scale, e.g. 4")
    channels = check_int(
        "channels_estimate", channels_estimate, minimum=1,
        hint="pass the peak number of live feature channels, e.g. 256",
    )
    width = check_int(
        "bytes_per_value", bytes_per_value, minimum=1, hint="pass 4 for fp32 or 2 for fp16"
    )
    overlap = check_int(
        "overlap_px", overlap_px, minimum=0, hint="pass the context in pixels such as 16"
    )
    per_pixel = inference_bytes(
        height=1, width=1, scale=scale, channels_estimate=channels, bytes_per_value=width
    )
    side = math.isqrt(budget // per_pixel) if budget >= per_pixel else 0
    tile = (side - 2 * overlap) // TILE_MULTIPLE * TILE_MULTIPLE
    if tile < MIN_TILE_PX:
        logger.warning(
            "a memory budget of %d bytes fits tiles of only %d px (scale %d, %d channels); "
            "using the minimum %d px",
            budget, max(tile, 0), scale, channels, MIN_TILE_PX,
        )
        return MIN_TILE_PX
    return min(tile, MAX_TILE_PX)



@dataclass(frozen=True, kw_only=True)
class TilingPlan:
    """How one image goes through the engine."""

    whole_image: bool  # one engine call on the whole image (``--tile 0``)
    tile_px: int  # core size in LR px (the image's longer side for whole_image)
    overlap_px: int
    tiles: int
    estimated_bytes: int  # engine memory per call (estimate)
    rule: str  # why this tile size: "--tile", "--tile 0", "model advice", "memory budget"


def _bytes_per_value(spec: ModelSpec) -> int:
    return 2 if spec.precision == "fp16" else 4


def estimate_inference_bytes(*, height: int, width: int, spec: ModelSpec) -> int:
    """Estimated engine memory for one call on an ``height`` × ``width`` input."""
    return inference_bytes(
        height=padded_size(height, spec), width=padded_size(width, spec), scale=spec.scale,
        channels_estimate=PEAK_VALUES_PER_PIXEL, bytes_per_value=_bytes_per_value(spec),
    )


def plan_tiling(
    *,
    height: int,
    width: int,
    spec: ModelSpec,
    tile_px: int | None = None,
    overlap_px: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_MB * MIB,
    limit_to_advice: bool = True,
) -> TilingPlan:
    """Choose the tiling of an image (rule in the module notes); ConfigError when refused.

    ``limit_to_advice``: the engine cannot take inputs above the model's advised tile (a
    TensorRT optimisation profile ends there); False for engines with no fixed input range
    (ONNX Runtime's CPU and CUDA providers, torch), whose default tile is the memory budget's."""
    budget = check_int("memory_budget_bytes", memory_budget_bytes, minimum=1, hint="fix --memory-budget-mb")
    overlap = spec.overlap_px if overlap_px is None else check_int(
        "overlap_px", overlap_px, minimum=0, hint="fix --overlap")
    if tile_px is not None:
        check_int("tile_px", tile_px, minimum=0, hint="fix --tile (0 = whole image)")
    if tile_px == 0:
        needed = estimate_inference_bytes(height=height, width=width, spec=spec)
        if needed > budget:
            raise ConfigError(
                f"whole-image inference (--tile 0) of this {width}x{height} image needs about "
                f"{needed / MIB:,.0f} MiB, more than the memory budget of {budget / MIB:,.0f} MiB; "
                "drop --tile 0 so the image is tiled, or raise --memory-budget-mb"
            )
        return TilingPlan(whole_image=True, tile_px=max(height, width), overlap_px=0, tiles=1,
                          estimated_bytes=needed, rule="--tile 0")
    if tile_px is not None:
        tile, rule = int(tile_px), "--tile"
        side = tile + 2 * overlap
        if estimate_inference_bytes(height=side, width=side, spec=spec) > budget:
            logger.warning(
                "--tile %d (+%d px context per side) may need more than the %.0f MiB memory "
                "budget; lower --tile if the engine runs out of memory", tile, overlap, budget / MIB)
    else:
        budget_tile = tile_px_from_budget(
            budget_bytes=budget, scale=spec.scale, channels_estimate=PEAK_VALUES_PER_PIXEL,
            bytes_per_value=_bytes_per_value(spec), overlap_px=overlap,
        )
        advised = spec.tile_px + 2 * spec.overlap_px - 2 * overlap  # same engine input side
        if not limit_to_advice:
            tile, rule = budget_tile, "memory budget"
        elif advised <= budget_tile:
            tile, rule = advised, "model advice"
        else:
            tile, rule = budget_tile, "memory budget"
    if tile <= 2 * overlap:
        raise ConfigError(
            f"tile of {tile} px ({rule}) must exceed 2 * overlap ({2 * overlap} px); lower "
            "--overlap or raise --tile"
        )
    tiles = len(tile_spans(height, tile_px=tile, overlap_px=overlap)) * len(
        tile_spans(width, tile_px=tile, overlap_px=overlap))
    side_h = min(height, tile + 2 * overlap)
    side_w = min(width, tile + 2 * overlap)
    return TilingPlan(
        whole_image=False, tile_px=tile, overlap_px=overlap, tiles=tiles,
        estimated_bytes=estimate_inference_bytes(height=side_h, width=side_w, spec=spec), rule=rule,
    )
