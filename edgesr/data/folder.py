"""Training and validation data from any folder of HR images (DIV2K/Flickr2K layout works).

* ``find_images`` scans a folder recursively for PNG/JPEG/WebP/BMP/TIFF files (hidden files
  and folders, whose names start with ``.``, are ignored).
* ``prepare_pairs`` makes each LR image once, with MATLAB-compatible bicubic downscaling
  (``edgesr.data.degrade.lr_from_hr``: HR cropped to a multiple of ``scale``, uint8 LR as
  MATLAB makes it), and caches the cropped HR and the LR as uint8 ``.npy`` files
  (``edgesr.data.pair_cache``: keyed by path, modification time, size and scale, so an
  edited image is recomputed; under edgesr's one trust rule, so a foreign or changed entry is
  rebuilt with one warning line). Patches are then sliced from memory-mapped ``.npy`` files:
  no image decoding per sample. The cache costs (1 + 1/scale**2) times the decoded HR size
  per scale (DIV2K train at x2: about 8 GB); stale entries are never deleted, remove the
  cache folder to reclaim the space.
* ``TrainPatchDataset`` and ``ValImageDataset`` (``edgesr.data.patches``) read the prepared
  pairs: random training patches and whole validation images.
* The scikit-image photos and their fixed split live in ``edgesr.data.skimage_photos``.

Unreadable files and images too small for a patch are skipped and counted in
``dataset.report``, with one warning line naming them (each one's reason at debug level,
-v); an empty folder, or one where nothing usable remains, raises ``DataError`` saying what
was searched and how to fix it.
"""

from __future__ import annotations

import concurrent.futures
import io
import logging
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesr.data import pair_cache
from edgesr.data.degrade import lr_from_hr
from edgesr.errors import ConfigError, DataError, ImageError, printable
from edgesr.image_guard import probe_header, read_regular_file

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderReport",
    "PairRecord",
    "find_images",
    "prepare_pairs",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
_NAMES_SHOWN = 5  # skipped images named in the one summary line
_ANNOUNCE_FROM = 20  # images to make before "making x4 LR images ..." is worth a line



# --------------------------------------------------------------------------- scanning


def find_images(root: str | os.PathLike[str]) -> list[Path]:
    """All image files under ``root`` (recursive, sorted, extensions case-insensitive)."""
    root_path = Path(root)
    if not root_path.exists():
        raise DataError(
            f"HR image folder {str(root_path)!r} does not exist; expected a folder of images "
            "(e.g. DIV2K/DIV2K_train_HR). Check the path."
        )
    if not root_path.is_dir():
        raise DataError(
            f"{str(root_path)!r} is a file, not a folder; expected a folder of HR images. "
            "Pass the folder that contains it."
        )
    found: list[Path] = []
    visited: set[str] = set()  # real paths: symlinked folders are followed, cycles are not
    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root_path).as_posix())


def read_rgb8(path: Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB (gray/palette/alpha/16-bit converted)."""
    from PIL import Image

    # regular files only, size and frame count from the header before decoding (a bomb or a
    # FIFO in a data folder must not hang or exhaust the machine)
    data = read_regular_file(path)
    probe_header(data, source=str(path))
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                values = np.asarray(im, dtype=np.float64)
                if values.max(initial=0) > 65535 or values.min(initial=0) < 0:
                    raise ImageError(f"32-bit integer pixels out of the 16-bit range in {path}")
                gray = np.floor(values / 257.0 + 0.5).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            if mode == "F":
                raise ImageError(f"floating-point image {path} (mode F) is not supported")
            rgb = np.asarray(im if mode == "RGB" else im.convert("RGB"), dtype=np.uint8)
    except ImageError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt or truncated files
        raise ImageError(f"cannot decode {path}: {type(exc).__name__}: {exc}") from exc
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError(f"decoded {path} to shape {rgb.shape}; expected HxWx3")
    return rgb


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True)
class PairRecord:
    """One usable HR image and its cached, aligned HR/LR arrays."""

    name: str  # path relative to the root folder, with "/" separators
    source: str  # the HR image file
    hr_path: str  # cached HR, cropped to a multiple of the scale (uint8 HxWx3 .npy)
    lr_path: str  # cached LR (uint8 .npy), exactly `scale` times smaller
    hr_height: int
    hr_width: int


@dataclass(kw_only=True)
class FolderReport:
    """What preparing a folder found; skipped lists hold relative names."""

    root: str
    scale: int
    found: int = 0
    from_cache: int = 0
    computed: int = 0
    skipped_small: list[str] = field(default_factory=list)
    skipped_unreadable: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.root}: {self.found} images found, {self.from_cache} from cache, "
            f"{self.computed} computed, {len(self.skipped_small)} too small, "
            f"{len(self.skipped_unreadable)} unreadable"
        )
        skipped = self.skipped_names()
        return f"{text}; {skipped}" if skipped else text

    def skipped_names(self) -> str:
        """The first few skipped images of each kind in one line ("" when none)."""
        parts = []
        for what, names in (("too small", self.skipped_small), ("unreadable", self.skipped_unreadable)):
            if names:
                shown = ", ".join(printable(n) for n in names[:_NAMES_SHOWN])
                more = f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
                parts.append(f"{what}: {shown}{more}")
        return "; ".join(parts) + " (-v gives each one's reason)" if parts else ""


def _make_pair(source: Path, scale: int, hr_path: Path, lr_path: Path) -> tuple[int, int]:
    hr = read_rgb8(source)
    if hr.shape[0] < scale or hr.shape[1] < scale:
        return hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
    hr_cropped, lr = lr_from_hr(hr, scale=scale)
    pair_cache.save_pair(hr_path, lr_path, hr_cropped, lr)
    return int(hr_cropped.shape[0]), int(hr_cropped.shape[1])


def integer_option(value: object, name: str, *, minimum: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(
            f"{name} must be an integer >= {minimum} (e.g. {example}); received {value!r}."
        )
    return int(value)


def check_scale(scale: object) -> int:
    return integer_option(scale, "scale", minimum=1, example="2, 3 or 4")


def prepare_pairs(
    root: str | os.PathLike[str],
    *,
    scale: int,
    cache_dir: str | os.PathLike[str] | None = None,
    min_lr_px: int = 1,
) -> tuple[list[PairRecord], FolderReport]:
    """Scan ``root``, make (or read from the cache) every HR/LR pair; skip what cannot be used.

    Images whose LR would be smaller than ``min_lr_px`` on either side are skipped (counted
    in ``report.skipped_small``), as are files that cannot be decoded
    (``report.skipped_unreadable``). Raises ``DataError`` when nothing usable remains.
    """
    scale = check_scale(scale)
    min_lr_px = integer_option(min_lr_px, "min_lr_px", minimum=1, example="64")
    root_path = Path(root)
    sources = find_images(root_path)
    report = FolderReport(root=str(root_path), scale=scale, found=len(sources))
    if not sources:
        raise DataError(
            f"no images found in {str(root_path)!r}: searched recursively for "
            f"{', '.join(IMAGE_EXTENSIONS)} (any letter case); expected a folder of HR images "
            "(e.g. DIV2K_train_HR). Check the path, or write the bundled photos there with "
            "edgesr.data.skimage_photos.write_skimage_corpus()."
        )

    cache_path = pair_cache.scale_folder(cache_dir, scale)
    sizes: dict[int, tuple[int, int]] = {}
    paths: dict[int, tuple[Path, Path]] = {}
    missing: list[int] = []
    for i, source in enumerate(sources):
        try:
            paths[i] = pair_cache.cache_paths(source, scale, cache_path)
        except OSError as exc:
            name = source.relative_to(root_path).as_posix()
            logger.debug("skipping %s: cannot stat the file (%s)", name, exc)
            report.skipped_unreadable.append(name)
    workers = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:  # hashing frees the GIL
        problems = dict(zip(paths, pool.map(lambda i: pair_cache.entry_problem(*paths[i]), paths)))
    refused: list[tuple[str, str]] = []
    for i, (hr_path, lr_path) in paths.items():
        cached = pair_cache.load_cached(hr_path, lr_path, scale) if not problems[i] else None
        if problems[i] not in ("", "is missing"):
            refused.append((hr_path.name, problems[i]))
        if cached is None:
            missing.append(i)
        else:
            sizes[i] = cached
            report.from_cache += 1
    if refused:  # one line for all of them: a copied or tampered cache has many
        logger.warning("not using %d cached LR pair file(s) in %s (the first, %s, %s); rebuilding "
                       "them", len(refused), printable(cache_path), printable(refused[0][0]), refused[0][1])

    if missing:
        # announced only when it takes a while: a short step stays quiet (a refusal that may
        # follow is then the only line)
        logger.log(
            logging.INFO if len(missing) >= _ANNOUNCE_FROM else logging.DEBUG,
            "making x%d LR images for %d of %d HR images in %s (cached in %s)",
            scale, len(missing), len(sources), root_path, cache_path,
        )
        started = time.perf_counter()
        workers = max(1, min(4, os.cpu_count() or 1, len(missing)))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(_make_pair, sources[i], scale, *paths[i]): i for i in missing
            }
            for future in concurrent.futures.as_completed(futures):
                i = futures[future]
                name = sources[i].relative_to(root_path).as_posix()
                try:
                    sizes[i] = future.result()
                except ImageError as exc:
                    logger.debug("skipping unreadable image %s: %s", name, exc)
                    report.skipped_unreadable.append(name)
                    continue
                report.computed += 1
        logger.debug("made %d LR images in %.1f s", report.computed, time.perf_counter() - started)

    records: list[PairRecord] = []
    min_hr_px = min_lr_px * scale
    for i, source in enumerate(sources):
        if i not in sizes:
            continue
        name = source.relative_to(root_path).as_posix()
        h, w = sizes[i]
        if h < min_hr_px or w < min_hr_px:
            logger.debug(
                "skipping %s: %dx%d pixels (cropped to a multiple of %d) is smaller than a "
                "%dx%d HR patch", name, h, w, scale, min_hr_px, min_hr_px,
            )
            report.skipped_small.append(name)
            continue
        hr_path, lr_path = paths[i]
        records.append(
            PairRecord(
                name=name, source=str(source), hr_path=str(hr_path), lr_path=str(lr_path),
                hr_height=h, hr_width=w,
            )
        )
    report.skipped_small.sort()
    report.skipped_unreadable.sort()
    if not records:
        raise DataError(
            f"no usable images in {str(root_path)!r}: {report.found} found, "
            f"{len(report.skipped_unreadable)} unreadable, {len(report.skipped_small)} smaller "
            f"than {min_hr_px}x{min_hr_px} HR pixels ({min_lr_px} LR px at x{scale}) "
            f"; {report.skipped_names()}. "
            "Use larger images, a smaller patch size or a smaller scale, or fix the files."
        )
    if report.skipped_small or report.skipped_unreadable:
        logger.warning("%s", report.summary())  # one line for all skipped images
    return records, report
