"""The LR pairs cache of ``edgesr.data.folder.prepare_pairs``: where each image's cropped HR
and LR arrays live, and when a cached entry may be used.

The key is the image's resolved path, modification time (ns), size, the scale and
``CACHE_VERSION``. Every folder and entry follows edgesr's one trust rule
(:mod:`edgesr.trust`): folders this user's, private and not symbolic links; each ``.npy`` used
only while its SHA-256, recorded at write time, matches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import numpy as np

from edgesr import trust
from edgesr.errors import DataError, OutputError
from edgesr.fileio import CACHE_ENV

logger = logging.getLogger(__name__)

# Bump when the LR recipe or the cache layout changes: old entries are then ignored.
CACHE_VERSION = 1


def cache_paths(source: Path, scale: int, folder: Path) -> tuple[Path, Path]:
    """Where ``source``'s HR and LR arrays are cached in ``folder`` (the cache's x{scale})."""
    st = source.stat()
    key_text = f"v{CACHE_VERSION}|{source.resolve()}|{st.st_mtime_ns}|{st.st_size}|x{scale}"
    key = hashlib.sha256(key_text.encode("utf-8")).hexdigest()[:24]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source.stem)[:40]
    return folder / f"{stem}-{key}.hr.npy", folder / f"{stem}-{key}.lr.npy"


def scale_folder(cache_dir: str | os.PathLike[str] | None, scale: int) -> Path:
    """The cache's x{scale} folder under the trust rule: this user's, private, no symbolic
    links (else a private temporary folder, one warning line); a place where no folder can
    be made is a DataError."""
    what = "LR pairs cache"
    try:
        root = (trust.default_cache_folder("pairs", what=what) if cache_dir is None
                else trust.cache_folder(Path(cache_dir), what=what))
        return trust.cache_folder(root / f"x{scale}", what=what)
    except OutputError as exc:
        raise _unwritable(exc) from None


def _unwritable(problem: Exception, where: Path | None = None) -> DataError:
    place = f" in {str(where)!r}" if where is not None else ""
    return DataError(
        f"cannot write the LR cache{place} ({problem}); expected a writable folder. Pass "
        f"cache_dir=... or set {CACHE_ENV} to a writable folder."
    )


def entry_problem(hr_path: Path, lr_path: Path) -> str:
    """"" when both arrays pass the trust rule (digest included), "is missing" when either is
    absent, else what is wrong with the first that fails (completes "it ...")."""
    for path in (hr_path, lr_path):
        problem = trust.entry_problem(path)
        if problem:
            return problem
    return ""


def load_cached(hr_path: Path, lr_path: Path, scale: int) -> tuple[int, int] | None:
    """The cached HR size if both files (verified by :func:`entry_problem`) are consistent,
    else None."""
    try:
        hr = np.load(hr_path, mmap_mode="r")
        lr = np.load(lr_path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        logger.warning("ignoring a broken cache entry %s: %s", hr_path.name, exc)
        return None
    if (
        hr.dtype != np.uint8
        or lr.dtype != np.uint8
        or hr.ndim != 3
        or hr.shape[2] != 3
        or lr.shape != (hr.shape[0] // scale, hr.shape[1] // scale, 3)
    ):
        logger.warning("ignoring an inconsistent cache entry %s", hr_path.name)
        return None
    return int(hr.shape[0]), int(hr.shape[1])


def _save_atomic(path: Path, array: np.ndarray) -> None:
    # a cache entry (0o600, its SHA-256 recorded): replacing a stale or concurrent one is right
    def save(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.save would append .npy to a name
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)

    trust.write_entry(path, save)


def save_pair(hr_path: Path, lr_path: Path, hr: np.ndarray, lr: np.ndarray) -> None:
    """Write one image's cropped HR and its LR as cache entries; DataError when the cache
    cannot be written."""
    try:
        _save_atomic(hr_path, hr)
        _save_atomic(lr_path, lr)
    except (OSError, OutputError) as exc:
        raise _unwritable(exc, hr_path.parent.parent) from exc
