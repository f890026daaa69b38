"""TensorRT engine cache: keys, manifests, timing caches, and who may write them (pure Python).

A serialized TensorRT engine is executable code built for one TensorRT version and one GPU,
so edgesr only loads engines that it built itself into its own cache:

- :class:`EngineKey` holds everything that makes an engine valid: the ONNX file's sha256,
  the TensorRT version, the GPU name and compute capability, the precision, the optimization
  profile, the DSConv plugin identity/version (empty when the plugin is off), the edgesr
  version, and the builder options that change the engine. Its :meth:`EngineKey.digest`
  (sha256 of the canonical JSON) names the files.
- Each engine ``<digest>.engine`` has a manifest ``<digest>.json`` recording the key and the
  engine's sha256; each timing cache ``<name>.cache`` has ``<name>.cache.sha256``. A file is
  used only if its recorded hash matches the bytes read. Anything else (missing, stale,
  truncated, edited) is ignored with a log line and rebuilt.
- **Who may write** (:func:`check_private`, edgesr.trust's one rule, as ssh's StrictModes
  does for keys): folders owned by this user and not group/world-writable, else one line
  naming the ``chmod``/``chown`` that fixes it; a file that is a symlink, foreign or
  group/world-writable is rebuilt, not loaded. New folders are 0o700, new files 0o600.

The hashes catch corruption; they do not authenticate (docs/tensorrt.md, "Engine cache
trust model", states the limits for users).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edgesr import __version__ as EDGESR_VERSION
from edgesr import fileio, trust
from edgesr.errors import ConfigError, ModelFileError
from edgesr.runtime.engines.trt.profile import OptimizationProfile
from edgesr.spec import PRECISIONS

__all__ = [
    "MANIFEST_FORMAT",
    "EngineKey",
    "cache_root",
    "check_private",
    "engine_paths",
    "load_cached_engine_bytes",
    "load_timing_cache_bytes",
    "read_manifest",
    "save_engine",
    "save_timing_cache_bytes",
    "timing_cache_path",
]

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- keys and paths


@dataclass(frozen=True, kw_only=True)
class EngineKey:
    """Everything a serialized engine depends on. Two builds with equal keys are
    interchangeable; change any field and the cached engine no longer applies."""

    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: str  # "8.7"
    precision: str  # "fp32" | "fp16"
    profile: OptimizationProfile
    plugin_version: str = ""  # "" when built without the DSConv plugin
    edgesr_version: str = EDGESR_VERSION
    builder: Mapping[str, str] = field(default_factory=dict)  # options that change the engine

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if not _SHA256.fullmatch(self.onnx_sha256):
            raise ConfigError(
                f"onnx_sha256 must be 64 lowercase hex digits, received {self.onnx_sha256!r}"
            )
        object.__setattr__(self, "builder", {str(k): str(v) for k, v in self.builder.items()})

    def as_dict(self) -> dict[str, object]:
        return {
            "onnx_sha256": self.onnx_sha256,
            "trt_version": self.trt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": self.compute_capability,
            "precision": self.precision,
            "profile": self.profile.as_dict(),
            "plugin_version": self.plugin_version,
            "edgesr_version": self.edgesr_version,
            "builder": dict(sorted(self.builder.items())),
        }

    def digest(self) -> str:
        """sha256 of the canonical JSON of :meth:`as_dict` (names the cache files)."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The TensorRT cache folder: ``cache_dir`` if given, else edgesr's ``trt`` cache
    (``edgesr.fileio.cache_dir("trt")``). Not created here."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return fileio.cache_dir("trt")


def engine_paths(key: EngineKey, *, root: Path) -> tuple[Path, Path]:
    """(engine file, manifest file) of ``key`` under ``root``."""
    digest = key.digest()
    folder = root / "engines"
    return folder / f"{digest}.engine", folder / f"{digest}.json"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown"


def timing_cache_path(*, root: Path, trt_version: str, gpu_name: str, compute_capability: str) -> Path:
    """The timing cache shared by every build with this TensorRT version and GPU."""
    name = f"trt-{_slug(trt_version)}_{_slug(gpu_name)}_sm{compute_capability.replace('.', '')}"
    return root / "timing" / f"{name}.cache"


# --------------------------------------------------------------------------- manifests


def read_manifest(path: Path) -> dict[str, object] | None:
    """The manifest JSON, or None (logged) when missing, unreadable or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError and bad UTF-8
        problem = f"cannot be read ({exc})"
    else:
        if isinstance(data, dict):
            return data
        problem = "is not a JSON object"
    logger.warning("TensorRT cache manifest %s %s; the engine will be rebuilt", path, problem)
    return None


# --------------------------------------------------------------------------- who may write


#: edgesr's one trust rule (edgesr.trust): "" when ``path`` is this user's own real
#: ``kind`` ("folder" or "file") and not group/world-writable, else what is wrong with it.
check_private = trust.problem_with


def _private_dir(path: Path) -> None:
    """Create ``path`` (0o700) if needed, then refuse it unless only this user can write it."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the TensorRT cache folder {path}: {exc.strerror}; set "
            f"{fileio.CACHE_ENV} to a writable folder"
        ) from exc
    problem = check_private(path, kind="folder")
    if problem:
        raise ConfigError(
            f"refusing the TensorRT cache folder {path}: it {problem}; TensorRT engines are "
            f"code, so only you may write there (chown it to yourself and chmod 700 {path}, or "
            f"set {fileio.CACHE_ENV} to a private folder)"
        )


def _trusted_file(path: Path, what: str) -> bool:
    """False (logged) when ``path`` exists but someone else could have written it."""
    problem = check_private(path, kind="file")
    if problem and os.path.lexists(path):
        logger.warning("not loading %s %s: it %s; rebuilding it", what, path, problem)
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    """Atomic write (edgesr.fileio), mode 0o600, into a checked private folder."""
    _private_dir(path.parent)
    fileio.write_atomically(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=True,  # a rebuild replaces
                            mode=0o600)


def _read_verified(path: Path, expected: object, what: str) -> bytes | None:
    """``path``'s bytes if they hash to ``expected`` (64 hex digits), else None (logged)."""
    if not isinstance(expected, str) or not _SHA256.fullmatch(expected):
        logger.warning("%s %s has no valid recorded sha256; rebuilding", what, path)
        return None
    if not _trusted_file(path, what):
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        logger.warning("cannot read %s %s (%s); rebuilding", what, path, exc.strerror)
        return None
    actual = hashlib.sha256(data).hexdigest()  # hash the very bytes that would be used
    if actual != expected:
        logger.warning(
            "refusing %s %s: its sha256 %s… does not match the recorded %s… (modified, "
            "truncated or replaced); rebuilding",
            what, path, actual[:12], expected[:12],
        )  # fmt: skip
        return None
    return data


# --------------------------------------------------------------------------- engines


def save_engine(key: EngineKey, engine_bytes: bytes, *, root: Path) -> Path:
    """Store an engine this tool just built, with its manifest; returns the engine path."""
    if not engine_bytes:
        raise ModelFileError("refusing to cache an empty TensorRT engine; the build failed")
    _private_dir(root)
    engine_path, manifest_path = engine_paths(key, root=root)
    with contextlib.suppress(FileNotFoundError):  # an old manifest must never vouch for new bytes
        manifest_path.unlink()
    _write_private(engine_path, engine_bytes)
    manifest = {
        "format": MANIFEST_FORMAT,
        "built_by": f"edgesr {EDGESR_VERSION}",
        "created_unix": int(time.time()),
        "key_sha256": key.digest(),
        "key": key.as_dict(),
        "engine_file": engine_path.name,
        "engine_sha256": hashlib.sha256(engine_bytes).hexdigest(),
        "engine_bytes": len(engine_bytes),
    }
    _write_private(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    logger.info("cached TensorRT engine %s (%.1f MB)", engine_path, len(engine_bytes) / 1e6)
    return engine_path


def load_cached_engine_bytes(key: EngineKey, *, root: Path) -> bytes | None:
    """The cached engine for ``key`` if this tool built it, it is intact and only this user
    could have written it; else None (logged) and the caller rebuilds. ConfigError when the
    cache root itself may be written by others."""
    _private_dir(root)
    engine_path, manifest_path = engine_paths(key, root=root)
    if os.path.lexists(engine_path.parent):
        _private_dir(engine_path.parent)  # engines/ under the rule too, not only the root
    if not _trusted_file(manifest_path, "TensorRT cache manifest"):
        return None
    manifest = read_manifest(manifest_path)
    if manifest is None:
        logger.debug("no cached TensorRT engine for key %s", key.digest()[:16])
        return None
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("key") != key.as_dict():
        logger.warning(
            "TensorRT cache manifest %s does not describe this build (another key or format); "
            "ignoring it and rebuilding",
            manifest_path,
        )
        return None
    data = _read_verified(engine_path, manifest.get("engine_sha256"), "TensorRT engine")
    if data is not None:
        logger.debug("TensorRT engine cache hit: %s", engine_path)
    return data


# --------------------------------------------------------------------------- timing caches


def load_timing_cache_bytes(path: Path) -> bytes:
    """The timing cache's bytes when its digest (edgesr.trust's ``<entry>.sha256``, under the
    rule) matches them, else b"" (a new one)."""
    _private_dir(path.parent)
    if not path.exists():
        return b""
    data = _read_verified(path, trust.recorded_digest(path), "TensorRT timing cache")
    return b"" if data is None else data


def save_timing_cache_bytes(path: Path, data: bytes) -> None:
    """Store the timing cache as an edgesr.trust entry (builds running at once keep the last)."""
    if data:
        _private_dir(path.parent)
        trust.write_entry(path, lambda tmp: Path(tmp).write_bytes(data))
