"""How much tiled inference differs from whole-image inference, and whether seams show.

Models with global statistics (CCA's mean/std, ESA's pooled mask, GroupNorm in DSConv) see
different statistics in a tile than in the whole image, so tiled output is not bit-identical;
this measures the difference (PSNR of tiled vs whole) on real photos, and the seam score of
``edgesr.runtime.tiling.seam_score`` (gradient across tile boundaries / elsewhere; 1 = none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from edgesr.runtime.imageio import nchw_from_rgb
from edgesr.runtime.seams import seam_score
from edgesr.runtime.tiling import upscale_tiled

from edgesr.metrics import psnr


@dataclass(frozen=True, kw_only=True)
class TilingRow:
    model: str
    photo: str
    size: str
    tile_px: int
    overlap_px: int
    psnr_db: float  # tiled vs whole-image output
    seam_tiled: float
    seam_whole: float  # the same lines measured on the whole-image output, for reference


def tiling_rows(engine, *, model: str, photos: list[tuple[str, np.ndarray]],  # noqa: ANN001
                tile_px: int, overlap_px: int) -> list[TilingRow]:
    rows = []
    scale = engine.spec.scale
    for name, rgb in photos:
        lr = nchw_from_rgb(rgb.astype(np.float32) / 255.0)
        whole = np.clip(engine.run(lr), 0, 1)
        tiles = np.clip(upscale_tiled(lr, engine.run, scale=scale, tile_px=tile_px, overlap_px=overlap_px), 0, 1)
        rows.append(TilingRow(
            model=model, photo=name, size=f"{rgb.shape[1]}x{rgb.shape[0]}", tile_px=tile_px, overlap_px=overlap_px,
            psnr_db=psnr(tiles, whole, data_range=1.0),
            seam_tiled=seam_score(tiles, tile_px=tile_px, overlap_px=overlap_px, scale=scale),
            seam_whole=seam_score(whole, tile_px=tile_px, overlap_px=overlap_px, scale=scale),
        ))
    return rows


def format_rows(rows: list[TilingRow]) -> str:
    lines = ["| model | photo (LR) | tile / overlap px | tiled vs whole PSNR (dB) | seam score tiled | seam score whole |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.model} | {r.photo} ({r.size}) | {r.tile_px} / {r.overlap_px} | {r.psnr_db:.2f} | "
                     f"{r.seam_tiled:.3f} | {r.seam_whole:.3f} |")
    return "\n".join(lines)
