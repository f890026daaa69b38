"""Thin CUDA device-memory helper over cuda-python (no torch; DESIGN section 7).

The TensorRT engine needs four things from CUDA: device buffers, a stream, asynchronous
host<->device copies, and the device's name and compute capability. They come from
**cuda-python** (``cuda.bindings.runtime``; ``cuda.cudart`` on releases before 12.6), the
binding NVIDIA's current TensorRT samples use, imported lazily on first use. It works on the
device's primary context, the one TensorRT uses, so there is no context to push or pop.

pycuda was dropped: its ``make_context``/``retain_primary_context().push()`` leaves a context
on the thread's stack that must be popped before exit, or pycuda aborts at interpreter
shutdown (NVIDIA/TensorRT#1107, #2357). One binding is simpler than fixing that, and
cuda-python has wheels for x86-64 and aarch64 (Jetson) alike (``.[trt-cu12]``).

When cuda-python is missing, :func:`cuda_api` raises
:class:`~edgesr.errors.EngineUnavailableError` saying how to install it.

Usage::

    api = cuda_api()
    with api.stream() as stream, api.alloc(host.nbytes) as buf:
        api.copy_htod_async(buf.ptr, host, stream)
        ...
        stream.synchronize()
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from edgesr.errors import EngineUnavailableError

__all__ = [
    "CudaApi",
    "CudaError",
    "DeviceBuffer",
    "DeviceInfo",
    "Stream",
    "cuda_api",
    "binding_available",
]


_INSTALL_HINT = "pip install -e '.[trt-cu12]' (cuda-python 12.x; JetPack 6 included)"


class CudaError(EngineUnavailableError):
    """A CUDA call failed (out of memory, no device, driver too old...)."""


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    """What the engine cache key needs to know about a GPU."""

    index: int
    name: str
    compute_capability: tuple[int, int]
    total_memory_bytes: int
    driver_version: int  # e.g. 12020 for CUDA 12.2

    @property
    def sm(self) -> str:
        major, minor = self.compute_capability
        return f"sm_{major}{minor}"


class Stream(Protocol):
    """A CUDA stream; ``handle`` is the raw ``cudaStream_t`` as an integer."""

    @property
    def handle(self) -> int: ...

    def synchronize(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Stream: ...

    def __exit__(self, *exc: object) -> None: ...


class DeviceBuffer(Protocol):
    """A device allocation; ``ptr`` is the device address as an integer."""

    @property
    def ptr(self) -> int: ...

    @property
    def nbytes(self) -> int: ...

    def free(self) -> None: ...

    def __enter__(self) -> DeviceBuffer: ...

    def __exit__(self, *exc: object) -> None: ...


class CudaApi(Protocol):
    """The handful of CUDA operations the TensorRT engine uses."""

    name: str

    def device_count(self) -> int: ...

    def device_info(self, index: int = 0) -> DeviceInfo:
        """The GPU's name, compute capability, memory and driver (queried once per index)."""
        ...

    def alloc(self, nbytes: int) -> DeviceBuffer: ...

    def stream(self) -> Stream: ...

    def copy_htod_async(self, dst_ptr: int, src: np.ndarray, stream: Stream) -> None: ...

    def copy_dtoh_async(self, dst: np.ndarray, src_ptr: int, stream: Stream) -> None: ...


# --------------------------------------------------------------------------- cuda-python


def _import_cudart() -> ModuleType:
    try:  # cuda-python >= 12.6
        return importlib.import_module("cuda.bindings.runtime")
    except ImportError:
        return importlib.import_module("cuda.cudart")  # older cuda-python


class _CudartStream:
    def __init__(self, api: _CudaPythonApi) -> None:
        self._api = api
        self._stream: Any = api._call("cudaStreamCreate")
        self._closed = False

    @property
    def handle(self) -> int:
        return int(self._stream)

    @property
    def native(self) -> Any:
        return self._stream

    def synchronize(self) -> None:
        self._api._call("cudaStreamSynchronize", self._stream)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._api._call("cudaStreamDestroy", self._stream)

    def __enter__(self) -> _CudartStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _CudartBuffer:
    def __init__(self, api: _CudaPythonApi, nbytes: int) -> None:
        self._api = api
        self._nbytes = int(nbytes)
        self._ptr = int(api._call("cudaMalloc", max(1, self._nbytes)))

    @property
    def ptr(self) -> int:
        return self._ptr

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def free(self) -> None:
        if self._ptr:
            ptr, self._ptr = self._ptr, 0
            self._api._call("cudaFree", ptr)

    def __enter__(self) -> _CudartBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()


class _CudaPythonApi:
    """cuda-python: every call returns ``(error, *values)``."""

    name = "cuda-python"

    def __init__(self) -> None:
        self._rt = _import_cudart()
        self._devices: dict[int, DeviceInfo] = {}

    def _call(self, func: str, *args: object) -> Any:
        result = getattr(self._rt, func)(*args)
        err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if int(err) != 0:
            _, text = self._rt.cudaGetErrorString(err)
            text = text.decode() if isinstance(text, bytes) else str(text)
            raise CudaError(f"CUDA call {func} failed: {text} ({int(err)}); check the GPU and driver with nvidia-smi")
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def device_count(self) -> int:
        return int(self._call("cudaGetDeviceCount"))

    def device_info(self, index: int = 0) -> DeviceInfo:
        # asked once per index: a GPU's name, capability, memory and driver do not change
        # while the process runs, and the engine, its cache key and the DSConv plugin's JIT
        # path (at every inference) all ask
        info = self._devices.get(index)
        if info is None:
            info = self._devices[index] = self._query_device_info(index)
        return info

    def _query_device_info(self, index: int) -> DeviceInfo:
        prop = self._call("cudaGetDeviceProperties", index)
        name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
        return DeviceInfo(
            index=index,
            name=name.rstrip("\x00").strip(),
            compute_capability=(int(prop.major), int(prop.minor)),
            total_memory_bytes=int(prop.totalGlobalMem),
            driver_version=int(self._call("cudaDriverGetVersion")),
        )

    def alloc(self, nbytes: int) -> DeviceBuffer:
        return _CudartBuffer(self, nbytes)

    def stream(self) -> Stream:
        return _CudartStream(self)

    def _native(self, stream: Stream) -> Any:
        # the binding's own cudaStream_t object when the stream is ours, else the raw handle
        return stream.native if isinstance(stream, _CudartStream) else stream.handle

    def copy_htod_async(self, dst_ptr: int, src: np.ndarray, stream: Stream) -> None:
        src = np.ascontiguousarray(src)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", dst_ptr, src.ctypes.data, src.nbytes, kind, self._native(stream))

    def copy_dtoh_async(self, dst: np.ndarray, src_ptr: int, stream: Stream) -> None:
        if not dst.flags.c_contiguous:
            raise ValueError("copy_dtoh_async needs a C-contiguous destination array")
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", dst.ctypes.data, src_ptr, dst.nbytes, kind, self._native(stream))


# --------------------------------------------------------------------------- selection

_API: CudaApi | None = None


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken one
        return False


def binding_available() -> tuple[bool, str]:
    """(True, "cuda-python") if cuda-python is importable, else (False, why)."""
    if _module_present("cuda.bindings") or _module_present("cuda.cudart"):
        return True, "cuda-python"
    return False, f"cuda-python is not installed ({_INSTALL_HINT})"


def cuda_api() -> CudaApi:
    """The process-wide CUDA helper, made on first use.

    Raises EngineUnavailableError when cuda-python is missing or CUDA cannot start.
    """
    global _API
    if _API is not None:
        return _API
    try:
        api: CudaApi = _CudaPythonApi()
    except ImportError as exc:
        raise EngineUnavailableError(f"cuda-python is not importable ({exc}); {_INSTALL_HINT}") from exc
    except Exception as exc:  # the binding imports but CUDA does not start (no driver)
        raise EngineUnavailableError(
            f"CUDA could not start through cuda-python: {exc}; check the driver with nvidia-smi"
        ) from exc
    _API = api
    return api


def _reset_for_tests() -> None:
    """Forget the cached helper (tests replace it)."""
    global _API
    _API = None
