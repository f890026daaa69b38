"""The RGB photos bundled with scikit-image: the one real corpus available offline on every
machine, with a fixed train/val split (``SKIMAGE_TRAIN`` / ``SKIMAGE_VAL``)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesr.errors import ConfigError, DataError
from edgesr.fileio import ensure_folder, write_bytes_atomically

# The fixed split of the scikit-image photos (every RGB photo bundled in the wheel, loaded
# without network). Validation: an animal with fur (chelsea), an indoor still life with
# edges and smooth gradients (coffee) and a microscopy slide (immunohistochemistry). The
# stereo pair motorcycle_left/right are near-duplicates, so both stay on the same side.
SKIMAGE_TRAIN: tuple[str, ...] = (
    "astronaut",
    "hubble_deep_field",
    "motorcycle_left",
    "motorcycle_right",
    "retina",
    "rocket",
)
SKIMAGE_VAL: tuple[str, ...] = ("chelsea", "coffee", "immunohistochemistry")


def _skimage_loaders() -> dict[str, Callable[[], np.ndarray]]:
    try:
        from skimage import data
    except ImportError as exc:
        raise DataError(
            "the bundled photos need scikit-image, which is not installed; "
            "install it with `pip install -e '.[train]'` (or scikit-image>=0.22)."
        ) from exc
    return {
        "astronaut": data.astronaut,
        "chelsea": data.chelsea,
        "coffee": data.coffee,
        "hubble_deep_field": data.hubble_deep_field,
        "immunohistochemistry": data.immunohistochemistry,
        "motorcycle_left": lambda: data.stereo_motorcycle()[0],
        "motorcycle_right": lambda: data.stereo_motorcycle()[1],
        "retina": data.retina,
        "rocket": data.rocket,
    }


def skimage_photos() -> list[tuple[str, np.ndarray]]:
    """The RGB photos bundled with scikit-image, as ``(name, HxWx3 uint8)``, sorted by name.

    Only files shipped inside the scikit-image wheel are used (no download). Sizes range
    from 300x451 (chelsea) to 1411x1411 (retina). The fixed split is ``SKIMAGE_TRAIN`` /
    ``SKIMAGE_VAL``.
    """
    photos = []
    for name, load in sorted(_skimage_loaders().items()):
        try:
            image = np.asarray(load())
        except Exception as exc:  # a data file missing from a trimmed installation
            raise DataError(
                f"scikit-image photo {name!r} could not be loaded ({type(exc).__name__}: {exc}); "
                "expected it inside the scikit-image package. Reinstall scikit-image."
            ) from exc
        if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
            raise DataError(
                f"scikit-image photo {name!r} has shape {image.shape} and dtype {image.dtype}; "
                "expected HxWx3 uint8. This scikit-image version is not supported."
            )
        photos.append((name, np.ascontiguousarray(image[..., :3])))
    return photos


def png_bytes(image: np.ndarray) -> bytes:
    """An HxWx3 uint8 image encoded as PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png_if_changed(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically, leaving an identical existing file (and its mtime) alone."""
    data = png_bytes(image)
    if path.is_file() and path.read_bytes() == data:
        return
    ensure_folder(path.parent, what="corpus folder")
    write_bytes_atomically(path, data, overwrite=True)  # the corpus is regenerated in place


def write_skimage_corpus(
    root: str | os.PathLike[str], *, split: str = "all"
) -> dict[str, list[Path]]:
    """Write the scikit-image photos as PNG into ``root/train`` and/or ``root/val``.

    ``split`` is ``"train"``, ``"val"`` or ``"all"`` (both). The split is fixed:
    train = ``SKIMAGE_TRAIN`` (6 photos), val = ``SKIMAGE_VAL`` (3 photos). Files whose
    content is already right are not rewritten, so LR caches keyed on mtime stay valid.
    Returns ``{"train": [...], "val": [...]}`` with the paths of the requested splits.
    """
    wanted = {"train": ("train",), "val": ("val",), "all": ("train", "val")}
    if split not in wanted:
        raise ConfigError(
            f"split must be 'train', 'val' or 'all'; received {split!r}."
        )
    root_path = Path(root)
    if root_path.exists() and not root_path.is_dir():
        raise DataError(f"{str(root_path)!r} is a file; expected a folder to write the photos into.")
    members = {"train": SKIMAGE_TRAIN, "val": SKIMAGE_VAL}
    photos = dict(skimage_photos())
    written: dict[str, list[Path]] = {}
    for part in wanted[split]:
        written[part] = []
        for name in members[part]:
            path = root_path / part / f"{name}.png"
            write_png_if_changed(path, photos[name])
            written[part].append(path)
    return written
