"""The ``trt`` engine: a TensorRT engine (built by ``build.py``, cached by ``cache.py``) run
through the TensorRT Python API. Polygraphy's "runner" half of the split.

Running (:class:`TrtEngine`): the engine comes from edgesr's own cache (hash-checked, only
this user's files; ``cache.py``) or is built and cached; I/O by tensor name with
``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3`` (the same in TensorRT 10
and 11); inputs smaller than the profile minimum are edge-padded and the output cropped;
device memory is released by ``close()`` (also on ``with`` exit).

No torch here. TensorRT and CUDA are imported lazily; :func:`available` says whether the
engine can run here and why not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesr.errors import ConfigError, EngineUnavailableError, ModelFileError
from edgesr.runtime.engines.base import BaseEngine
from edgesr.runtime.engines.protocol import EngineInfo
from edgesr.runtime.engines.trt.build import (
    build_engine,
    choose_plugin_impl,
    engine_key,
    import_tensorrt,
    spec_of,
    trt_logger,
)
from edgesr.runtime.engines.trt.cache import cache_root, load_cached_engine_bytes, save_engine, timing_cache_path
from edgesr.runtime.engines.trt.onnx_bytes import read_onnx
from edgesr.runtime.engines.trt.options import TrtOptions
from edgesr.spec import ModelSpec

if TYPE_CHECKING:
    from edgesr.runtime.engines.trt.cuda_memory import CudaApi, DeviceBuffer, Stream

__all__ = ["TrtEngine", "available"]

logger = logging.getLogger(__name__)


def available() -> tuple[bool, str]:
    """(True, "TensorRT x on GPU") when TensorRT and a CUDA device are usable, else
    (False, the reason and what to do). Never raises."""
    try:
        trt_mod = import_tensorrt()
    except EngineUnavailableError as exc:
        return False, str(exc)
    except Exception as exc:  # a broken install: missing libnvinfer, wrong CUDA
        return False, f"TensorRT cannot be imported ({type(exc).__name__}: {exc}); reinstall it"
    try:
        from edgesr.runtime.engines.trt.cuda_memory import cuda_api

        api = cuda_api()
        count = api.device_count()
        if count < 1:
            return False, "no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
        info = api.device_info(0)
    except EngineUnavailableError as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"CUDA is not usable ({type(exc).__name__}: {exc}); check the driver"
    return True, f"TensorRT {trt_mod.__version__} on {info.name} ({info.sm})"


@dataclass
class _Buffers:
    buffers: dict[str, DeviceBuffer] = field(default_factory=dict)

    def ensure(self, api: CudaApi, name: str, nbytes: int) -> DeviceBuffer:
        current = self.buffers.get(name)
        if current is not None and current.nbytes >= nbytes:
            return current
        if current is not None:
            current.free()
        buf = api.alloc(nbytes)
        self.buffers[name] = buf
        return buf

    def free(self) -> None:
        for buf in self.buffers.values():
            buf.free()
        self.buffers.clear()


class TrtEngine(BaseEngine):
    """Engine protocol over a TensorRT engine built (and cached) from an edgesr ONNX file.

    Keyword-only: ``model_path``, ``options`` (:class:`TrtOptions`), ``spec`` (override the
    ONNX metadata), ``device`` (CUDA device index; only 0 is supported by the CUDA helper).
    Raises EngineUnavailableError at once where TensorRT or a CUDA GPU is missing.
    The shared check/pad/crop path is :class:`BaseEngine`'s; this class adds what the
    TensorRT profile needs (:meth:`_infer`).
    """

    name = "trt"

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str],
        options: TrtOptions | None = None,
        spec: ModelSpec | None = None,
        device: int = 0,
    ) -> None:
        ok, reason = available()
        if not ok:
            raise EngineUnavailableError(f"the trt engine cannot run here: {reason}")
        if device != 0:
            raise ConfigError(f"device={device}: only CUDA device 0 is supported; set CUDA_VISIBLE_DEVICES")
        import tensorrt as trt

        from edgesr.runtime.engines.trt.cuda_memory import cuda_api

        self._trt = trt
        self._options = options or TrtOptions()
        self._source = Path(model_path)
        model = read_onnx(self._source)
        self.spec = spec_of(model, source=str(self._source), spec=spec)
        self._api = cuda_api()
        self._device = self._api.device_info(device)
        self._plugin_impl = choose_plugin_impl(self._options, model, str(trt.__version__))
        self._key = engine_key(
            onnx_sha256=hashlib.sha256(model).hexdigest(),
            spec=self.spec,
            options=self._options,
            trt_version=str(trt.__version__),
            device=self._device,
            plugin_impl=self._plugin_impl,
            source=str(self._source),
        )
        self._root = cache_root(self._options.cache_dir)
        self._logger = trt_logger(trt)
        # choose_plugin_impl registered the plugin: a JIT engine calls back into it at run time
        engine_bytes = load_cached_engine_bytes(self._key, root=self._root)
        self._cache_hit = engine_bytes is not None
        if engine_bytes is None:
            engine_bytes = self._build_and_cache(model)
        self._runtime: Any = trt.Runtime(self._logger)
        self._engine: Any = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self._engine is None and self._cache_hit:
            logger.warning("TensorRT could not load the cached engine for %s; rebuilding it", self._source)
            self._cache_hit = False
            self._engine = self._runtime.deserialize_cuda_engine(self._build_and_cache(model))
        if self._engine is None:
            raise ModelFileError(
                f"TensorRT could not deserialize the engine built from {self._source}; "
                f"delete {self._root} and retry"
            )
        self._context: Any = self._engine.create_execution_context()
        self._stream: Stream = self._api.stream()
        self._buffers = _Buffers()
        self.source = self._source.name
        self._mark_open()
        self._io_names()

    # ----------------------------------------------------------------- setup helpers

    def _build_and_cache(self, model: bytes) -> bytes:
        timing = None
        if self._options.timing_cache:
            timing = timing_cache_path(
                root=self._root,
                trt_version=self._key.trt_version,
                gpu_name=self._key.gpu_name,
                compute_capability=self._key.compute_capability,
            )
        data = build_engine(
            model,
            source=self._source,
            options=self._options,
            profile=self._key.profile,
            plugin_impl=self._plugin_impl,
            timing_path=timing,
        )
        save_engine(self._key, data, root=self._root)
        return data

    def _io_names(self) -> None:
        trt = self._trt
        inputs, outputs = [], []
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs.append(name)
            else:
                outputs.append(name)
        if len(inputs) != 1 or len(outputs) != 1:
            self.close()
            raise ModelFileError(
                f"the engine from {self._source} has inputs {inputs} and outputs {outputs}; "
                "expected one of each"
            )
        self._in_name, self._out_name = inputs[0], outputs[0]
        self._in_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._in_name)))
        self._out_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._out_name)))
        lo, _, hi = self._engine.get_tensor_profile_shape(self._in_name, 0)
        self._min_shape = tuple(int(v) for v in lo)
        self._max_shape = tuple(int(v) for v in hi)

    # ----------------------------------------------------------------- protocol

    def _infer(self, padded: np.ndarray) -> np.ndarray:
        """What the TensorRT profile adds to the shared path: inputs larger than its max are
        refused, batches larger than its max N run in chunks, anything below its min is
        edge-padded (:meth:`_run_profile`)."""
        max_n, _, max_h, max_w = self._max_shape
        if padded.shape[2] > max_h or padded.shape[3] > max_w:
            raise ConfigError(
                f"lr is {padded.shape[2]}x{padded.shape[3]} (HxW, padded) but this engine's profile "
                f"allows at most {max_h}x{max_w}; run it through the tiler (runtime/tiling.py) or "
                "build with a larger TrtOptions(profile=...)"
            )
        chunks = [self._run_profile(padded[i : i + max_n]) for i in range(0, padded.shape[0], max_n)]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def _run_profile(self, x: np.ndarray) -> np.ndarray:
        """Run at most the profile's max N images, edge-padded up to its min N/H/W; the output
        is cropped back to ``x``'s batch and size (by the output/input size ratio)."""
        n_batch, _, height, width = x.shape
        min_n, _, min_h, min_w = self._min_shape
        pad_n, pad_h, pad_w = max(0, min_n - n_batch), max(0, min_h - height), max(0, min_w - width)
        x = np.asarray(x, dtype=self._in_dtype)
        if pad_n or pad_h or pad_w:
            x = np.pad(x, ((0, pad_n), (0, 0), (0, pad_h), (0, pad_w)), mode="edge")
        x = np.ascontiguousarray(x)
        if not self._context.set_input_shape(self._in_name, x.shape):
            raise ConfigError(
                f"TensorRT rejected input shape {x.shape}; the engine's profile is "
                f"{self._min_shape} .. {self._max_shape}"
            )
        out_shape = tuple(int(v) for v in self._context.get_tensor_shape(self._out_name))
        out = np.empty(out_shape, dtype=self._out_dtype)
        in_buf = self._buffers.ensure(self._api, "in", x.nbytes)
        out_buf = self._buffers.ensure(self._api, "out", out.nbytes)
        started = time.perf_counter()
        self._api.copy_htod_async(in_buf.ptr, x, self._stream)
        self._context.set_tensor_address(self._in_name, in_buf.ptr)
        self._context.set_tensor_address(self._out_name, out_buf.ptr)
        if not self._context.execute_async_v3(self._stream.handle):
            raise EngineUnavailableError(
                f"TensorRT failed to run {self._source.name} on input {x.shape} (see the log)"
            )
        self._api.copy_dtoh_async(out, out_buf.ptr, self._stream)
        self._stream.synchronize()
        latency_ms = (time.perf_counter() - started) * 1e3
        logger.debug("trt run %s -> %s: latency_ms=%.2f", x.shape, out_shape, latency_ms)
        if pad_n or pad_h or pad_w:
            scale = out_shape[2] // x.shape[2]
            out = np.ascontiguousarray(out[:n_batch, :, : height * scale, : width * scale])
        return out

    def info(self) -> EngineInfo:
        details = {
            "tensorrt": self._key.trt_version,
            "profile": self._key.profile.describe(),
            "plugin": self._plugin_impl or "off",
            "engine_cache": "hit" if self._cache_hit else "built",
            "workspace_bytes": str(self._options.workspace_bytes),
        }
        return EngineInfo(
            name="trt",
            device=f"{self._device.name} ({self._device.sm})",
            precision=self._key.precision,
            details=details,
        )

    def _release(self) -> None:
        """Release device memory, the stream and the TensorRT objects."""
        self._buffers.free()
        self._stream.close()
        # drop in dependency order: execution context, engine, runtime
        self._context = None
        self._engine = None
        self._runtime = None
