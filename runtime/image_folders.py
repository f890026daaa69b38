"""Folder mode: the images of a folder (hidden files skipped) and where each one's output
goes in the mirrored output tree."""

from __future__ import annotations

import os
from pathlib import Path

from edgesr.errors import ImageError
from edgesr.runtime.imageio import SUPPORTED_LIST, PathLike, is_supported

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
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        for name in filenames:
            if not _hidden(name) and is_supported(os.path.splitext(name)[1]):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda f: f.relative_to(root).as_posix())


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
