"""Calibration photos for the INT8 export: tiles of real photographs, never the test sets.

The activation ranges of a static INT8 graph are whatever the calibration images make the
model produce, so they must be photographs like the ones it will see (a random-noise input
drives SR models to ranges no photo reaches). Two sources: a folder the user gives
(``--calib DIR``), or the example photo edgesr bundles (``runtime/examples``). Set5 and
Set14 are the benchmark sets the INT8 graph is scored on; a folder whose path names them is
refused, so the scores stay honest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgesr.errors import ConfigError
from edgesr.runtime.image_folders import list_images
from edgesr.runtime.imageio import nchw_from_rgb, read_image
from edgesr.spec import INPUT_NAME

BUNDLED_EXAMPLES = Path(__file__).resolve().parents[1] / "runtime" / "examples"
TILE_PX = 64  # small tiles: many content kinds for little calibration time
MAX_TILES = 24  # MinMax calibration; more tiles widen the ranges only at the tails
SCORING_TILES = 8  # held out from calibration: what the sensitivity pass scores on
_TEST_SETS = re.compile(r"^set_?(5|14)$", re.IGNORECASE)


def calibration_photos(folder: str | Path | None) -> list[tuple[str, np.ndarray]]:
    """(name, H x W x 3 float32 RGB in [0, 1]) of the photos in ``folder`` (None: the
    bundled examples). Refuses Set5/Set14 and a folder without images (one line each)."""
    root = Path(folder) if folder is not None else BUNDLED_EXAMPLES
    parts = root.resolve().parts if root.exists() else root.parts
    if any(_TEST_SETS.match(part) for part in parts):
        raise ConfigError(
            f"--calib {root}: Set5/Set14 are the test sets INT8 is scored on, calibrating on "
            "them would flatter the score; pass a folder of other photos"
        )
    files = list_images(root)
    if not files:
        raise ConfigError(f"--calib {root}: no images found (png, jpg, webp, tif, bmp); pass a "
                          "folder of photos")
    return [(f.name, read_image(f).rgb) for f in files]


def calibration_tiles(photos: list[tuple[str, np.ndarray]], *, tile_px: int = TILE_PX,
                      max_tiles: int = MAX_TILES, min_px: int = 1) -> list[np.ndarray]:
    """Up to ``max_tiles`` 1x3xTxT float32 tiles on a regular grid over the photos (a photo
    smaller than a tile is used whole, if at least ``min_px`` on each side)."""
    tiles: list[np.ndarray] = []
    for _, rgb in photos:
        h, w = rgb.shape[:2]
        if min(h, w) < min_px:
            continue
        th, tw = min(tile_px, h), min(tile_px, w)
        # half-tile stride: a small photo still gives several tiles, each edge in two contexts
        for top in range(0, h - th + 1, max(1, th // 2)):
            for left in range(0, w - tw + 1, max(1, tw // 2)):
                tiles.append(nchw_from_rgb(rgb[top:top + th, left:left + tw]))
    if not tiles:
        raise ConfigError(f"the calibration photos are all smaller than the model's minimum "
                          f"input side ({min_px} px); pass larger photos with --calib")
    step = max(1, len(tiles) // max_tiles)  # spread over every photo rather than the first
    return tiles[::step][:max_tiles]


def calibration_and_scoring_tiles(photos: list[tuple[str, np.ndarray]], *, min_px: int = 1,
                                  calibrate: int = MAX_TILES, score: int = SCORING_TILES,
                                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two disjoint sets of tiles spread over the photos: ``calibrate`` tiles for the ranges
    and ``score`` other tiles the sensitivity pass measures on, so the layers it keeps float
    are chosen on content the ranges were not fitted to (every few tiles of the spread-out grid
    is held out; on a single small photo, neighbours of a held-out tile overlap it by half)."""
    grid = calibration_tiles(photos, max_tiles=10**9, min_px=min_px)
    if len(grid) < 2:
        raise ConfigError("the calibration photos give fewer than 2 tiles; pass a folder of larger "
                          "photos with --calib")
    step = max(1, len(grid) // (calibrate + score))
    spread = grid[::step][:calibrate + score]
    every = max(2, len(spread) // max(1, score))  # one held-out tile in every `every`
    held_out = set(range(every - 1, len(spread), every)[:score])
    held = [t for i, t in enumerate(spread) if i in held_out]
    kept = [t for i, t in enumerate(spread) if i not in held_out]
    return kept[:calibrate], held


class TileReader(CalibrationDataReader):
    """ONNX Runtime's calibration input: one tile per call, then None."""

    def __init__(self, tiles: list[np.ndarray]) -> None:
        self._tiles = tiles
        self._iter: Iterator[np.ndarray] = iter(tiles)

    def get_next(self) -> dict[str, np.ndarray] | None:
        tile = next(self._iter, None)
        return None if tile is None else {INPUT_NAME: tile}

    def rewind(self) -> None:
        self._iter = iter(self._tiles)
