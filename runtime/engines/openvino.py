"""The OpenVINO engine (``--engine openvino``, ``openvino:GPU``, ``openvino:NPU``; no torch here).

Why a second CPU engine: ONNX Runtime's CPU provider uses neither AMX/AVX512-BF16 nor fused
GELU/elementwise kernels (issue 11's profile); OpenVINO's CPU plugin does, and Intel iGPUs and
NPUs are edge targets of their own. docs/performance.md "OpenVINO" has the measurements.

- **Precision**: fp32 is exact by default (``INFERENCE_PRECISION_HINT=f32``; OpenVINO's own
  default on a BF16-capable CPU is bf16). ``precision="fp16"`` (``--fp16``) asks for the
  device's half type: bf16 on a CPU that lists BF16 (AMX or AVX512-BF16), f16 on one that
  lists only FP16, f16 on GPU and NPU. It runs the fp32 graph itself, so no FP16 export is
  needed; an FP16 export runs too. :meth:`OpenVinoEngine.info` reports the precision the
  compiled model says it runs (``fp32``, ``bf16`` or ``fp16``).
- **Devices** by name: ``CPU`` (default), ``GPU``, ``NPU``; one this machine lacks is refused
  in one line naming the devices OpenVINO sees.
- **Model-local functions** (LMFN's ``edgesr.DynamicSnakeConv``) have no OpenVINO conversion
  rule; they are inlined at load with ``onnx.inliner.inline_local_functions`` (the graph is the
  same: ONNX Runtime inlines them the same way).
- **Compiled-model cache**: OpenVINO's ``CACHE_DIR`` under ``edgesr.fileio.cache_dir("openvino")``,
  under edgesr's trust rule (:mod:`edgesr.trust`): a folder that fails it is replaced by a
  private temporary one, and a blob that is not this user's own or does not match the digest
  recorded after its compilation is removed (one warning), so OpenVINO compiles it again.
- **Tiling**: CPU and GPU take any input size (``tiles_limited_to_advice`` False: the whole
  image when it fits the memory budget, as ONNX Runtime on a CPU); the NPU compiles static
  shapes, so it gets the advised tile and one compiled model per input shape.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesr import fileio, trust
from edgesr.errors import ConfigError, EngineUnavailableError, ModelFileError, UnknownNameError
from edgesr.runtime.engines.base import BaseEngine
from edgesr.runtime.engines.openvino_ir import check_ir_io, ir_spec, is_ir_path, read_ir
from edgesr.runtime.engines.ort_session import physical_cores
from edgesr.runtime.engines.protocol import EngineInfo
from edgesr.runtime.model_file import check_model_path, first_line
from edgesr.spec import PRECISIONS, ModelSpec

logger = logging.getLogger(__name__)

#: Device names accepted after ``openvino:``; the first is the default.
DEVICES = ("CPU", "GPU", "NPU")
#: Sub-folder of edgesr's cache root for OpenVINO's compiled models (CACHE_DIR).
OPENVINO_CACHE_SUBDIR = "openvino"
INSTALL_HINT = "install OpenVINO: pip install -e '.[openvino]'"
_RAN = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}  # OpenVINO element type -> what ran


@dataclass(frozen=True, kw_only=True)
class OpenVinoOptions:
    """Options of :class:`OpenVinoEngine` (module notes).

    ``device``: ``CPU``, ``GPU`` or ``NPU`` (``GPU.1`` for a second GPU). ``precision``: None or
    ``"fp32"`` = exact f32; ``"fp16"`` = the device's half type. ``threads``: CPU inference
    threads, 0 = the physical cores this process may use (the ONNX Runtime rule).
    ``model_cache``: keep compiled models in edgesr's cache (OpenVINO ``CACHE_DIR``).
    """

    device: str = "CPU"
    precision: str | None = None
    threads: int = 0
    model_cache: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or self.device.partition(".")[0].upper() not in DEVICES:
            raise UnknownNameError("OpenVINO device", str(self.device), DEVICES)
        if self.precision is not None and self.precision not in PRECISIONS:
            raise UnknownNameError("precision", str(self.precision), PRECISIONS)
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ConfigError(f"OpenVinoOptions(threads={self.threads!r}), expected an integer >= 0")
        if not isinstance(self.model_cache, bool):
            raise ConfigError(f"OpenVinoOptions(model_cache={self.model_cache!r}), expected True or False")


def import_openvino() -> Any:
    try:
        return importlib.import_module("openvino")
    except ImportError:
        raise EngineUnavailableError(f"engine 'openvino' is not available here: OpenVINO is not installed; "
                                     f"{INSTALL_HINT}") from None


def available() -> tuple[bool, str]:
    """(usable here, why) for the engine table; cheap (no model), never raises."""
    try:
        ov = import_openvino()
        devices = list(ov.Core().available_devices)
    except Exception as exc:  # noqa: BLE001  (an install that cannot start is "not available")
        return False, first_line(exc)
    return True, f"OpenVINO {ov.__version__.split('-')[0]} ({', '.join(devices) or 'no devices'})"


def check_device(core: Any, device: str) -> str:
    """``device`` as OpenVINO names it here; EngineUnavailableError (one line) when absent."""
    wanted = device.upper()
    present = list(core.available_devices)  # "CPU", "GPU" or "GPU.0", "GPU.1", "NPU"
    if wanted in present or (("." not in wanted) and any(d.startswith(wanted + ".") for d in present)):
        return wanted
    raise EngineUnavailableError(
        f"engine 'openvino:{device}': OpenVINO sees no {wanted} device here (it sees: "
        f"{', '.join(present) or 'none'}); install that device's driver, or use --engine openvino (CPU)")


def half_type(core: Any, device: str) -> str:
    """The device's half type as an OpenVINO hint: bf16 on a BF16 CPU, else f16."""
    capabilities = set(core.get_property(device, "OPTIMIZATION_CAPABILITIES"))
    if device.startswith("CPU"):
        if "BF16" in capabilities:
            return "bf16"
        if "FP16" in capabilities:
            return "f16"
        raise ConfigError(f"this CPU runs neither bf16 nor f16 in OpenVINO (it offers "
                          f"{', '.join(sorted(capabilities))}); drop --fp16 to run fp32")
    return "f16"


def load_onnx(path: Path, *, spec: ModelSpec | None, cpu: bool = False) -> tuple[bytes, ModelSpec]:
    """The ONNX bytes OpenVINO can read (local functions inlined; for the ``cpu`` plugin, an
    INT8 graph rewritten around its faults: runtime.engines.openvino_qdq) and the model's spec."""
    try:
        import onnx
        from onnx import inliner
    except ImportError:
        raise EngineUnavailableError(f"engine 'openvino' reads ONNX through the onnx package, which is not "
                                     f"installed; {INSTALL_HINT}") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001  (protobuf raises its own types)
        raise ModelFileError(f"cannot load {path.name} as an ONNX model: {first_line(exc)}; re-export it "
                             "with edgesr-export") from None
    if spec is None:
        spec = ModelSpec.from_metadata({p.key: p.value for p in model.metadata_props}, source=repr(str(path)))
    if model.functions:  # OpenVINO has no conversion rule for model-local functions
        model = inliner.inline_local_functions(model)
    if cpu and any(node.op_type == "DequantizeLinear" for node in model.graph.node):
        from edgesr.runtime.engines.int8_cpu import saturating_int8_cpu
        from edgesr.runtime.engines.openvino_qdq import for_openvino_cpu

        model, rewrite = for_openvino_cpu(model, saturating=saturating_int8_cpu())
        logger.info("%s is an INT8 (QDQ) graph; for OpenVINO's CPU plugin: %s", path.name, rewrite.summary())
    return model.SerializeToString(), spec


def _cache_folder() -> Path:
    """OpenVINO's CACHE_DIR: compiled models are code, so the folder and every blob in it follow
    edgesr's trust rule (edgesr.trust); blobs are sealed with their digests once compiled."""
    return trust.checked_tool_cache(fileio.cache_dir(OPENVINO_CACHE_SUBDIR), what="OpenVINO model cache")


class OpenVinoEngine(BaseEngine):
    """Runs an exported ONNX SR model with OpenVINO; see the module notes."""

    name = "openvino"

    def __init__(self, *, model_path: str | os.PathLike[str], spec: ModelSpec | None = None,
                 options: OpenVinoOptions | None = None) -> None:
        if options is not None and not isinstance(options, OpenVinoOptions):
            raise ConfigError(f"OpenVinoEngine received options of type {type(options).__name__}, "
                              "expected OpenVinoOptions")
        self.options = options or OpenVinoOptions()
        self.model_path = check_model_path(model_path)
        self.source = self.model_path.name
        ov = import_openvino()
        self._core = ov.Core()
        self.device = check_device(self._core, self.options.device)
        hint = half_type(self._core, self.device) if self.options.precision == "fp16" else "f32"
        self._model, self.spec = self._read(ov, spec)
        self._config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if self.device.startswith("CPU"):
            self._config["INFERENCE_NUM_THREADS"] = self.options.threads or physical_cores()
        if self.options.model_cache:
            self._config["CACHE_DIR"] = str(_cache_folder())
        self._static = self.device.startswith("NPU")  # the NPU compiles static shapes only
        self._compiled: dict[tuple[int, ...], Any] = {}
        self._requests: dict[tuple[int, ...], Any] = {}
        first = self._compile(None)  # dynamic shapes (CPU, GPU); the NPU compiles on first run
        ran = first.get_property("INFERENCE_PRECISION_HINT").get_type_name() if first is not None else hint
        self._ran = _RAN.get(ran, ran)  # what the compiled model says it runs, not what was asked
        self._fp16_input = self._model.inputs[0].get_element_type().get_type_name() == "f16"
        self._mark_open()

    def _read(self, ov: Any, spec: ModelSpec | None) -> tuple[Any, ModelSpec]:
        """The OpenVINO model and its spec, from an IR (.xml) or an ONNX file."""
        if is_ir_path(self.model_path):
            model = read_ir(self._core, self.model_path)
            return model, spec or ir_spec(model, source=str(self.model_path))
        onnx_bytes, spec = load_onnx(self.model_path, spec=spec, cpu=self.device.startswith("CPU"))
        try:
            model = self._core.read_model(onnx_bytes, ov.Tensor(np.empty(0, np.uint8)))
        except Exception as exc:  # noqa: BLE001  (OpenVINO raises RuntimeError subclasses)
            raise ModelFileError(f"OpenVINO cannot read {self.source}: {first_line(exc)}; re-export it with "
                                 "edgesr-export, or use --engine ort") from None
        check_ir_io(model, self.source)
        return model, spec

    def _compile(self, shape: tuple[int, ...] | None) -> Any:
        """The compiled model (and its infer request) for ``shape``; None = dynamic shapes."""
        if shape is None and self._static:
            return None
        key = shape or ()
        if key not in self._compiled:
            model = self._model
            if shape is not None:
                model = self._model.clone()
                model.reshape({model.inputs[0]: list(shape)})
            try:
                compiled = self._core.compile_model(model, self.device, self._config)
            except Exception as exc:  # noqa: BLE001
                raise ModelFileError(f"OpenVINO cannot compile {self.source} for {self.device}: "
                                     f"{first_line(exc)}; use --engine ort") from None
            self._compiled[key] = compiled
            if "CACHE_DIR" in self._config:  # record the blob OpenVINO just wrote
                trust.seal_tool_cache(Path(self._config["CACHE_DIR"]))
            self._requests[key] = compiled.create_infer_request()
        return self._compiled[key]

    @property
    def tiles_limited_to_advice(self) -> bool:
        return self._static

    def info(self) -> EngineInfo:
        details = {"model": self.source}
        if self.device.startswith("CPU"):
            details["threads"] = str(self._config["INFERENCE_NUM_THREADS"])
        if self.spec.precision != "fp32":
            details["graph"] = self.spec.precision
        details["cache"] = "on" if "CACHE_DIR" in self._config else "off"
        try:
            full_name = self._core.get_property(self.device, "FULL_DEVICE_NAME")
        except Exception:  # noqa: BLE001  (closed engine or a plugin without the property)
            full_name = self.device
        return EngineInfo(name="openvino", device=f"{self.device} ({full_name})", precision=self._ran,
                          details=details)

    def _infer(self, padded: np.ndarray) -> np.ndarray:
        key = tuple(padded.shape) if self._static else ()
        self._compile(key or None)
        feed = padded.astype(np.float16) if self._fp16_input else padded
        try:
            result = self._requests[key].infer({0: feed})
        except Exception as exc:  # noqa: BLE001
            message = first_line(exc)
            if "alloc" in message.lower() or "memory" in message.lower():
                raise ConfigError(f"out of memory running {self.source} on a {tuple(padded.shape)} input "
                                  f"({message}); use smaller tiles (--tile 256 or a lower --memory-budget-mb)") from None
            raise ModelFileError(f"OpenVINO failed running {self.source} on a {tuple(padded.shape)} input: "
                                 f"{message}") from None
        return np.asarray(result[0], dtype=np.float32)

    def _release(self) -> None:
        self._requests.clear()
        self._compiled.clear()


__all__ = ["DEVICES", "OPENVINO_CACHE_SUBDIR", "OpenVinoEngine", "OpenVinoOptions", "available"]
