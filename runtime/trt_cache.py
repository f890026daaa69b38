"""TensorRT engine cache: keys, manifests, atomic files, timing caches, profiles (pure Python).

A serialized TensorRT engine is executable code built for one TensorRT version and one GPU,
so edgesr only ever loads engines that it built itself into its own cache, and checks each
one by hash before handing it to TensorRT:

- :class:`EngineKey` holds everything that makes an engine valid: the ONNX file's sha256,
  the TensorRT version, the GPU name and compute capability, the precision, the optimization
  profile (min/opt/max input shapes), the DSConv plugin identity/version (empty when the
  plugin is off), the edgesr version, and the builder options that change the engine.
  Its :meth:`EngineKey.digest` (sha256 of the canonical JSON) names the files.
- Each engine ``<digest>.engine`` has a manifest ``<digest>.json`` recording the key fields
  and the engine file's sha256. :func:`load_cached_engine_bytes` returns the bytes only if
  the manifest exists, records exactly this key, and the bytes hash to the recorded sha256.
  Anything else (missing, stale, truncated, tampered) returns None with a log line saying
  why, and the caller rebuilds, which overwrites both files.
- Files are written atomically (temporary file in the same folder, fsync, ``os.replace``),
  the engine before its manifest, so an interrupted write never leaves a loadable pair.

The cache folder is ``edgesr.fileio.cache_dir("trt")`` (``$EDGESR_CACHE_DIR/trt``, else
``$XDG_CACHE_HOME/edgesr/trt``, else ``~/.cache/edgesr/trt``; created with mode 0o700). The hash check catches corruption, truncation and files swapped or edited by
mistake; it cannot stop someone who can write to the cache folder from writing a matching
engine and manifest, so keep that folder private.

Timing caches (tactic timings, not code) are shared by all engines of one TensorRT version
and GPU: :func:`timing_cache_path`.

:func:`profile_from_tiling` turns the tiling advice (tile size, overlap, smallest input)
into the optimization profile's min/opt/max NCHW shapes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edgesr import __version__ as EDGESR_VERSION
from edgesr import fileio
from edgesr.errors import ConfigError, ModelFileError
from edgesr.spec import PRECISIONS

__all__ = [
    "MANIFEST_FORMAT",
    "EngineKey",
    "OptimizationProfile",
    "atomic_write_bytes",
    "cache_root",
    "engine_paths",
    "file_sha256",
    "load_cached_engine_bytes",
    "load_timing_cache_bytes",
    "profile_from_tiling",
    "read_manifest",
    "save_engine",
    "save_timing_cache_bytes",
    "timing_cache_path",
]

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1

Shape4 = tuple[int, int, int, int]


# --------------------------------------------------------------------------- profiles


def _shape4(name: str, value: object) -> Shape4:
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise ConfigError(f"profile {name} must be 4 integers (N, C, H, W), received {value!r}")
    dims = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(
                f"profile {name} must be positive integers (N, C, H, W), received {value!r}"
            )
        dims.append(int(v))
    return (dims[0], dims[1], dims[2], dims[3])


@dataclass(frozen=True, kw_only=True)
class OptimizationProfile:
    """Min/opt/max NCHW shapes of the engine input (TensorRT optimization profile).

    Every axis must satisfy min <= opt <= max; C is fixed (all three equal).
    """

    min: Shape4
    opt: Shape4
    max: Shape4

    def __post_init__(self) -> None:
        lo = _shape4("min", self.min)
        mid = _shape4("opt", self.opt)
        hi = _shape4("max", self.max)
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "opt", mid)
        object.__setattr__(self, "max", hi)
        for axis, label in enumerate("NCHW"):
            if not lo[axis] <= mid[axis] <= hi[axis]:
                raise ConfigError(
                    f"profile axis {label}: need min <= opt <= max, received "
                    f"{lo[axis]} / {mid[axis]} / {hi[axis]}; widen max or lower min"
                )
        if not lo[1] == mid[1] == hi[1]:
            raise ConfigError(
                f"profile channels must be fixed, received {lo[1]} / {mid[1]} / {hi[1]}"
            )

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    def contains(self, shape: tuple[int, ...]) -> bool:
        """True if an NCHW ``shape`` lies inside [min, max] on every axis."""
        return len(shape) == 4 and all(
            lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max)
        )

    def describe(self) -> str:
        def fmt(s: Shape4) -> str:
            return "x".join(str(v) for v in s)

        return f"{fmt(self.min)} .. {fmt(self.opt)} .. {fmt(self.max)}"


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def profile_from_tiling(
    *,
    tile_px: int,
    overlap_px: int,
    min_size_px: int = 1,
    size_multiple: int = 1,
    channels: int = 3,
    batch: tuple[int, int, int] = (1, 1, 1),
) -> OptimizationProfile:
    """The profile for tiled inference (see ``runtime/tiling.py``).

    The tiler sends at most ``tile_px + 2 * overlap_px`` LR pixels per side, so that is the
    max (and the opt: most tiles are full). Images smaller than one tile go through whole,
    down to ``min_size_px`` (the model's smallest input; the engine pads anything smaller).
    Sides are rounded up to ``size_multiple``. ``batch`` is (min, opt, max) N.
    """
    for name, value, minimum in (
        ("tile_px", tile_px, 1),
        ("overlap_px", overlap_px, 0),
        ("min_size_px", min_size_px, 1),
        ("size_multiple", size_multiple, 1),
        ("channels", channels, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{name}={value!r}, expected an integer >= {minimum}")
    side_max = _round_up(tile_px + 2 * overlap_px, size_multiple)
    side_min = min(_round_up(min_size_px, size_multiple), side_max)
    n_min, n_opt, n_max = (int(v) for v in batch)
    return OptimizationProfile(
        min=(n_min, channels, side_min, side_min),
        opt=(n_opt, channels, side_max, side_max),
        max=(n_max, channels, side_max, side_max),
    )


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
        if not re.fullmatch(r"[0-9a-f]{64}", self.onnx_sha256):
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


def _ensure_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the TensorRT cache folder {path}: {exc}; set {fileio.CACHE_ENV} to a "
            "writable folder"
        ) from exc


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


# --------------------------------------------------------------------------- files


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file (``edgesr.fileio.file_sha256``); ModelFileError when it
    cannot be read."""
    try:
        return fileio.file_sha256(path)
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc}; check the path") from exc


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync,
    then ``os.replace``. Readers see the old file or the new one, never a partial one."""
    target = Path(path)
    _ensure_dir(target.parent)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_manifest(path: Path) -> dict[str, object] | None:
    """The manifest JSON, or None (logged) when missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read TensorRT cache manifest %s (%s); the engine will be rebuilt", path, exc)
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        logger.warning("TensorRT cache manifest %s is not valid JSON (%s); the engine will be rebuilt", path, exc)
        return None
    if not isinstance(data, dict):
        logger.warning("TensorRT cache manifest %s is not a JSON object; the engine will be rebuilt", path)
        return None
    return data


def save_engine(key: EngineKey, engine_bytes: bytes, *, root: Path) -> Path:
    """Store an engine this tool just built, with its manifest; returns the engine path."""
    if not engine_bytes:
        raise ModelFileError("refusing to cache an empty TensorRT engine; the build failed")
    engine_path, manifest_path = engine_paths(key, root=root)
    _ensure_dir(engine_path.parent)
    with contextlib.suppress(FileNotFoundError):  # an old manifest must never vouch for new bytes
        manifest_path.unlink()
    atomic_write_bytes(engine_path, engine_bytes)
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
    atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    logger.info("cached TensorRT engine %s (%.1f MB)", engine_path, len(engine_bytes) / 1e6)
    return engine_path


def load_cached_engine_bytes(key: EngineKey, *, root: Path) -> bytes | None:
    """The cached engine for ``key`` if (and only if) this tool built it and it is intact.

    Returns None, with a log line saying why, when there is no manifest, when the manifest
    records another key or format, when the engine file is missing, or when its sha256
    differs from the manifest's (a tampered, truncated or swapped file is never handed to
    TensorRT). The caller then rebuilds, which replaces both files.
    """
    engine_path, manifest_path = engine_paths(key, root=root)
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
    expected = manifest.get("engine_sha256")
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-f]{64}", expected):
        logger.warning("TensorRT cache manifest %s has no valid engine_sha256; rebuilding", manifest_path)
        return None
    try:
        data = engine_path.read_bytes()
    except FileNotFoundError:
        logger.warning("cached TensorRT engine %s is missing (its manifest exists); rebuilding", engine_path)
        return None
    except OSError as exc:
        logger.warning("cannot read cached TensorRT engine %s (%s); rebuilding", engine_path, exc)
        return None
    actual = hashlib.sha256(data).hexdigest()  # hash the very bytes that would be loaded
    if actual != expected:
        logger.warning(
            "refusing to load TensorRT engine %s: its sha256 %s… does not match the manifest's "
            "%s… (engines are executable code; the file was modified, truncated or replaced). "
            "Rebuilding it.",
            engine_path,
            actual[:12],
            expected[:12],
        )
        return None
    logger.debug("TensorRT engine cache hit: %s", engine_path)
    return data


def load_timing_cache_bytes(path: Path) -> bytes:
    """The timing cache's bytes, or b"" when there is none yet (or it cannot be read)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        logger.warning("cannot read TensorRT timing cache %s (%s); starting a new one", path, exc)
        return b""


def save_timing_cache_bytes(path: Path, data: bytes) -> None:
    """Store the timing cache atomically (builds running at once keep the last one)."""
    if data:
        atomic_write_bytes(path, data)
