"""A training corpus of real photographs that exist on every machine here, licences recorded.

Sources (no hub, no network at run time):
- Debian's ``mate-backgrounds`` package: 12 nature photographs (JPEG, 1280x1024 to 2560x1920,
  GPL-2+, copyright holders in the package's ``copyright`` file). Get it with
  ``apt-get download mate-backgrounds`` and pass the .deb (or the folder it unpacks to).
- Debian's ``plasma-workspace-wallpapers`` package: the 11 of its 30 wallpapers that are
  photographs (``PLASMA_PHOTOS``; the rest are renders), each at its 2560x1600 JPEG, GPL-2+ by the Debian copyright file and LGPLv3 by its metadata.json,
  author from each wallpaper's ``metadata.json``. ``apt-get download plasma-workspace-wallpapers``.
- Debian's ``lomiri-wallpapers-16.04`` and ``lomiri-wallpapers-20.04``: 14 photographs
  (CC-BY / CC-BY-SA / CC0, ``edgesr.data.lomiri``), all for training, downscaled x2 to x3.
  (``ukui-wallpapers``, ``lomiri-wallpapers``, ``sway-backgrounds`` and ``gnome-backgrounds``
  were checked too: every image in them is drawn or rendered, so none is used.)
- The scikit-image photos (``edgesr.data.skimage_photos.skimage_photos``), in their fixed split.

JPEG photos carry compression artefacts that an SR model would learn to reproduce, so each is
downscaled (MATLAB-compatible bicubic, antialiased) before it is used as HR: the downscaling
averages the 8x8-block artefacts away. The factor is 2, or more for a photo whose long side
exceeds 2 x ``LONG_SIDE_PX`` (only the large Lomiri camera JPEGs: x3). ``LICENSES.md`` in the output lists
every file with its source, author and licence.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


from edgesr.data.debian_copyright import copyright_stanzas
from edgesr.data.degrade import imresize
from edgesr.data.folder import read_rgb8
from edgesr.data.lomiri import lomiri_photos
from edgesr.data.skimage_photos import SKIMAGE_TRAIN, SKIMAGE_VAL, skimage_photos, write_png_if_changed
from edgesr.errors import DataError
from edgesr.fileio import write_text_atomically

log = logging.getLogger(__name__)

MATE_NATURE = "usr/share/backgrounds/mate/nature"
MATE_COPYRIGHT = "usr/share/doc/mate-backgrounds/copyright"
# Held out for validation and checkpoint choice (never Set5/Set14): a macro with fine
# texture and a landscape with smooth sky.
MATE_VAL = ("LadyBird", "Storm")
MIN_DOWNSCALE = 2
LONG_SIDE_PX = 2048  # about DIV2K's; larger camera photos are downscaled further
PLASMA_WALLPAPERS = "usr/share/wallpapers"
# Chosen by looking at every wallpaper: these are photographs (lakes, leaves, forest, boats,
# cups, architecture, sky); the others are drawn or rendered.
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                 "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")
PLASMA_VAL = ("FallenLeaf",)
PLASMA_SIZE = "2560x1600.jpg"  # the largest size every chosen wallpaper has


@dataclass(frozen=True)
class CorpusFile:
    split: str  # "train" or "val"
    path: Path
    source: str
    licence: str
    holders: str


def _unpack_deb(deb: Path, into: Path) -> Path:
    if shutil.which("dpkg-deb") is None:
        raise DataError(f"{deb.name} is a Debian package and dpkg-deb is not installed; unpack it "
                        "elsewhere (dpkg-deb -x FILE DIR) and pass the folder")
    try:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        raise DataError(f"dpkg-deb could not unpack {deb.name}: {exc.stderr.decode().strip()}") from None
    return into


def mate_holders(copyright_text: str) -> dict[str, str]:
    """Photo stem -> copyright holders, from the Debian copyright file's Files/Copyright stanzas."""
    holders: dict[str, str] = {}
    for stanza in copyright_stanzas(copyright_text):
        for path in stanza.files:
            if match := re.fullmatch(r"nature/(\w+)\.jpg", path):
                holders[match[1]] = stanza.holders
    return holders


def downscale_factor(width: int, height: int) -> int:
    """The smallest integer factor >= MIN_DOWNSCALE that brings the long side to LONG_SIDE_PX."""
    return max(MIN_DOWNSCALE, math.ceil(max(width, height) / LONG_SIDE_PX))


def _write_downscaled(jpeg: Path, target: Path) -> int:
    """A JPEG photo as PNG HR, downscaled (see the module's note); returns the factor."""
    rgb = read_rgb8(jpeg)
    factor = downscale_factor(rgb.shape[1], rgb.shape[0])
    hr = imresize(rgb, scale=1 / factor)
    write_png_if_changed(target, hr)
    log.info("%s: %s -> %dx%d", target.parent.name, jpeg, hr.shape[1], hr.shape[0])
    return factor


def _mate_files(root: Path, mate: Path, out: Path) -> list[CorpusFile]:
    nature = root / MATE_NATURE
    if not nature.is_dir():
        raise DataError(f"{str(mate)!r} holds no {MATE_NATURE}/; pass mate-backgrounds' .deb or its unpacked folder")
    copyright_file = root / MATE_COPYRIGHT
    holders = mate_holders(copyright_file.read_text()) if copyright_file.is_file() else {}
    files = []
    for jpeg in sorted(nature.glob("*.jpg")):
        split = "val" if jpeg.stem in MATE_VAL else "train"
        target = out / split / f"mate-{jpeg.stem}.png"
        factor = _write_downscaled(jpeg, target)
        files.append(CorpusFile(split, target, f"Debian mate-backgrounds (nature/, downscaled x{factor})",
                                "GPL-2+", holders.get(jpeg.stem, "see the package's copyright file")))
    return files


def _plasma_author(folder: Path) -> str:
    try:
        plugin = json.loads((folder / "metadata.json").read_text()).get("KPlugin", {})
        return "; ".join(a.get("Name", "") for a in plugin.get("Authors", [])) or "see metadata.json"
    except (OSError, ValueError, AttributeError):
        return "see the package's copyright file"


def _plasma_files(root: Path, plasma: Path, out: Path) -> list[CorpusFile]:
    wallpapers = root / PLASMA_WALLPAPERS
    missing = [name for name in PLASMA_PHOTOS if not (wallpapers / name / "contents/images" / PLASMA_SIZE).is_file()]
    if missing:
        raise DataError(f"{str(plasma)!r} lacks {PLASMA_WALLPAPERS}/{missing[0]}/contents/images/{PLASMA_SIZE}; "
                        "pass plasma-workspace-wallpapers' .deb or its unpacked folder")
    files = []
    for name in PLASMA_PHOTOS:
        split = "val" if name in PLASMA_VAL else "train"
        target = out / split / f"plasma-{name}.png"
        factor = _write_downscaled(wallpapers / name / "contents/images" / PLASMA_SIZE, target)
        files.append(CorpusFile(split, target, f"Debian plasma-workspace-wallpapers (2560x1600, downscaled x{factor})",
                                "GPL-2+ (Debian copyright file); LGPLv3 (its metadata.json)", _plasma_author(wallpapers / name)))
    return files


def _lomiri_files(root: Path, package: Path, out: Path) -> list[CorpusFile]:
    files = []
    for photo in lomiri_photos(root, package):
        target = out / "train" / f"lomiri-{photo.jpeg.stem}.png"
        factor = _write_downscaled(photo.jpeg, target)
        files.append(CorpusFile("train", target, f"Debian lomiri-wallpapers-{photo.series} (downscaled x{factor})",
                                photo.licence, photo.holders))
    return files


def _skimage_files(out: Path) -> list[CorpusFile]:
    files = []
    photos = dict(skimage_photos())
    for split, names in (("train", SKIMAGE_TRAIN), ("val", SKIMAGE_VAL)):
        for name in names:
            target = out / split / f"skimage-{name}.png"
            write_png_if_changed(target, photos[name])
            files.append(CorpusFile(split, target, "scikit-image data (skimage.data)",
                                    "see skimage/data/README.txt (CC0 / public domain / CC-BY)", name))
    return files


def _licences_markdown(files: list[CorpusFile], out: Path) -> str:
    lines = ["# Corpus files and their licences", "",
             "Made by `edgesr-data photos`. Evaluation sets (Set5, Set14) are never part of it.", "",
             "| split | file | source | licence | copyright holders |", "|---|---|---|---|---|"]
    lines += [f"| {f.split} | {f.path.relative_to(out)} | {f.source} | {f.licence} | {f.holders} |" for f in files]
    return "\n".join(lines) + "\n"


def _package_files(path: str | Path, reader, out: Path, *, package: str) -> list[CorpusFile]:
    source = Path(path)
    if not source.exists():
        raise DataError(f"{str(source)!r} does not exist; get it with `apt-get download {package}`")
    with tempfile.TemporaryDirectory() as work:
        root = _unpack_deb(source, Path(work)) if source.is_file() else source
        return reader(root, source, out)


def build_photo_corpus(out: str | Path, *, mate: str | Path | None = None,
                       plasma: str | Path | None = None,
                       lomiri: Sequence[str | Path] = ()) -> list[CorpusFile]:
    """Write ``out/train`` and ``out/val`` (PNG) and ``out/LICENSES.md``; returns the files."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{str(out)!r} is a file; expected a folder for the corpus")
    made = _paths_missing(out, out / "train", out / "val")
    existing = set(_files_under(out))
    try:
        for split in ("train", "val"):
            (out / split).mkdir(parents=True, exist_ok=True)
        files = _skimage_files(out)
        if mate is not None:
            files += _package_files(mate, _mate_files, out, package="mate-backgrounds")
        if plasma is not None:
            files += _package_files(plasma, _plasma_files, out, package="plasma-workspace-wallpapers")
        for package in lomiri:
            files += _package_files(package, _lomiri_files, out, package="lomiri-wallpapers-16.04 lomiri-wallpapers-20.04")
        write_text_atomically(out / "LICENSES.md", _licences_markdown(files, out), overwrite=True)
    except BaseException:  # a broken .deb, Ctrl-C: remove what this run added, keep the rest
        _remove_new(out, existing, made)
        raise
    return files


def _paths_missing(*paths: Path) -> list[Path]:
    return [p for p in paths if not os.path.lexists(p)]


def _files_under(root: Path) -> list[Path]:
    return [Path(d) / n for d, _, names in os.walk(root) for n in names] if root.is_dir() else []


def _remove_new(out: Path, existing: set[Path], made_folders: list[Path]) -> None:
    """Files this run wrote under ``out`` and the folders it created (when left empty)."""
    for path in _files_under(out):
        if path not in existing:
            path.unlink(missing_ok=True)
    for folder in sorted(made_folders, key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:  # not empty (files of someone else's) or already gone
            pass
