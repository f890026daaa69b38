"""File helpers every layer may use (standard library only)."""

from __future__ import annotations

import os


def chmod_as_new_file(path: str | os.PathLike[str]) -> None:
    """Give a temp file (``mkstemp`` makes them 0600) the mode a new file gets under the umask.

    Atomic writes go through a temp file that is renamed into place; without this the result
    would be readable by its owner only.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
