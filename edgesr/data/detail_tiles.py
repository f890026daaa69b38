"""Detail tiles: the most detailed HR tiles of a folder of photos, for training on edges.

Why: the corpus's photos are wallpapers, mostly sky, water, bokeh and soft foliage. Their
mean LR gradient (``tile_detail`` over the whole photo, x4) is 0.7-18, median 5.6;
Set5's butterfly is 28, its woman 16, its bird 13. A random 48-px crop of a wallpaper is
usually flat, so a student distilled on them copies its donor where the donor's work is
easy, and stays behind it on strong edges: LMFN x4 (stage 3) trails LKDN x4 by 1.6 dB on
butterfly and monarch and 0.9 dB on ppt3, but by 0.1 dB on baboon and face. Cutting each
photo into tiles and keeping the tiles with the most LR detail (capped per photo, so one
busy photo cannot fill the set) gives a training folder in which most patches hold edges.

``rescales`` (e.g. 1, 0.75, 0.5) also cuts tiles from each photo downscaled by those factors
(MATLAB-compatible bicubic), the classic scale augmentation of SR training: a photo at half
size holds its edges twice as densely, so a small corpus yields more, and more varied, edge
tiles. The cap per photo counts the tiles of all its sizes together.

The measure is deliberately simple (OpenCV only): the tile's luma (ITU-R BT.601, as
``cv2.cvtColor``), area-averaged down by ``scale`` to what the model will see, then the mean
absolute difference between neighbouring pixels, averaged over the two axes. Each photo's LR
luma is made once and its tiles are measured on slices of it: tiles start on multiples of
``scale``, where the area average of the photo equals that of the tile.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesr.data.degrade import imresize
from edgesr.data.folder import IMAGE_EXTENSIONS, check_scale, find_images, read_rgb8
from edgesr.data.skimage_photos import png_bytes
from edgesr.errors import DataError
from edgesr.fileio import ensure_folder, write_bytes_atomically, write_text_atomically


def _hundredths(factor: float) -> int:
    """The factor as tile names carry it (``-r050-``); check_rescales keeps these distinct."""
    return round(factor * 100)


@dataclass(frozen=True)
class Tile:
    source: Path  # the photo it was cut from
    stem: str  # the photo's path under the source folder, without suffix, "/" -> "__"
    top: int  # HR pixels
    left: int
    detail: float  # tile_detail at the given scale
    rescale: float = 1.0  # the photo was downscaled by this factor before cutting (1: as it is)

    @property
    def name(self) -> str:
        # from the relative path, not the file name: photos in subfolders may share a name;
        # a rescaled photo's tiles carry the factor, so they never meet the full-size ones
        size = "" if self.rescale == 1 else f"-r{_hundredths(self.rescale):03d}"
        return f"{self.stem}{size}-{self.top}-{self.left}.png"

    @property
    def origin(self) -> str:
        size = "" if self.rescale == 1 else f" downscaled to {self.rescale:g}x,"
        return f"{self.source.name}{size} at ({self.top}, {self.left})"


def lr_luma(rgb: np.ndarray, *, scale: int) -> np.ndarray:
    """The luma of an HxWx3 uint8 image, cropped to a multiple of ``scale`` and area-averaged
    down by it (float32)."""
    import cv2

    h, w = rgb.shape[0] // scale * scale, rgb.shape[1] // scale * scale
    luma = cv2.cvtColor(np.ascontiguousarray(rgb[:h, :w]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.resize(luma, (w // scale, h // scale), interpolation=cv2.INTER_AREA)


def _mean_gradient(lr: np.ndarray) -> float:
    return float((np.abs(np.diff(lr, axis=0)).mean() + np.abs(np.diff(lr, axis=1)).mean()) / 2)


def tile_detail(rgb: np.ndarray, *, scale: int) -> float:
    """Mean absolute LR gradient of an HxWx3 uint8 tile, after an area downscale by ``scale``."""
    return _mean_gradient(lr_luma(rgb, scale=scale))


def _photos(src: Path) -> list[Path]:
    photos = find_images(src)
    if not photos:
        raise DataError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in {str(src)!r}")
    return photos


def _tiles_of(photo: Path, stem: str, rgb: np.ndarray, *, tile_px: int, scale: int,
              rescale: float) -> list[Tile]:
    """Every tile_px square at a stride of about half a tile (``choose_tiles`` ranks them)."""
    h, w = rgb.shape[:2]
    lr, lr_tile = lr_luma(rgb, scale=scale), tile_px // scale
    # Half-overlapping, so an edge on a tile border is whole in a neighbour; on multiples of
    # scale, so each tile's LR is a slice of the photo's.
    stride = tile_px // 2 // scale * scale
    return [
        Tile(photo, stem, top, left, _mean_gradient(lr[top // scale : top // scale + lr_tile,
                                                 left // scale : left // scale + lr_tile]), rescale)
        for top in range(0, h - tile_px + 1, stride)
        for left in range(0, w - tile_px + 1, stride)
    ]


def check_rescales(rescales: Sequence[float]) -> tuple[float, ...]:
    factors = tuple(float(r) for r in rescales)
    # Tile names carry the factor in hundredths, so factors must differ there (0.751 and 0.749
    # would name their tiles alike) and be at least 0.01.
    names = {_hundredths(r) for r in factors if 0.01 <= r <= 1}
    if not factors or len(names) < len(factors):
        raise DataError(f"--rescale {','.join(f'{r:g}' for r in factors) or '(none)'}: expected distinct "
                        "factors in [0.01, 1], apart by at least 0.01, e.g. 1,0.75,0.5 (1 keeps the photo as it is)")
    return factors


def choose_tiles(src: str | os.PathLike[str], *, tile_px: int, count: int, per_image: int,
                 scale: int, rescales: Sequence[float] = (1.0,)) -> tuple[list[Tile], dict[Tile, np.ndarray]]:
    """The ``count`` most detailed tiles, at most ``per_image`` from each photo (all its sizes
    together), with their pixels.

    Photos are read one at a time and only their best tiles are kept, so a folder of large
    photos needs memory for the tiles, not for the photos."""
    scale, rescales = check_scale(scale), check_rescales(rescales)
    if tile_px < 2 * scale or tile_px % scale:
        raise DataError(f"--tile {tile_px} must be a multiple of --scale {scale} and at least {2 * scale}")
    if count < 1 or per_image < 1:
        raise DataError(f"--count and --per-image must be at least 1 (got {count} and {per_image})")
    pixels: dict[Tile, np.ndarray] = {}
    for photo in _photos(Path(src)):
        stem = photo.relative_to(src).with_suffix("").as_posix().replace("/", "__")
        rgb = read_rgb8(photo)
        sized = {r: rgb if r == 1 else imresize(rgb, scale=r) for r in rescales}
        candidates = [t for rescale, resized in sized.items()
                      for t in _tiles_of(photo, stem, resized, tile_px=tile_px, scale=scale, rescale=rescale)]
        # the most detailed first; ties go to the larger size, then by position
        candidates.sort(key=lambda t: (-t.detail, -t.rescale, t.top, t.left))
        for t in candidates[:per_image]:
            pixels[t] = sized[t.rescale][t.top : t.top + tile_px, t.left : t.left + tile_px].copy()
    capped = list(pixels)
    if not capped:
        raise DataError(f"every photo in {str(src)!r} is smaller than a {tile_px}-px tile; use a smaller --tile")
    # Stable order on ties: by detail, then by source and position.
    capped.sort(key=lambda t: (-t.detail, str(t.source), -t.rescale, t.top, t.left))
    chosen = capped[:count]
    return chosen, {t: pixels[t] for t in chosen}


def _licence_rows(src: Path) -> dict[str, str]:
    """Photo file name -> its row (source, licence, holders) in a LICENSES.md beside or above src."""
    for candidate in (src / "LICENSES.md", src.parent / "LICENSES.md"):
        if candidate.is_file():
            rows = {}
            for line in candidate.read_text(encoding="utf-8").splitlines():
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) == 5 and re.search(r"\.\w+$", cells[1]):
                    rows[Path(cells[1]).name] = " | ".join(cells[2:])
            return rows
    return {}


def write_detail_tiles(src: str | os.PathLike[str], out: str | os.PathLike[str], *, tile_px: int = 256,
                       count: int = 200, per_image: int = 12, scale: int = 4,
                       rescales: Sequence[float] = (1.0,)) -> list[Tile]:
    """Write the chosen tiles to ``out`` (PNG) and ``out/LICENSES.md``; ``out`` must be new or empty.

    A file is never replaced; when a write fails (or Ctrl-C), the tiles this run wrote are removed.
    """
    src, out = Path(src), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{str(out)!r} exists and is not an empty folder; give a new folder for the tiles")
    tiles, pixels = choose_tiles(src, tile_px=tile_px, count=count, per_image=per_image, scale=scale,
                                 rescales=rescales)
    licences = _licence_rows(src)
    ensure_folder(out, what="tile folder")
    written: list[Path] = []
    try:
        for t in tiles:
            written.append(write_bytes_atomically(out / t.name, png_bytes(pixels[t])))
        written.append(write_text_atomically(out / "LICENSES.md", _licences_markdown(tiles, licences, tile_px, scale)))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return tiles


def _licences_markdown(tiles: list[Tile], licences: dict[str, str], tile_px: int, scale: int) -> str:
    lines = [
        "# Detail tiles and their licences", "",
        f"Made by `edgesr-data tiles`: {len(tiles)} tiles of {tile_px} px, the most detailed "
        f"(mean x{scale} LR gradient) of their photos. Each keeps its photo's licence.", "",
        "| file | cut from | detail | source | licence | copyright holders |", "|---|---|---|---|---|---|",
    ]
    unknown = "not recorded (no LICENSES.md beside the photos) | - | -"
    lines += [f"| {t.name} | {t.origin} | {t.detail:.2f} | "
              f"{licences.get(t.source.name, unknown)} |" for t in tiles]
    return "\n".join(lines) + "\n"
