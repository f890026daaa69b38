"""The PyTorch reference engine (``--engine torch``): a registered model run in torch.

Torch-side code, so it lives in ``edgesr`` (not ``edgesr.runtime``); the runtime's engine table
reaches it by the module path string ``"edgesr.torch_engine:TorchEngine"``, so a machine
without torch only fails when this engine is asked for. It implements the same protocol as
the ONNX engines (:class:`edgesr.runtime.engines.protocol.Engine`) and shares their input checks and
min-size padding, so its outputs are the reference the exported graphs are compared with, and
benchmarks can time it the same way.

Weights: an explicit ``weights`` file (safetensors or .pth), else the weights shipped with
edgesr for that model (:func:`edgesr.weights.shipped_weights`), else an error, unless
``TorchOptions(allow_untrained=True)`` (freshly initialised weights: for timing only).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgesr.errors import ConfigError, EngineUnavailableError, UnknownNameError, WeightsError
from edgesr.models.registry import create_model, is_test_variant, model_spec
from edgesr.runtime.engines.base import BaseEngine
from edgesr.runtime.engines.protocol import EngineInfo
from edgesr.spec import PRECISIONS, ModelSpec
from edgesr.weights import shipped_weights
from edgesr.weights_io import load_weights

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TorchOptions:
    """Options of :class:`TorchEngine`.

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
    ``precision``: ``"fp32"`` or ``"fp16"`` (CUDA only; the model is cast with ``.half()``).
    ``threads``: torch CPU threads (``torch.set_num_threads``, process-wide), 0 = unchanged.
    ``allow_untrained``: run with fresh weights when none are given or shipped (timing only).
    ``channels_last``: NHWC memory layout for weights and inputs; oneDNN's CPU convs and
    cuDNN's tensor-core convs prefer it (OSFFNet x4 at 320x180 on 2 CPU cores: 1.3-1.4x
    faster, docs/performance.md "The torch engine").
    ``compile``: wrap the model in ``torch.compile`` (inductor). Measured there: 1.45x faster
    per call after a 78 s compile, and every new input size compiles again; so it is off by
    default and worth it for long runs of one tile size (``edgesr-run --compile``).
    """

    device: str = "cpu"
    precision: str = "fp32"
    threads: int = 0
    allow_untrained: bool = False
    channels_last: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UnknownNameError("precision", str(self.precision), PRECISIONS)
        for flag in ("allow_untrained", "channels_last", "compile"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"TorchOptions({flag}={getattr(self, flag)!r}), expected True or False")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ConfigError(f"TorchOptions(threads={self.threads!r}), expected an integer >= 0")


def _device(options: TorchOptions) -> torch.device:
    name = options.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"TorchOptions(device={options.device!r}) is not a torch device; use 'cpu', 'cuda', "
            "'cuda:0' or 'auto'"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailableError(
            f"torch device {options.device!r} requested but this PyTorch has no usable CUDA GPU; "
            "use device 'cpu' (or 'auto')"
        )
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"TorchOptions(device={options.device!r}): only 'cpu' and 'cuda' are supported")
    if options.precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            "fp16 with the torch engine needs a CUDA GPU (PyTorch's CPU half-precision "
            "convolutions are slow or missing); use fp32 on the CPU, or an FP16 ONNX with --engine ort"
        )
    return device


class TorchEngine(BaseEngine):
    """Runs a registered PyTorch model; see the module notes."""

    name = "torch"
    tiles_limited_to_advice = False

    def __init__(
        self,
        *,
        model_name: str,
        weights: str | os.PathLike[str] | None = None,
        spec: ModelSpec | None = None,
        options: TorchOptions | None = None,
    ) -> None:
        if options is not None and not isinstance(options, TorchOptions):
            raise ConfigError(f"TorchEngine received options of type {type(options).__name__}, expected TorchOptions")
        options = options or TorchOptions()
        own_spec = model_spec(model_name, precision=options.precision)  # unknown names suggest
        if spec is not None and spec.scale != own_spec.scale:
            raise ConfigError(
                f"spec says scale {spec.scale} but {model_name} is an x{own_spec.scale} model; "
                f"drop --scale or pass --scale {own_spec.scale}"
            )
        model = create_model(model_name)
        source = self._load(model, model_name, weights, options)
        self._setup(model, spec=own_spec, options=options, name=model_name, weights_label=source)

    @classmethod
    def from_module(
        cls, model: nn.Module, *, spec: ModelSpec, options: TorchOptions | None = None,
        name: str | None = None,
    ) -> TorchEngine:
        """Wrap an already built (and loaded) model, e.g. for export parity checks."""
        if not isinstance(model, nn.Module):
            raise ConfigError(f"TorchEngine.from_module received {type(model).__name__}, expected a torch nn.Module")
        if options is not None and not isinstance(options, TorchOptions):
            raise ConfigError(f"TorchEngine received options of type {type(options).__name__}, expected TorchOptions")
        engine = cls.__new__(cls)
        engine._setup(model, spec=spec, options=options or TorchOptions(), name=name or spec.arch,
                      weights_label="given module")
        return engine

    @staticmethod
    def _load(model: nn.Module, name: str, weights: str | os.PathLike[str] | None, options: TorchOptions) -> str:
        if weights is not None:
            load_weights(model, Path(weights))
            return Path(weights).name
        shipped = shipped_weights(name)
        if shipped is not None:
            load_weights(model, shipped)
            return f"shipped {shipped.name}"
        if options.allow_untrained or is_test_variant(name):
            logger.warning("%s: no weights given or shipped; running untrained weights (timing only)", name)
            return "untrained"
        raise WeightsError(
            f"no weights for {name}: none were given and none are shipped with edgesr; pass a "
            "weights file (--weights model.safetensors), or --allow-untrained for timing only"
        )

    def _setup(self, model: nn.Module, *, spec: ModelSpec, options: TorchOptions, name: str,
               weights_label: str) -> None:
        self.options = options
        self.spec = spec
        self.model_name = name
        self.source = name
        self._weights_label = weights_label
        self._device = _device(options)
        self._dtype = torch.float16 if options.precision == "fp16" else torch.float32
        if options.threads:
            torch.set_num_threads(options.threads)
        model = model.eval().to(device=self._device, dtype=self._dtype)
        self._memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        model = model.to(memory_format=self._memory_format)
        if options.compile:
            logger.info("torch.compile: the first call of each input size compiles (about a minute on a CPU)")
            model = torch.compile(model, dynamic=False)
        self._model: nn.Module | None = model
        self._mark_open()

    # ------------------------------------------------------------------ protocol

    def info(self) -> EngineInfo:
        device = str(self._device)
        if self._device.type == "cuda":
            device = f"{device} ({torch.cuda.get_device_name(self._device)})"
        details = {"model": self.model_name, "weights": self._weights_label, "torch": torch.__version__}
        return EngineInfo(name="torch", device=device, precision=self.options.precision, details=details)

    def _infer(self, padded: np.ndarray) -> np.ndarray:
        """The model on a checked, padded batch (BaseEngine.run does the rest)."""
        try:
            with torch.inference_mode():
                batch = torch.from_numpy(padded).to(device=self._device, dtype=self._dtype)
                out = self._model(batch.contiguous(memory_format=self._memory_format))
                return out.float().cpu().numpy()
        except torch.cuda.OutOfMemoryError:
            raise ConfigError(
                f"out of GPU memory running {self.model_name} on a {tuple(padded.shape)} input; use "
                "smaller tiles (--tile 256 or a lower --memory-budget-mb)"
            ) from None

    def _release(self) -> None:
        self._model = None
        if self._device.type == "cuda":
            torch.cuda.empty_cache()


__all__ = ["TorchEngine", "TorchOptions"]
