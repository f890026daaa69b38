"""The engine table, ``auto`` selection, and what every engine shares (never imports torch).

Adding an engine = one module with an options dataclass and an engine class implementing
:class:`edgesr.runtime.engine.Engine`, plus one line in :data:`ENGINE_TABLE`. Engines are
imported by module path string (``importlib``) only when asked for, so a missing optional
dependency (TensorRT, PyTorch) costs nothing until that engine is requested, and then gives
one clear :class:`EngineUnavailableError`.

Constructor contract (keyword-only):

- engines that run an ONNX file (``ort``, ``trt``): ``Engine(*, model_path, spec, options)``;
- engines that run a registered PyTorch model (:data:`MODEL_ENGINES`, i.e. ``torch``):
  ``Engine(*, model_name, weights, spec, options)``.

``auto`` picks the fastest engine that can run here, and logs which one and why:
``trt`` when ``edgesr.runtime.trt_engine.available()`` says TensorRT and a GPU are usable,
else ``ort`` (which itself prefers the TensorRT, then the CUDA execution provider, then the
CPU one; see :mod:`edgesr.runtime.ort_engine`). ``torch`` is the reference, never picked by
``auto``.

Shared helpers for engine implementations: :func:`check_lr` (input validation, one-line
errors), :func:`pad_for_model` / :func:`crop_sr` (replicate-pad inputs smaller than
``spec.min_size_px`` or not a multiple of ``spec.size_multiple``, then crop the output) and
:func:`check_sr` (the output has the shape the spec promises), :func:`check_precision`
(the graph's precision against a requested one).
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgesr.errors import (
    ConfigError,
    EngineUnavailableError,
    ImageError,
    ModelFileError,
    UnknownNameError,
)
from edgesr.runtime.engine import Engine
from edgesr.spec import PRECISIONS, ModelSpec

logger = logging.getLogger(__name__)

#: name -> "module:Class". The one place engines are registered.
ENGINE_TABLE: dict[str, str] = {
    "ort": "edgesr.runtime.ort_engine:OrtEngine",
    "trt": "edgesr.runtime.trt_engine:TrtEngine",
    "torch": "edgesr.torch_engine:TorchEngine",
}
#: Engines that run a registered PyTorch model (by name) rather than an ONNX file.
MODEL_ENGINES: frozenset[str] = frozenset({"torch"})
#: What ``--engine`` accepts.
ENGINE_CHOICES: tuple[str, ...] = ("auto", *ENGINE_TABLE)

#: Input values this far outside the spec's input range are tolerated (rounding).
RANGE_TOLERANCE = 1e-3

_INSTALL_HINT = {
    "ort": "install ONNX Runtime: pip install 'edgesr[cpu]' (or 'edgesr[gpu]' on NVIDIA GPUs)",
    "trt": "install TensorRT on a machine with an NVIDIA GPU: pip install 'edgesr[trt]', or use --engine ort",
    "torch": "install PyTorch: pip install 'edgesr[torch]', or use --engine ort with an .onnx file",
}


@dataclass(frozen=True, kw_only=True)
class EngineChoice:
    """Which engine ``auto`` (or an explicit name) resolved to, and why."""

    name: str
    reason: str


def check_engine_name(name: object) -> str:
    """``name`` if it is ``auto`` or a registered engine; else UnknownNameError with suggestions."""
    if not isinstance(name, str) or name not in ENGINE_CHOICES:
        raise UnknownNameError("engine", str(name), ENGINE_CHOICES)
    return name


def _missing_dependency(exc: ImportError, module: str) -> str:
    """Why importing ``module`` failed: the module itself is absent, or one of its imports."""
    missing = getattr(exc, "name", None) or ""
    if missing == module:
        return f"this install has no module {module}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"importing {module} failed ({text})"


def engine_class(name: str) -> type:
    """Import and return the engine class registered as ``name``.

    Raises UnknownNameError for a name not in the table and EngineUnavailableError when the
    module (or a dependency such as tensorrt or torch) cannot be imported.
    """
    check_engine_name(name)
    if name == "auto":
        raise ConfigError("engine_class('auto') has no class; resolve it with choose_engine() first")
    module_name, _, class_name = ENGINE_TABLE[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineUnavailableError(
            f"engine {name!r} is not available here: {_missing_dependency(exc, module_name)}; "
            f"{_INSTALL_HINT[name]}"
        ) from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise EngineUnavailableError(
            f"engine {name!r}: {module_name} defines no {class_name}; this install is "
            "incomplete, reinstall edgesr or use --engine ort"
        ) from None


def engine_available(name: str) -> tuple[bool, str]:
    """(usable here, reason) for ``ort``, ``trt`` or ``torch``, without opening a model."""
    check_engine_name(name)
    if name == "ort":
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError:
            return False, "onnxruntime is not installed"
        return True, f"ONNX Runtime {ort.__version__} ({', '.join(ort.get_available_providers())})"
    if name == "trt":
        module_name = ENGINE_TABLE["trt"].partition(":")[0]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            return False, _missing_dependency(exc, module_name)
        return module.available()  # (usable, why); it never raises
    if name == "torch":
        try:
            torch = importlib.import_module("torch")
        except ImportError:
            return False, "PyTorch is not installed"
        return True, f"PyTorch {torch.__version__}"
    raise ConfigError(f"engine_available({name!r}): pass 'ort', 'trt' or 'torch'")


def _ort_has_cuda() -> bool:
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        return False
    available = ort.get_available_providers()
    return "CUDAExecutionProvider" in available or "TensorrtExecutionProvider" in available


def choose_engine(name: str = "auto") -> EngineChoice:
    """Resolve ``auto`` to the fastest engine available here (explicit names pass through).

    Order: ``trt`` (TensorRT Python API + GPU) > ``ort`` with a GPU provider > ``ort`` on the
    CPU. Raises EngineUnavailableError when nothing can run ONNX models here.
    """
    name = check_engine_name(name)
    if name != "auto":
        return EngineChoice(name=name, reason="requested")
    trt_ok, trt_why = engine_available("trt")
    if trt_ok:
        return EngineChoice(name="trt", reason=f"TensorRT is usable ({trt_why})")
    ort_ok, ort_why = engine_available("ort")
    if not ort_ok:
        raise EngineUnavailableError(
            f"no engine can run ONNX models here: TensorRT: {trt_why}; ONNX Runtime: {ort_why}; "
            f"{_INSTALL_HINT['ort']}"
        )
    trt_why = _without_advice(trt_why)  # auto was asked for, not trt: no install advice
    if _ort_has_cuda():
        return EngineChoice(name="ort", reason=f"ONNX Runtime with a GPU provider; trt is not usable: {trt_why}")
    return EngineChoice(name="ort", reason=f"ONNX Runtime on the CPU (no GPU provider); trt is not usable: {trt_why}")


def _without_advice(why: str) -> str:
    """The reason part of an availability answer ("X is missing; do Y" -> "X is missing"), so a
    message gives one piece of advice, its own."""
    return why.split("; ")[0]


def open_engine(
    name: str,
    *,
    model_path: str | os.PathLike[str] | None = None,
    spec: ModelSpec | None = None,
    options: Any = None,
    model_name: str | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> Engine:
    """Open engine ``name`` (``auto``, ``ort``, ``trt`` or ``torch``); close it when done.

    ONNX engines need ``model_path`` (``spec`` is read from its metadata when None);
    ``torch`` needs ``model_name`` (+ optional ``weights``; the shipped weights by default).
    ``options`` is the engine's own options dataclass (``OrtOptions``, ``TrtOptions``,
    ``TorchOptions``), or a mapping engine name -> options (what ``auto`` needs, since it may
    pick any engine), or None for the defaults. When ``auto`` picks ``trt`` and opening it
    fails, ``ort`` is used instead (logged as a warning).
    """
    choice = choose_engine(name)
    if name == "auto" and options is not None and not isinstance(options, Mapping):
        raise ConfigError(
            f"options {type(options).__name__} were given with engine 'auto', which may pick "
            "any engine; pass a mapping such as {'ort': OrtOptions(...)} or name the engine"
        )

    def options_for(engine: str) -> Any:
        if isinstance(options, Mapping):
            unknown = [k for k in options if k not in ENGINE_TABLE]
            if unknown:
                raise UnknownNameError("engine", str(unknown[0]), ENGINE_TABLE)
            return options.get(engine)
        return options

    if choice.name in MODEL_ENGINES:
        if model_name is None:
            raise ConfigError(
                f"engine {choice.name!r} runs a registered PyTorch model: pass model_name "
                "(e.g. --model osffnet_x4), not an ONNX file"
            )
        cls = engine_class(choice.name)
        return cls(model_name=model_name, weights=weights, spec=spec, options=options_for(choice.name))
    if model_path is None:
        raise ConfigError(
            f"engine {choice.name!r} runs an ONNX file: pass model_path (e.g. --model model.onnx)"
        )
    if weights is not None:
        raise ConfigError(
            f"weights={str(weights)!r} only apply to registered models (engine 'torch'); the "
            "weights of an ONNX file are inside it"
        )
    if choice.name == "trt" and name == "trt":
        ok, why = engine_available("trt")
        if not ok:
            raise EngineUnavailableError(
                f"engine 'trt' is not available here: {_without_advice(why)}; {_INSTALL_HINT['trt']}")
    try:
        cls = engine_class(choice.name)
        engine = cls(model_path=Path(model_path), spec=spec, options=options_for(choice.name))
    except EngineUnavailableError as exc:
        if name != "auto" or choice.name == "ort":
            raise
        logger.warning("engine auto: %s; falling back to ort", exc)
        return engine_class("ort")(model_path=Path(model_path), spec=spec, options=options_for("ort"))
    if name == "auto":  # debug: the CLI prints the engine it got; trt is mentioned only when asked for
        logger.debug("engine auto -> %s: %s", choice.name, choice.reason)
    return engine


def check_precision(spec: ModelSpec, wanted: str | None, *, source: str) -> str:
    """The precision of the model's graph (``spec.precision``; fp32 when the metadata names
    none edgesr knows), checked against ``wanted`` (None = whatever the graph is).

    Precision is fixed by the ONNX graph's types: no engine converts it (ONNX Runtime runs the
    graph as typed, TensorRT builds strongly typed networks), so a mismatch is a ConfigError
    that says which export to use.
    """
    graph = spec.precision if spec.precision in PRECISIONS else "fp32"
    if wanted is None or wanted == graph:
        return graph
    arch = spec.arch if spec.arch != "unknown" else "<name>"
    if wanted == "fp16":
        fix = f"export an FP16 graph with `edgesr-export --model {arch} --fp16` and pass that file"
    else:
        fix = (f"pass the {wanted} export of the model (`edgesr-export --model {arch}` without "
               "--fp16), or drop the precision request")
    request = " (--fp16)" if wanted == "fp16" else ""
    raise ConfigError(
        f"{source} is an {graph} model, but {wanted} was requested{request}; precision is fixed "
        f"by the ONNX graph's types (engines run it strongly typed, with no switch to convert "
        f"it), so {fix}"
    )


def _input_range(spec: ModelSpec) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in spec.input_range.split(","))
    except ValueError:
        raise ModelFileError(
            f"model metadata input_range={spec.input_range!r}, expected 'low,high' such as '0,1'; "
            "re-export the model"
        ) from None
    return lo, hi


def check_lr(lr: object, spec: ModelSpec, *, engine: str) -> np.ndarray:
    """Validate an engine input and return it as contiguous float32 (N, 3, H, W).

    One-line ImageError for: not an array, not 4-D, not 3 channels, not floating point,
    empty, NaN/inf, or values outside the spec's input range (by more than 1e-3).
    """
    where = f"engine {engine!r} received lr"
    if not isinstance(lr, np.ndarray):
        raise ImageError(f"{where} of type {type(lr).__name__}, expected a numpy array (N, 3, H, W); use numpy.asarray")
    if lr.ndim != 4 or lr.shape[1] != 3:
        raise ImageError(
            f"{where} of shape {lr.shape}, expected (N, 3, H, W) RGB; turn an H×W×3 image into "
            "that with nchw_from_rgb"
        )
    if not np.issubdtype(lr.dtype, np.floating):
        raise ImageError(f"{where} of dtype {lr.dtype}, expected float32 in [0, 1]; divide 8-bit data by 255")
    if min(lr.shape) < 1:
        raise ImageError(f"{where} of shape {lr.shape}, expected N, H, W >= 1; check the image was read")
    x = np.ascontiguousarray(lr, dtype=np.float32)
    lo, hi = _input_range(spec)
    x_min, x_max = float(x.min()), float(x.max())  # NaN propagates into both
    if not (np.isfinite(x_min) and np.isfinite(x_max)):
        raise ImageError(f"{where} containing NaN or infinity, expected finite values in [{lo:g}, {hi:g}]; check the input")
    if x_min < lo - RANGE_TOLERANCE or x_max > hi + RANGE_TOLERANCE:
        raise ImageError(
            f"{where} with values in [{x_min:.4g}, {x_max:.4g}], expected [{lo:g}, {hi:g}] "
            f"(the model's input range); scale the input (8-bit / 255, 16-bit / 65535)"
        )
    return x


def padded_size(size: int, spec: ModelSpec) -> int:
    """The side the model is run at for an input side of ``size`` pixels."""
    target = max(size, spec.min_size_px)
    multiple = max(1, spec.size_multiple)
    return -(-target // multiple) * multiple


def pad_for_model(lr: np.ndarray, spec: ModelSpec) -> tuple[np.ndarray, int, int]:
    """Replicate-pad (bottom/right) ``lr`` to the model's minimum size and size multiple.

    Returns (padded, height, width) with the original height and width for :func:`crop_sr`.
    Models with ESA pool a 3×3 stride-2 conv output with a 7×7 window, so they need 15 px;
    ONNX Runtime does not fail cleanly below that (it can crash the process), hence padding.
    """
    height, width = int(lr.shape[2]), int(lr.shape[3])
    ph, pw = padded_size(height, spec), padded_size(width, spec)
    if (ph, pw) == (height, width):
        return lr, height, width
    logger.debug("padding input %dx%d to %dx%d (min_size_px=%d, size_multiple=%d)",
                 width, height, pw, ph, spec.min_size_px, spec.size_multiple)
    padded = np.pad(lr, ((0, 0), (0, 0), (0, ph - height), (0, pw - width)), mode="edge")
    return np.ascontiguousarray(padded), height, width


def check_sr(sr: object, lr_shape: tuple[int, ...], spec: ModelSpec, *, source: str) -> np.ndarray:
    """The model output as float32, checked to be (N, 3, s·H, s·W) for input (N, 3, H, W)."""
    n, c, h, w = lr_shape
    expected = (n, c, h * spec.scale, w * spec.scale)
    shape = tuple(getattr(sr, "shape", ()))
    if shape != expected:
        raise ModelFileError(
            f"{source} returned shape {shape} for an input of shape {tuple(lr_shape)}, expected "
            f"{expected} (scale {spec.scale}); it is not an x{spec.scale} super-resolution model "
            "(check --scale or the file)"
        )
    return np.asarray(sr, dtype=np.float32)


def crop_sr(sr: np.ndarray, height: int, width: int, spec: ModelSpec) -> np.ndarray:
    """Undo :func:`pad_for_model` on the output: keep the top-left s·H × s·W."""
    s = spec.scale
    if sr.shape[2] == height * s and sr.shape[3] == width * s:
        return sr
    return np.ascontiguousarray(sr[:, :, : height * s, : width * s])


__all__ = [
    "ENGINE_CHOICES",
    "ENGINE_TABLE",
    "MODEL_ENGINES",
    "EngineChoice",
    "check_engine_name",
    "check_lr",
    "check_precision",
    "check_sr",
    "choose_engine",
    "crop_sr",
    "engine_available",
    "engine_class",
    "open_engine",
    "pad_for_model",
    "padded_size",
]
