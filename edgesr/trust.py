"""One trust rule for everything edgesr reads back from disk (standard library only).

Caches (ONNX exports, ONNX Runtime graphs, TensorRT engines, compiled OpenVINO models) and a
training run's ``--out-dir`` hold files that become code or state when loaded, so, as ssh's
StrictModes does for keys, edgesr only reads them back when nobody else could have written
them:

- **folders** (a cache root, its sub-folders, ``--out-dir``) must be real folders (not
  symbolic links), owned by this user and not writable by group or others;
- **entries** (cached files) must be regular files under the same rule, and each one's SHA-256
  recorded at write time (``<entry>.sha256``, written after the entry) must match the bytes
  read back. The hash catches corruption, truncation and edits made by mistake; it does not
  authenticate (whoever can write as this user can write a matching pair), the ownership and
  mode checks keep everyone else out.

A cache folder that fails the rule is not used: :func:`cache_folder` logs one warning line and
hands out a fresh private temporary folder instead (removed at exit), so the work is redone
there; a folder that cannot be made at all (a file in the way, a read-only place) is an
error, as any output folder is. An entry that fails is ignored with one warning line and
rebuilt in place (its folder passed the rule). New folders are made 0o700, entries 0o600.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from edgesr import fileio
from edgesr.errors import OutputError, TrustError, printable

logger = logging.getLogger(__name__)

UNSAFE_BITS = stat.S_IWGRP | stat.S_IWOTH
DIGEST_SUFFIX = ".sha256"


def problem_with(path: Path, *, kind: str) -> str:
    """"" when ``path`` is a real ``kind`` ("folder" or "file") owned by this user and not
    group/world-writable, else what is wrong with it (completes "it ...")."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot be checked ({exc.strerror})"
    want_dir = kind == "folder"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if want_dir != stat.S_ISDIR(st.st_mode) or (not want_dir and not stat.S_ISREG(st.st_mode)):
        return f"is not a {'folder' if want_dir else 'regular file'}"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & UNSAFE_BITS:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return ""


def require_own_folder(folder: Path, *, what: str, why: str) -> Path:
    """``folder`` under the rule, else :class:`TrustError` naming the fix (``why`` says what
    would be loaded from there)."""
    problem = problem_with(folder, kind="folder")
    if problem:
        raise TrustError(
            f"refusing {what} {printable(folder)}: it {problem}; {why}, so only you may write "
            f"there (chown it to yourself and chmod go-w it, or choose another folder)"
        )
    return folder


def make_private_folder(folder: Path, *, what: str = "folder") -> str:
    """Create ``folder`` (0o700; parents as the umask says) if missing; "" when it then passes
    the rule, else what is wrong with it. A folder that cannot exist there (a file in the
    way, no permission to create it) is an :class:`OutputError` naming ``what``: not a
    question of trust, and a private temporary folder would hide the mistake."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise OutputError(f"cannot use {printable(folder)} as the {what}: it exists and is not a "
                          f"folder; choose another path (set {fileio.CACHE_ENV})") from None
    except OSError as exc:
        raise OutputError(f"cannot create the {what} {printable(folder)}: {exc.strerror or exc}; "
                          f"choose a writable place (set {fileio.CACHE_ENV})") from None
    return problem_with(folder, kind="folder")


_fallbacks: list[str] = []
_warned: set[str] = set()


def _remove_fallbacks() -> None:
    for folder in _fallbacks:
        shutil.rmtree(folder, ignore_errors=True)


def private_temp_folder(prefix: str) -> Path:
    """A new 0o700 temporary folder of this user's, removed when the process exits."""
    if not _fallbacks:
        atexit.register(_remove_fallbacks)
    folder = tempfile.mkdtemp(prefix=f"edgesr-{prefix}-")
    _fallbacks.append(folder)
    return Path(folder)


def cache_folder(folder: Path, *, what: str, check_parent: bool = False) -> Path:
    """``folder`` (created 0o700 when missing) when it passes the rule, else one warning line
    and a private temporary folder to rebuild in. ``check_parent``: the cache root above it
    (edgesr's own, e.g. ``$EDGESR_CACHE_DIR``) must pass too."""
    problem, shown = "", folder
    if check_parent:
        problem = make_private_folder(folder.parent, what=what)
        shown = folder.parent
    if not problem:
        problem, shown = make_private_folder(folder, what=what), folder
    if not problem:
        return folder
    fallback = private_temp_folder(folder.name or "cache")
    # One line per refused folder and process: every cache under a refused root would say it.
    log = logger.debug if str(shown) in _warned else logger.warning
    _warned.add(str(shown))
    log("not using the %s %s: it %s; working in the private folder %s instead (make it yours "
        "with chmod 700, or set %s to a private folder)", what, printable(shown), problem,
        fallback, fileio.CACHE_ENV)
    return fallback


def default_cache_folder(sub: str, *, what: str) -> Path:
    """edgesr's cache folder ``sub`` (:func:`edgesr.fileio.cache_dir`), root checked too."""
    return cache_folder(fileio.cache_dir(sub), what=what, check_parent=True)


def digest_path(entry: Path) -> Path:
    return entry.with_name(entry.name + DIGEST_SUFFIX)


def write_entry(entry: Path, write: Callable[[str], object]) -> Path:
    """Write a cache entry atomically (``write(temp_path)``), mode 0o600, then record its
    SHA-256. The old digest goes first, so it never vouches for new bytes."""
    digest = digest_path(entry)
    try:
        digest.unlink()
    except FileNotFoundError:
        pass
    fileio.write_atomically(entry, write, overwrite=True, mode=0o600)  # a rebuild replaces
    record_digest(entry)
    return entry


def record_digest(entry: Path, sha256: str | None = None) -> None:
    """Write ``<entry>.sha256`` (0o600) for bytes this process just wrote."""
    text = (sha256 or fileio.file_sha256(entry)) + "\n"
    digest = digest_path(entry)
    fileio.write_atomically(digest, lambda tmp: Path(tmp).write_text(text), overwrite=True, mode=0o600)


def recorded_digest(entry: Path) -> str | None:
    """The SHA-256 recorded for ``entry`` when its digest file passes the rule, else None."""
    digest = digest_path(entry)
    if problem_with(digest, kind="file"):
        return None
    try:
        text = digest.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    valid = len(text) == 64 and all(c in "0123456789abcdef" for c in text)
    return text if valid else None


def entry_problem(entry: Path) -> str:
    """"" when the entry passes the rule and its bytes match the recorded SHA-256, else what is
    wrong (``"is missing"`` when there is nothing at ``entry``)."""
    if not os.path.lexists(entry):
        return "is missing"
    problem = problem_with(entry, kind="file")
    if problem:
        return problem
    expected = recorded_digest(entry)
    if expected is None:
        return f"has no valid recorded SHA-256 ({digest_path(entry).name})"
    try:
        actual = fileio.file_sha256(entry)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if actual != expected:
        return "does not match its recorded SHA-256 (modified, truncated or replaced)"
    return ""


def verified_entry(entry: Path, *, what: str) -> bool:
    """True when ``entry`` may be used; False when it is missing, or (one warning line) when
    it fails the rule: the caller rebuilds it."""
    problem = entry_problem(entry)
    if problem == "is missing":
        return False
    if problem:
        logger.warning("not using the cached %s %s: it %s; rebuilding it", what,
                       printable(entry), problem)
        return False
    return True


# ------------------------------------------------------------- caches another tool writes

#: Digests of the entries in a cache folder another library writes (ONNX Runtime's TensorRT
#: provider, OpenVINO's CACHE_DIR), recorded by :func:`seal_tool_cache`.
TOOL_MANIFEST = ".edgesr-digests"


def checked_tool_cache(folder: Path, *, what: str) -> Path:
    """A cache folder another library fills (it cannot record digests itself): the folder under
    the rule (else a private temporary one, as :func:`cache_folder`), and every entry in it a
    private regular file whose digest :func:`seal_tool_cache` recorded; any other entry is
    removed (one warning line), so the library rebuilds it."""
    folder = cache_folder(folder, what=what)
    recorded = _tool_manifest(folder)
    refused = []
    for entry in sorted(folder.iterdir()):
        if entry.name == TOOL_MANIFEST:
            continue
        problem = problem_with(entry, kind="file")
        if not problem and recorded.get(entry.name) != fileio.file_sha256(entry):
            problem = "has no matching recorded SHA-256"
        if problem:
            refused.append(f"{printable(entry.name)} ({problem})")
            _remove(entry)
    if refused:
        logger.warning("removed from the %s %s, to be rebuilt: %s", what, printable(folder),
                       "; ".join(refused))
    return folder


def seal_tool_cache(folder: Path) -> None:
    """Record the digest of every private entry of ``folder`` (after the library wrote it)."""
    if problem_with(folder, kind="folder"):
        return
    digests = {entry.name: fileio.file_sha256(entry) for entry in sorted(folder.iterdir())
               if entry.name != TOOL_MANIFEST and not problem_with(entry, kind="file")}
    text = "".join(f"{sha}  {name}\n" for name, sha in digests.items())
    manifest = folder / TOOL_MANIFEST
    fileio.write_atomically(manifest, lambda tmp: Path(tmp).write_text(text), overwrite=True, mode=0o600)


def _tool_manifest(folder: Path) -> dict[str, str]:
    manifest = folder / TOOL_MANIFEST
    if problem_with(manifest, kind="file"):
        return {}
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    pairs = (line.split("  ", 1) for line in lines if "  " in line)
    return {name: sha for sha, name in pairs}


def _remove(entry: Path) -> None:
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    except OSError:
        pass
