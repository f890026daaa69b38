"""Helpers of the trust tests (issue 16): a pickle that leaves a mark when it runs, a second
user to plant files as or to run as (root bypasses permission checks, so the foreign-owner
cases run as ``nobody``), and world-readable scratch folders that user can reach."""

from __future__ import annotations

import os
import pwd
import shutil
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from battery_util import script


class MarkerPickle:
    """Unpickling this object calls ``open(marker, "w")``: the marker file appears iff the
    pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.marker, "w")


def second_user() -> pwd.struct_passwd:
    """``nobody``; skips unless this process is root (only root can act as another user)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run as or plant files as a second user")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")


def shared_scratch() -> Iterator[Path]:
    """A 0o755 folder under /tmp (pytest's tmp_path is 0o700: nobody could not enter it)."""
    folder = Path(tempfile.mkdtemp(prefix="edgesr-trust-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def own_folder_of(user: pwd.struct_passwd, folder: Path) -> Path:
    """``folder`` created and handed to ``user`` (their private home for a run)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


def _blocked_ancestor(path: Path) -> tuple[Path, Path] | None:
    """(folder others cannot enter, its child on the way to ``path``), or None."""
    parts = path.resolve().parts
    for depth in range(1, len(parts) - 1):
        folder = Path(*parts[:depth])
        if not os.stat(folder).st_mode & 0o001:
            return folder, Path(*parts[:depth + 1])
    return None


def _namespace_prelude(view: Path) -> str:
    """Shell lines that, in a private mount namespace, let others reach this Python: a folder
    they cannot enter (``/root`` when pyenv lives there) is covered by a 0o755 one that holds
    only the interpreter's tree."""
    blocked = _blocked_ancestor(Path(sys.base_prefix))
    if blocked is None:
        return ""
    folder, child = blocked
    inner = view / child.name
    inner.mkdir(parents=True, exist_ok=True)
    view.chmod(0o755)
    return (f"mount --bind {shlex.quote(str(child))} {shlex.quote(str(inner))} && "
            f"mount --rbind {shlex.quote(str(view))} {shlex.quote(str(folder))} && ")


def run_as(user: pwd.struct_passwd, name: str, *args: object, env: dict[str, str], view: Path,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Console script ``name`` run as ``user`` (no supplementary groups, stdin closed), in a
    private mount namespace when this Python sits in a folder ``user`` cannot enter (``view``
    is an empty scratch folder for that). Skips where namespaces or setpriv are unavailable."""
    if shutil.which("unshare") is None or shutil.which("setpriv") is None:
        pytest.skip("needs unshare and setpriv (util-linux) to run as a second user")
    command = " ".join(shlex.quote(part) for part in [*script(name), *map(str, args)])
    shell = (_namespace_prelude(view) + f"exec setpriv --reuid={user.pw_uid} --regid={user.pw_gid} "
             f"--clear-groups -- {command}")
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "OMP_NUM_THREADS", "LANG", "LC_ALL")}
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell],
                            capture_output=True, text=True, env={**base, **env}, timeout=timeout,
                            stdin=subprocess.DEVNULL, cwd="/")
    if result.returncode != 0 and result.stderr.startswith(("unshare:", "mount:", "setpriv:")):
        pytest.skip(f"cannot run as a second user here: {result.stderr.strip()}")
    return result
