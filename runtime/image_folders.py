"""Folder mode: the images of a folder (hidden files skipped), where each one's output goes
in the mirrored output tree, and an output folder that is only left behind when something was
written in it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from edgesr.errors import ImageError, printable
from edgesr.fileio import ensure_folder
from edgesr.runtime.imageio import ALPHA_EXTENSIONS, SUPPORTED_LIST, PathLike, is_supported

#: ``--ext`` choices (Real-ESRGAN's, plus webp): auto keeps the input's extension.
EXT_CHOICES = ("auto", "png", "jpg", "webp")

def _hidden(name: str) -> bool:
    return name.startswith(".")


def list_images(folder: PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted by relative path.

    Only :data:`SUPPORTED_EXTENSIONS` (any case) count. Hidden files and folders (names that
    start with '.', which includes this module's temporary files) are skipped; symlinked
    folders are not followed (no cycles). Returns an empty list when nothing matches.
    """
    root = Path(folder)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise ImageError(
            f"cannot list images in {folder!s}: it {what}, expected a folder of images; "
            "check the path"
        )
    found: list[Path] = []
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable.append):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        for name in filenames:
            if not _hidden(name) and is_supported(os.path.splitext(name)[1]):
                found.append(Path(dirpath) / name)
    if unreadable:  # os.walk skips them silently: the run would quietly leave their images out
        exc = unreadable[0]
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        raise ImageError(
            f"cannot list the folder {printable(exc.filename)}{more} inside {printable(folder)}: "
            f"{exc.strerror or exc}, so its images would be left out; make it readable (chmod) "
            "or move it out of the input folder"
        )
    return sorted(found, key=lambda f: f.relative_to(root).as_posix())


@contextlib.contextmanager
def output_folder(folder: PathLike) -> Iterator[Path]:
    """``folder`` created (with its parents) for the block; the folders made here are removed
    again on the way out when nothing was written in them, so a refused or failed run leaves
    no empty ``results/`` behind. A folder that existed before is never removed."""
    path = Path(folder)
    top_made = None
    for candidate in (path, *path.parents):  # the highest of the folders that are missing
        if os.path.lexists(candidate):
            break
        top_made = candidate
    ensure_folder(path, what="output folder")
    try:
        yield path
    finally:
        if top_made is not None:
            _remove_empty_folders(top_made)


def _remove_empty_folders(top: Path) -> None:
    for dirpath, _, _ in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):  # not empty: something was written, it stays
            os.rmdir(dirpath)


def mirror_output_path(
    input_file: PathLike,
    *,
    input_root: PathLike,
    output_root: PathLike,
    suffix: str,
    extension: str | None = None,
) -> Path:
    """Where the output of ``input_file`` goes when a folder tree is mirrored.

    ``input_root/a/b/img.png`` -> ``output_root/a/b/img{suffix}.png`` (``extension``, e.g.
    ".png", replaces the input's extension when given). Does not create folders.
    """
    if any(sep in suffix for sep in ("/", "\\", os.sep)):
        raise ImageError(
            f"invalid output suffix {suffix!r}: it contains a path separator, expected a plain "
            "name part such as '_x4'; remove the separator"
        )
    src = Path(os.path.abspath(input_file))
    root = Path(os.path.abspath(input_root))
    try:
        rel = src.relative_to(root)
    except ValueError:
        raise ImageError(
            f"cannot mirror {input_file!s}: it is not inside the input folder {input_root!s}; "
            "pass files found under that folder (list_images)"
        ) from None
    ext = src.suffix if extension is None else extension
    if extension is not None:
        ext = extension if extension.startswith(".") else "." + extension
        if not is_supported(ext):
            raise ImageError(
                f"invalid output extension {extension!r}, expected one of {SUPPORTED_LIST}; "
                "pick one of those"
            )
    return Path(output_root) / rel.parent / f"{src.stem}{suffix}{ext}"


def has_alpha(path: PathLike) -> bool:
    """Whether the image's header declares transparency (no pixels decoded); False when the
    header cannot be read (the image then fails later with its own message)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    except Exception:  # noqa: BLE001  (reported when the image itself is read)
        return False


def output_extension(input_file: PathLike, ext: str) -> str | None:
    """The output extension ``--ext`` asks for (None: keep the input's); a transparent image
    stays PNG when ``ext`` cannot hold alpha, as Real-ESRGAN keeps RGBA in PNG."""
    if ext not in EXT_CHOICES:
        raise ImageError(f"--ext {ext!r}: expected one of {' '.join(EXT_CHOICES)}")
    chosen = Path(input_file).suffix.lower() if ext == "auto" else "." + ext
    if chosen not in ALPHA_EXTENSIONS and has_alpha(input_file):
        return ".png"
    return None if ext == "auto" else chosen
