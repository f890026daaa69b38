"""File helpers every layer may use (standard library only).

One atomic writer for every output edgesr makes (images, reports, ONNX, weights, caches):
:func:`write_atomically`. The data goes to a hidden temp file in the target's folder, is
fsync'ed, and is then committed:

- without ``overwrite``: ``os.link(temp, target)``, which fails when ``target`` exists. "The
  output exists" is therefore decided by the kernel at commit time, so two processes writing
  the same new path cannot both succeed (a check made before the work could go stale);
- with ``overwrite``: ``os.replace(temp, target)``, an atomic swap (readers see the old or the
  new file, never a mixture). A symlink at ``target`` is replaced, never written through.

File systems without hard links (FAT, some network mounts) get the no-clobber commit by
claiming the name with ``O_CREAT | O_EXCL`` and then replacing that placeholder: still
exclusive, but a reader may briefly see an empty file.

:func:`check_output_file` runs the same refusals before the work starts (not an input, folder
exists and is writable, name within NAME_MAX, free space for an estimate), so a long run does
not end in an error it could have given at once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from edgesr.errors import OutputError

PathLike = str | os.PathLike[str]

CACHE_ENV = "EDGESR_CACHE_DIR"
_CHUNK = 1 << 20
#: Longest file name (bytes) when the file system does not say (Linux, macOS, Windows: 255).
DEFAULT_NAME_MAX = 255
_TEMP_SUFFIX_LEN = len(".00000000.tmp")


def chmod_as_new_file(path: PathLike) -> None:
    """Give a temp file the mode a new file gets under the umask (``mkstemp`` makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def name_max(folder: PathLike) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no answer
        return DEFAULT_NAME_MAX


def temp_name_for(target: Path) -> str:
    """A hidden, random temp name for ``target`` that fits NAME_MAX however long the name is.

    The target's name is cut (at a UTF-8 character boundary) to leave room for the dot and the
    random suffix: a legal 250-byte name must not fail because its temp name is longer.
    """
    budget = name_max(target.parent if str(target.parent) else ".") - 1 - _TEMP_SUFFIX_LEN
    stem = os.fsencode(target.name)[:budget].decode("utf-8", errors="ignore")
    return f".{stem}.{secrets.token_hex(4)}.tmp"


def _fsync_folder(folder: Path) -> None:
    """Make the commit itself durable (POSIX); best effort: not every file system allows it."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exists_error(target: Path) -> OutputError:
    return OutputError(
        f"refusing to write {target}: the file already exists (perhaps written meanwhile by "
        "another process), expected a new path; choose another path or allow overwriting "
        "(--overwrite)"
    )


def _commit_no_clobber(tmp: Path, target: Path) -> None:
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _exists_error(target) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        try:  # no hard links here: claim the name exclusively, then swap the data in
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise _exists_error(target) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def write_atomically(
    path: PathLike, write: Callable[[str], object], *, overwrite: bool = False,
    mode: int | None = None,
) -> Path:
    """Call ``write(temp_path)``, fsync the temp file, then commit it as ``path`` (module notes).

    Without ``overwrite`` an existing ``path`` (even one created while ``write`` ran) raises
    :class:`OutputError` and is left untouched. Any failure leaves ``path`` as it was and no
    temp file behind. OS errors (read-only folder, disk full) become one-line OutputErrors.
    ``mode`` (e.g. 0o600 for a cache entry) is set on the temp file before the commit, so the
    file never appears with another mode and no chmod after it can meet a file that another
    process has replaced or removed meanwhile; None gives a new file's mode under the umask.
    """
    target = Path(path)
    tmp = target.with_name(temp_name_for(target))
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            write(str(tmp))
            if mode is None:
                chmod_as_new_file(tmp)
            else:
                os.chmod(tmp, mode)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(tmp, target)
            else:
                _commit_no_clobber(tmp, target)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {_reason(exc)}") from None
    _fsync_folder(target.parent)
    return target


def write_bytes_atomically(path: PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    return write_atomically(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)


def write_text_atomically(path: PathLike, text: str, *, overwrite: bool = False) -> Path:
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)


def _reason(exc: OSError) -> str:
    hints = {
        errno.EACCES: "permission denied; make the folder writable or choose another path",
        errno.EPERM: "operation not permitted; choose another path",
        errno.EROFS: "the file system is read-only; choose another path",
        errno.ENOSPC: "no space left on the device; free some space or choose another disk",
        errno.ENOENT: "the folder does not exist; create it first (mkdir -p)",
        errno.ENAMETOOLONG: "the file name is too long; choose a shorter name",
    }
    return hints.get(exc.errno or -1, f"{exc.strerror or exc}; check the path")


def _same_file(a: PathLike, b: PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: nothing to protect
        return False


def check_output_file(
    path: PathLike,
    *,
    inputs: Iterable[PathLike] = (),
    overwrite: bool = False,
    estimate_bytes: int = 0,
    what: str = "output",
) -> Path:
    """Refuse, before any work, an output that cannot or must not be written: a folder, one of
    ``inputs`` (by ``os.path.samefile``: symlinks, hard links and other spellings are caught;
    refused even with ``overwrite``), an existing file without ``overwrite``, a missing or
    read-only folder, a name longer than NAME_MAX, or less free space than ``estimate_bytes``.
    ``what`` names the output in messages (``--csv``, ``output image``). Returns ``Path(path)``.

    The existence check is advisory; :func:`write_atomically` decides again at commit time.
    """
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    limit = name_max(folder) if folder.is_dir() else DEFAULT_NAME_MAX
    if len(os.fsencode(out.name)) > limit:  # first: stat() of such a path fails itself
        raise OutputError(
            f"cannot write {what} {out}: the name is {len(os.fsencode(out.name))} bytes, this "
            f"file system allows {limit}; choose a shorter name"
        )
    if out.is_dir():
        raise OutputError(f"cannot write {what} {out}: it is a folder, expected a file path")
    for inp in inputs:
        if _same_file(out, inp):
            raise OutputError(
                f"refusing to write {what} {out}: it is the input {inp}, and edgesr never "
                "overwrites an input; choose another path"
            )
    if os.path.lexists(out) and not overwrite:
        raise OutputError(
            f"refusing to write {what} {out}: the file already exists, expected a new path; "
            "choose another path or allow overwriting (--overwrite)"
        )
    check_writable_folder(folder, what=f"{what} {out}")
    check_free_space(folder, estimate_bytes, what=f"{what} {out}")
    return out


def files_under(folder: PathLike) -> list[Path]:
    """Every file under ``folder`` (recursive; a file path gives itself): the inputs an output
    must never replace. Nothing for a path that does not exist (the reader reports that)."""
    root = Path(folder)
    if root.is_file():
        return [root]
    return [Path(d) / name for d, _, names in os.walk(root) for name in names]


def check_writable_folder(folder: PathLike, *, what: str) -> Path:
    """``folder`` exists, is a folder, and this user may create files in it."""
    folder = Path(folder)
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(
            f"cannot write {what}: the folder {folder} {state}; create it first (mkdir -p) or "
            "choose another path"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {what}: the folder {folder} is not writable for this user; choose "
            "another path or fix its permissions"
        )
    # os.access trusts the mode bits (and says yes to root everywhere): creating a hidden
    # probe file is the only answer that also covers ACLs, immutable folders and pseudo file
    # systems such as /proc.
    probe = folder / temp_name_for(folder / "write-probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write {what}: the folder {folder} does not take new files "
                          f"({exc.strerror or exc}); choose another path") from None
    return folder


def check_free_space(folder: PathLike, estimate_bytes: int, *, what: str) -> None:
    if estimate_bytes <= 0:
        return
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return  # cannot tell: the write itself will report a full disk
    if usage.total == 0:
        return  # a pseudo file system reports no sizes at all
    free = usage.free
    if free < estimate_bytes:
        raise OutputError(
            f"cannot write {what}: about {estimate_bytes / 1e6:.1f} MB is needed and "
            f"{folder} has {free / 1e6:.1f} MB free; free some space or choose another disk"
        )


def ensure_folder(folder: PathLike, *, what: str) -> Path:
    """Create ``folder`` (and parents) for ``what``; OS errors become one-line OutputErrors."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(
            f"cannot use {folder} as {what}: it exists and is not a folder; choose another path"
        ) from None
    except OSError as exc:
        raise OutputError(f"cannot create {what} {folder}: {_reason(exc)}") from None
    return check_writable_folder(folder, what=what)


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


def file_sha256(path: PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks (raises OSError as open does)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
