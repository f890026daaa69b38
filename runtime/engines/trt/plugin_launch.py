"""What the DSConv plugin needs besides tensorrt.plugin: the build target, the compiled
kernel cache, and the JIT launch through the CUDA driver (no torch, no triton runtime).

- :func:`set_build_target` names the GPU the engine is built for (compute capability and
  the PTX ISA its driver accepts). ``build.py`` sets it from the device before a build; the
  contract tests set sm_87 (Orin) and sm_90 on a machine without a GPU. Unset, the device
  is asked through cuda-python.
- :func:`compiled_kernel` compiles the Triton kernel once per (attributes, dtypes, output
  channels, target).
- :class:`DriverLauncher` loads that kernel with ``cuModuleLoadData`` and launches it on
  TensorRT's stream: the JIT plugin's ``impl`` (TensorRT 10.7 and later).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesr.errors import EngineUnavailableError
from edgesr.runtime.engines.trt import kernel
from edgesr.runtime.engines.trt.kernel_compile import CompiledDSConv, compile_dsconv

__all__ = ["BuildTarget", "DriverLauncher", "build_target", "compiled_kernel", "dsconv_ptx_isa", "set_build_target"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildTarget:
    """The GPU a plugin kernel is compiled for: (8, 7) for Orin; ``ptx_isa`` None = triton's."""

    compute_capability: tuple[int, int]
    ptx_isa: int | None = None


_TARGET: BuildTarget | None = None


def set_build_target(target: BuildTarget | None) -> None:
    """Compile plugin kernels for ``target`` (None: ask the CUDA device at the next build)."""
    global _TARGET
    _TARGET = target


def build_target() -> BuildTarget:
    """The target set with :func:`set_build_target`, else this machine's GPU and driver."""
    if _TARGET is not None:
        return _TARGET
    from edgesr.runtime.engines.trt.cuda_memory import cuda_api

    info = cuda_api().device_info()
    return BuildTarget(info.compute_capability, dsconv_ptx_isa(info.driver_version))


def dsconv_ptx_isa(driver_version: int) -> int:
    """PTX ISA (e.g. 85 for 8.5) a CUDA driver of ``driver_version`` (e.g. 12060) accepts.

    Triton emits the newest ISA its bundled ptxas knows; an older driver (JetPack 6.1/6.2
    ship CUDA 12.6) rejects newer PTX when TensorRT loads the engine, so the AOT kernel is
    compiled for the driver's ISA instead (the rule of triton's own table).
    """
    major, minor = driver_version // 1000, (driver_version % 1000) // 10
    if major >= 13:
        return 90 + (major - 13) * 10 + minor
    if major == 12:
        return 80 + minor if minor < 6 else 80 + minor - 1
    if major == 11:
        return 70 + minor
    return 63 + minor


@functools.lru_cache(maxsize=64)
def compiled_kernel(
    kernel_size: int,
    morph: int,
    extend_scope: float,
    dtypes: tuple[tuple[str, str], ...],
    out_channels: int,
    target: BuildTarget,
) -> CompiledDSConv:
    """The Triton kernel compiled for these attributes, dtypes and GPU (cached)."""
    common: dict[str, Any] = {
        "kernel_size": kernel_size,
        "morph": morph,
        "extend_scope": extend_scope,
        "dtypes": dict(dtypes),
        "launch": kernel.choose_launch(out_channels=out_channels),
        "compute_capability": target.compute_capability,
    }
    if target.ptx_isa is not None:
        try:
            return compile_dsconv(**common, ptx_version=target.ptx_isa)
        except Exception as exc:  # a driver newer than triton's ptxas: use triton's own ISA
            logger.debug("compiling DSConv for PTX ISA %d failed (%s); using triton's", target.ptx_isa, exc)
    return compile_dsconv(**common)


class DriverLauncher:
    """Loads each compiled kernel once and launches it through the CUDA driver API."""

    def __init__(self) -> None:
        try:
            self._drv: Any = importlib.import_module("cuda.bindings.driver")
        except ImportError:
            try:
                self._drv = importlib.import_module("cuda.cuda")  # cuda-python < 12.6
            except ImportError as exc:
                raise EngineUnavailableError(
                    "the JIT DSConv plugin launches its kernel through cuda-python, which is "
                    "not installed; pip install -e '.[trt-cu12]'"
                ) from exc
        self._functions: dict[int, Any] = {}
        self._images: dict[int, np.ndarray] = {}  # the driver reads the image while loading
        self._lock = threading.Lock()

    def _check(self, result: Any, what: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise EngineUnavailableError(f"CUDA driver call {what} failed with error {int(err)}")
        return values[0] if len(values) == 1 else values

    def function(self, compiled: CompiledDSConv) -> Any:
        key = id(compiled)
        with self._lock:
            if key not in self._functions:
                # cubin when ptxas ran, else NUL-terminated PTX text for the driver's JIT
                raw = compiled.cubin or compiled.ptx.encode() + b"\0"
                image = np.frombuffer(raw, dtype=np.uint8).copy()
                module = self._check(self._drv.cuModuleLoadData(image.ctypes.data), "cuModuleLoadData")
                self._images[key] = image
                self._functions[key] = self._check(
                    self._drv.cuModuleGetFunction(module, compiled.name.encode()), "cuModuleGetFunction"
                )
            return self._functions[key]

    def launch(
        self,
        compiled: CompiledDSConv,
        *,
        grid: tuple[int, int, int],
        pointers_in: Sequence[int],
        scalars: Sequence[int],
        pointer_out: int,
        stream: int,
    ) -> None:
        func = self.function(compiled)
        values: list[int] = [*pointers_in, *scalars, pointer_out]
        types: list[Any] = [ctypes.c_void_p] * len(pointers_in) + [ctypes.c_int32] * len(scalars)
        types.append(ctypes.c_void_p)
        # the cubin keeps triton's hidden trailing scratch pointers (unused: no scratch)
        values += [0] * compiled.hidden_params
        types += [ctypes.c_void_p] * compiled.hidden_params
        self._check(
            self._drv.cuLaunchKernel(
                func, grid[0], grid[1], grid[2], compiled.num_warps * 32, 1, 1,
                compiled.shared_bytes, stream, (tuple(values), tuple(types)), 0,
            ),
            "cuLaunchKernel",
        )  # fmt: skip


@functools.lru_cache(maxsize=1)
def launcher() -> DriverLauncher:
    return DriverLauncher()
