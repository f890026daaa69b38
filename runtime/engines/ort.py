"""The ONNX Runtime engine (``--engine ort``): CPU, CUDA or TensorRT execution providers.

Provider choice: unless :attr:`OrtOptions.providers` names some, the engine uses every
provider this onnxruntime build offers among TensorRT EP > CUDA EP > CPU EP, in that order
(ONNX Runtime assigns each node to the first provider that supports it). Providers this build
lacks are left out rather than passed (ORT would only warn), and a provider that fails to
initialise (e.g. CUDA libraries missing) is reported: :meth:`OrtEngine.info` names the
provider the session really got, from ``session.get_providers()``, and a fallback is logged
as a warning. Short names are accepted: ``cpu``, ``cuda``, ``tensorrt``/``trt``, ``xnnpack``,
``coreml``, ``nnapi``, ``qnn``, ``openvino``, ``dml``. A provider this onnxruntime build lacks is refused
with EngineUnavailableError naming the ones it has (never silently replaced by the CPU).

Precision is a property of the graph (DESIGN section 7): an FP16 export has float32 I/O and
FP16 inside, and its metadata says ``precision=fp16``. ``OrtOptions(precision="fp16")``
demands such a graph and refuses an fp32 file with the command that makes one; the
TensorRT EP's own ``trt_fp16_enable`` is left off.

Inputs are validated (float, NCHW, 3 channels, finite, within the metadata's input range)
and replicate-padded when smaller than ``spec.min_size_px`` or not a multiple of
``spec.size_multiple`` (the output is cropped back), so ESA models run on tiny tiles.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesr import trust
from edgesr.errors import ConfigError, ModelFileError, UnknownNameError
from edgesr.fileio import cache_dir
from edgesr.runtime.engines.base import BaseEngine
from edgesr.runtime.engines.checks import check_precision
from edgesr.runtime.engines.int8_cpu import is_qdq_graph, saturating_int8_cpu
from edgesr.runtime.engines.ort_providers import (
    CPU_EP,
    CUDA_EP,
    PROVIDER_ALIASES,
    PROVIDER_ORDER,
    TENSORRT_EP,
    resolve_providers,
    short_provider_name,
)
from edgesr.runtime.engines.ort_session import cached_cpu_session, physical_cores, session_options
from edgesr.runtime.engines.protocol import EngineInfo
from edgesr.runtime.model_file import (
    check_io,
    check_model_path,
    first_line,
    import_onnxruntime,
    spec_from_session,
)
from edgesr.spec import PRECISIONS, ModelSpec

logger = logging.getLogger(__name__)

#: Sub-folder of edgesr's cache root (``edgesr.fileio.cache_dir``) for the TensorRT EP's caches.
TRT_CACHE_SUBDIR = "ort-tensorrt"


@dataclass(frozen=True, kw_only=True)
class OrtOptions:
    """Options of :class:`OrtEngine`.

    ``providers``: execution providers to use, in order (full names or ``tensorrt``, ``cuda``,
    ``cpu``); empty = the best available (TensorRT > CUDA > CPU).
    ``intra_op_threads``: CPU threads per operator, 0 = the physical cores this process may
    use (:mod:`edgesr.runtime.engines.ort_session` says why). ``spinning``: workers spin between
    operators (off when several sessions share the cores). ``graph_cache``: keep ONNX
    Runtime's optimised CPU graph in edgesr's cache so later starts skip the optimisation.
    ``precision``: None = whatever the graph is; ``"fp16"``/``"fp32"`` = require that graph.
    ``device_id``: the GPU for the CUDA and TensorRT providers.
    ``trt_cache_dir``: engine/timing cache of the TensorRT provider (default
    ``edgesr.fileio.cache_dir("ort-tensorrt")``: ``$EDGESR_CACHE_DIR/ort-tensorrt``, else
    ``$XDG_CACHE_HOME/edgesr/ort-tensorrt``, else ``~/.cache/edgesr/ort-tensorrt``).
    ``log_severity``: ONNX Runtime's own log level (0 verbose ... 4 fatal; 3 = errors only).
    """

    providers: tuple[str, ...] = ()
    intra_op_threads: int = 0
    spinning: bool = True
    graph_cache: bool = True
    precision: str | None = None
    device_id: int = 0
    trt_cache_dir: Path | None = None
    log_severity: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.providers, str):
            raise ConfigError(
                f"OrtOptions(providers={self.providers!r}) is a string, expected a tuple of "
                f"names; write providers=({self.providers!r},)"
            )
        for flag in ("spinning", "graph_cache"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"OrtOptions({flag}={getattr(self, flag)!r}), expected True or False")
        for name, value, low in (("intra_op_threads", self.intra_op_threads, 0),
                                 ("device_id", self.device_id, 0), ("log_severity", self.log_severity, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"OrtOptions({name}={value!r}), expected an integer >= {low}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise UnknownNameError("precision", str(self.precision), PRECISIONS)


def _provider_options(provider: str, options: OrtOptions) -> dict[str, str]:
    if provider == TENSORRT_EP:
        # TensorRT engines are code: the folder and every engine in it follow edgesr's trust
        # rule (edgesr.trust); entries are sealed with their digests when the engine closes.
        what = "ONNX Runtime TensorRT cache"
        cache = trust.checked_tool_cache(
            Path(options.trt_cache_dir) if options.trt_cache_dir else cache_dir(TRT_CACHE_SUBDIR),
            what=what)
        return {
            "device_id": str(options.device_id),
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": str(cache),
        }
    if provider == CUDA_EP:
        return {"device_id": str(options.device_id)}
    return {}


class OrtEngine(BaseEngine):
    """Runs an exported ONNX SR model with ONNX Runtime; see the module notes."""

    name = "ort"

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str],
        spec: ModelSpec | None = None,
        options: OrtOptions | None = None,
    ) -> None:
        if options is not None and not isinstance(options, OrtOptions):
            raise ConfigError(
                f"OrtEngine received options of type {type(options).__name__}, expected OrtOptions"
            )
        self.options = options or OrtOptions()
        self.model_path = check_model_path(model_path)
        self.source = self.model_path.name
        if spec is not None:  # known: refuse a precision mismatch before building a session
            check_precision(spec, self.options.precision, source=self.model_path.name)

        ort = import_onnxruntime()
        available = list(ort.get_available_providers())
        self._requested = resolve_providers(self.options.providers, available)
        try:
            self._session: Any = self._new_session(ort)
        except Exception as exc:
            raise ModelFileError(
                f"ONNX Runtime cannot load {self.model_path.name} with {', '.join(self._requested)}: "
                f"{first_line(exc)}; re-export it with edgesr-export, or try providers=('cpu',)"
            ) from None
        self._used: list[str] = list(self._session.get_providers())
        if self._used and self._used[0] != self._requested[0]:
            logger.warning(
                "ONNX Runtime could not use %s for %s and fell back to %s (check the CUDA/TensorRT "
                "libraries; -v shows ONNX Runtime's reason)",
                self._requested[0], self.model_path.name, self._used[0],
            )
        try:
            inp, out = check_io(self._session, source=self.model_path)
            if spec is None:  # read from this session: one session per engine
                spec = spec_from_session(self._session, source=self.model_path)
                check_precision(spec, self.options.precision, source=self.model_path.name)
        except Exception:
            self._session = None
            raise
        self.spec: ModelSpec = spec
        self._input_name: str = inp.name
        self._output_name: str = out.name
        self._fp16_input = inp.type == "tensor(float16)"
        shape = list(inp.shape) if isinstance(inp.shape, (list, tuple)) else []
        self._fixed_hw = (
            (shape[2], shape[3]) if len(shape) == 4 and isinstance(shape[2], int)
            and isinstance(shape[3], int) else None
        )
        logger.debug("ort: %s on %s", self.model_path.name, ", ".join(self._used))
        self._mark_open()

    def _new_session(self, ort: Any) -> Any:
        settings = {"threads": self.options.intra_op_threads, "spinning": self.options.spinning,
                    "log_severity": self.options.log_severity, "unsaturated_int8": self._unsaturated_int8()}
        if self._requested == [CPU_EP] and self.options.graph_cache:
            return cached_cpu_session(ort, self.model_path, **settings)
        provider_list = [(p, _provider_options(p, self.options)) for p in self._requested]
        trt_cache = dict(provider_list).get(TENSORRT_EP, {}).get("trt_engine_cache_path")
        self._trt_cache = Path(trt_cache) if trt_cache else None
        return ort.InferenceSession(str(self.model_path), session_options(ort, **settings),
                                    providers=provider_list)

    def _unsaturated_int8(self) -> bool:
        """True for an INT8 graph on the CPU provider of a CPU whose default int8 kernels
        saturate (runtime.engines.int8_cpu): it then gets the kernels that do not."""
        if self._requested != [CPU_EP] or not saturating_int8_cpu() or not is_qdq_graph(self.model_path):
            return False
        logger.info("%s is an INT8 (QDQ) graph and this CPU has no VNNI, where ONNX Runtime's default int8 "
                    "kernels saturate: using its u8-weight kernels (session.x64quantprecision)",
                    self.model_path.name)
        return True

    # ------------------------------------------------------------------ protocol

    @property
    def tiles_limited_to_advice(self) -> bool:
        """Only the TensorRT provider builds engines for an input range."""
        return self.provider_ran == TENSORRT_EP

    @property
    def providers(self) -> list[str]:
        """The providers the session really uses, best first."""
        return list(self._used)

    @property
    def requested_providers(self) -> list[str]:
        """The providers asked for (after resolving short names and defaults), best first."""
        return list(self._requested)

    @property
    def provider_ran(self) -> str:
        """The provider the session got first: the one that runs every node it supports."""
        return self._used[0] if self._used else "closed"

    def info(self) -> EngineInfo:
        details = {"model": self.model_path.name}
        details["threads"] = str(self.options.intra_op_threads or physical_cores())
        if len(self._used) > 1:
            details["providers"] = ">".join(p.removesuffix("ExecutionProvider") for p in self._used)
        if self._used and self._requested and self._used[0] != self._requested[0]:
            details["fallback_from"] = self._requested[0]
        device = self._used[0] if self._used else "closed"
        if device in (CUDA_EP, TENSORRT_EP):
            device = f"{device} (GPU {self.options.device_id})"
        return EngineInfo(name="ort", device=device, precision=self.spec.precision, details=details)

    def _infer(self, padded: np.ndarray) -> np.ndarray:
        """One session run on a checked, padded batch (BaseEngine.run does the rest)."""
        if self._fixed_hw is not None and tuple(padded.shape[2:]) != self._fixed_hw:
            h, w = self._fixed_hw
            raise ModelFileError(
                f"{self.model_path.name} only accepts {w}x{h} inputs (fixed shape), received "
                f"{padded.shape[3]}x{padded.shape[2]}; re-export it with dynamic H and W "
                f"(edgesr-export does), or use --tile {min(h, w)} --overlap 0 with a matching size"
            )
        feed = padded.astype(np.float16) if self._fp16_input else padded
        try:
            (sr,) = self._session.run([self._output_name], {self._input_name: feed})
        except MemoryError:
            raise ConfigError(
                f"out of memory running {self.model_path.name} on a {tuple(padded.shape)} input; "
                "use smaller tiles (--tile 256 or a lower --memory-budget-mb)"
            ) from None
        except Exception as exc:
            message = first_line(exc)
            if "alloc" in message.lower() or "out of memory" in message.lower():
                raise ConfigError(
                    f"out of memory running {self.model_path.name} on a {tuple(padded.shape)} input "
                    f"({message}); use smaller tiles (--tile 256 or a lower --memory-budget-mb)"
                ) from None
            raise ModelFileError(
                f"ONNX Runtime failed running {self.model_path.name} on a {tuple(padded.shape)} "
                f"input: {message}"
            ) from None
        return sr

    def _release(self) -> None:
        self._session = None
        if getattr(self, "_trt_cache", None) is not None:  # record what the TensorRT provider wrote there
            trust.seal_tool_cache(self._trt_cache)


__all__ = [
    "CPU_EP",
    "CUDA_EP",
    "OrtEngine",
    "OrtOptions",
    "PROVIDER_ALIASES",
    "PROVIDER_ORDER",
    "TENSORRT_EP",
    "TRT_CACHE_SUBDIR",
    "resolve_providers",
    "short_provider_name",
]
