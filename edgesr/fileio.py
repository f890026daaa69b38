"""File helpers every layer may use (standard library only)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def chmod_as_new_file(path: str | os.PathLike[str]) -> None:
    """Give a temp file (``mkstemp`` makes them 0600) the mode a new file gets under the umask.

    Atomic writes go through a temp file that is renamed into place; without this the result
    would be readable by its owner only.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call ``write(temp_path)`` on a temp file beside ``path``, then rename it into place.

    A crash or an exception leaves ``path`` as it was (and no temp file behind). The caller
    checks that the folder exists, so its error can say what to do in its own terms.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        chmod_as_new_file(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text))


CACHE_ENV = "EDGESR_CACHE_DIR"
_CHUNK = 1 << 20


def cache_dir(sub: str) -> Path:
    """``$EDGESR_CACHE_DIR/<sub>``, else ``$XDG_CACHE_HOME/edgesr/<sub>``, else
    ``~/.cache/edgesr/<sub>`` (not created here). Every cache of edgesr lives under one root:
    ``pairs`` (training LR), ``onnx`` (exports), ``trt`` (TensorRT engines), ``ort-tensorrt``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        root = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME", "").strip()
        root = (Path(base).expanduser() if base else Path.home() / ".cache") / "edgesr"
    return root / sub


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks (raises OSError as open does)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
