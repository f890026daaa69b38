"""Thin CUDA device-memory helper over cuda-python or pycuda (no torch; DESIGN section 7).

The TensorRT engine needs four things from CUDA: device buffers, a stream, asynchronous
host<->device copies, and the device's name and compute capability. Two bindings provide
them; this module uses whichever is installed, imported lazily on first use:

- **cuda-python** (``cuda.bindings.runtime``; ``cuda.cudart`` on releases before 12.6), the
  binding NVIDIA's current TensorRT samples use; preferred when both are present;
- **pycuda**, which the design card names. It works on the device's *primary* context
  (the one the CUDA runtime and TensorRT use), retained and pushed here, instead of the
  private context ``pycuda.autoinit`` would create.

``EDGESR_CUDA_BINDING=pycuda`` (or ``cuda-python``) forces one of them. When neither is
installed, :func:`cuda_api` raises :class:`~edgesr.errors.EngineUnavailableError` saying how
to install one.

Usage::

    api = cuda_api()
    with api.stream() as stream, api.alloc(host.nbytes) as buf:
        api.copy_htod_async(buf.ptr, host, stream)
        ...
        stream.synchronize()
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from edgesr.errors import EngineUnavailableError

__all__ = [
    "BINDINGS",
    "CudaApi",
    "CudaError",
    "DeviceBuffer",
    "DeviceInfo",
    "Stream",
    "cuda_api",
    "binding_available",
]

logger = logging.getLogger(__name__)

#: Names accepted by ``EDGESR_CUDA_BINDING``, in order of preference.
BINDINGS: tuple[str, ...] = ("cuda-python", "pycuda")
_ENV_BINDING = "EDGESR_CUDA_BINDING"
_INSTALL_HINT = "pip install cuda-python (or pycuda, or on a Jetson use JetPack's python3 packages)"


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


class _DeviceInfoCache(abc.ABC):
    """``device_info`` asked once per device index: the name, compute capability, memory and
    driver of a GPU do not change while the process runs, and the engine, its cache key and
    the DSConv plugin's JIT path (at every inference) all ask."""

    def __init__(self) -> None:
        self._devices: dict[int, DeviceInfo] = {}

    def device_info(self, index: int = 0) -> DeviceInfo:
        info = self._devices.get(index)
        if info is None:
            info = self._devices[index] = self._query_device_info(index)
        return info

    @abc.abstractmethod
    def _query_device_info(self, index: int) -> DeviceInfo:
        """Ask the CUDA binding (each subclass wraps one)."""


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


class _CudaPythonApi(_DeviceInfoCache):
    """cuda-python: every call returns ``(error, *values)``."""

    name = "cuda-python"

    def __init__(self) -> None:
        super().__init__()
        self._rt = _import_cudart()

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


# --------------------------------------------------------------------------- pycuda


class _PyCudaStream:
    def __init__(self, api: _PyCudaApi) -> None:
        api._ensure_context()
        self._stream: Any = api._drv.Stream()

    @property
    def handle(self) -> int:
        return int(self._stream.handle)

    def synchronize(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        self._stream = _ClosedStream()

    @property
    def native(self) -> Any:
        return self._stream

    def __enter__(self) -> _PyCudaStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ClosedStream:
    handle = 0

    def synchronize(self) -> None:
        pass


class _PyCudaBuffer:
    def __init__(self, api: _PyCudaApi, nbytes: int) -> None:
        api._ensure_context()
        self._nbytes = int(nbytes)
        self._alloc: Any = api._drv.mem_alloc(max(1, self._nbytes))

    @property
    def ptr(self) -> int:
        return int(self._alloc) if self._alloc is not None else 0

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def free(self) -> None:
        if self._alloc is not None:
            alloc, self._alloc = self._alloc, None
            alloc.free()

    def __enter__(self) -> _PyCudaBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()


class _PyCudaApi(_DeviceInfoCache):
    """pycuda on the primary context of device 0 (shared with TensorRT)."""

    name = "pycuda"

    def __init__(self) -> None:
        super().__init__()
        self._drv: Any = importlib.import_module("pycuda.driver")
        self._drv.init()
        self._context: Any = None

    def _ensure_context(self, index: int = 0) -> None:
        if self._context is None:
            self._context = self._drv.Device(index).retain_primary_context()
            self._context.push()

    def device_count(self) -> int:
        return int(self._drv.Device.count())

    def _query_device_info(self, index: int) -> DeviceInfo:
        dev = self._drv.Device(index)
        major, minor = dev.compute_capability()
        return DeviceInfo(
            index=index,
            name=str(dev.name()).strip(),
            compute_capability=(int(major), int(minor)),
            total_memory_bytes=int(dev.total_memory()),
            driver_version=int(self._drv.get_driver_version()),
        )

    def alloc(self, nbytes: int) -> DeviceBuffer:
        return _PyCudaBuffer(self, nbytes)

    def stream(self) -> Stream:
        return _PyCudaStream(self)

    def _native(self, stream: Stream) -> Any:
        if isinstance(stream, _PyCudaStream):
            return stream.native
        raise TypeError("pycuda copies need a stream made by this CudaApi (api.stream())")

    def copy_htod_async(self, dst_ptr: int, src: np.ndarray, stream: Stream) -> None:
        self._drv.memcpy_htod_async(dst_ptr, np.ascontiguousarray(src), self._native(stream))

    def copy_dtoh_async(self, dst: np.ndarray, src_ptr: int, stream: Stream) -> None:
        if not dst.flags.c_contiguous:
            raise ValueError("copy_dtoh_async needs a C-contiguous destination array")
        self._drv.memcpy_dtoh_async(dst, src_ptr, self._native(stream))


# --------------------------------------------------------------------------- selection

_API: CudaApi | None = None


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken one
        return False


def binding_available() -> tuple[bool, str]:
    """(True, binding name) if cuda-python or pycuda is importable, else (False, why)."""
    if _module_present("cuda.bindings") or _module_present("cuda.cudart"):
        return True, "cuda-python"
    if _module_present("pycuda"):
        return True, "pycuda"
    return False, f"neither cuda-python nor pycuda is installed ({_INSTALL_HINT})"


def cuda_api() -> CudaApi:
    """The process-wide CUDA helper (cuda-python preferred, then pycuda), made on first use.

    Raises EngineUnavailableError when no binding is installed or CUDA cannot start.
    """
    global _API
    if _API is not None:
        return _API
    forced = os.environ.get(_ENV_BINDING, "").strip().lower()
    if forced and forced not in BINDINGS:
        raise EngineUnavailableError(
            f"{_ENV_BINDING}={forced!r} is not a CUDA binding; expected one of {', '.join(BINDINGS)}"
        )
    order = (forced,) if forced else BINDINGS
    errors = []
    for name in order:
        try:
            api: CudaApi = _CudaPythonApi() if name == "cuda-python" else _PyCudaApi()
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        except Exception as exc:  # the binding imports but CUDA does not start (no driver)
            raise EngineUnavailableError(
                f"CUDA could not start through {name}: {exc}; check the driver with nvidia-smi"
            ) from exc
        logger.debug("CUDA binding: %s", name)
        _API = api
        return api
    detail = "; ".join(errors)
    raise EngineUnavailableError(
        f"no CUDA Python binding is importable ({detail}); {_INSTALL_HINT}"
    )


def _reset_for_tests() -> None:
    """Forget the cached binding (tests switch EDGESR_CUDA_BINDING)."""
    global _API
    _API = None
