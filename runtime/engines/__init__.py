"""The engine table, ``auto`` selection and opening engines by name (never imports torch).

One :class:`EngineDescriptor` row per engine says everything the tools need without importing
the engine: where its class and options class live (``"module:Name"`` strings, imported only
when asked for, so a missing TensorRT or PyTorch costs nothing until that engine is
requested), how to tell cheaply whether it can run here and the one-line install hint when it
cannot, the kinds of device it runs on, the precisions it runs, whether it runs an ONNX file
or a registered PyTorch model, and its place in ``auto``'s preference order.

Adding an engine = one module (a :class:`edgesr.runtime.engines.base.BaseEngine` subclass with
an options dataclass) and one :func:`register_engine` call, or one row in :data:`_BUILTIN`.
``edgesr-run --engine``, ``edgesr-eval --engine`` and ``edgesr-bench latency --engine`` read
their choices from :func:`engine_choices`.

Constructor contract (keyword-only):

- engines that run an ONNX file (``runs="onnx"``): ``Engine(*, model_path, spec, options)``;
- engines that run a registered PyTorch model (``runs="model"``, i.e. ``torch``):
  ``Engine(*, model_name, weights, spec, options)``.

``auto`` tries the rows with an ``auto_rank`` (lowest first) whose availability check passes:
``trt`` (TensorRT + GPU), then ``openvino`` (only where ONNX Runtime has no GPU provider, and
only for jobs of at least :data:`OPENVINO_AUTO_MIN_LR_PX` LR pixels: the measured rule), then
``ort`` (which itself prefers the TensorRT, then CUDA, then CPU execution provider). ``torch``
is the reference, never picked by ``auto``.

An engine with ``devices`` is also named ``engine:DEVICE`` (``openvino:GPU``); the device
goes to its options' ``device`` field.

The package holds every engine: the protocol (:mod:`.protocol`), the base class (:mod:`.base`),
the input/output checks every engine shares (:mod:`.checks`), this table, one module per engine
(:mod:`.ort`, :mod:`.openvino`) and the TensorRT package (:mod:`.trt`). The torch engine stays in
``edgesr/torch_engine.py`` because the runtime never imports torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesr.errors import ConfigError, EngineUnavailableError, UnknownNameError
from edgesr.runtime.engines.availability import (
    OPENVINO_MODULE,
    TRT_MODULE,
    missing_dependency,
    openvino_available,
    ort_available,
    ort_gpu_provider,
    torch_available,
    trt_available,
)
from edgesr.runtime.engines.protocol import Engine
from edgesr.spec import ModelSpec

logger = logging.getLogger(__name__)

KINDS = ("cpu", "gpu", "npu")
#: ``auto`` picks OpenVINO over ONNX Runtime on a CPU for jobs of at least this many LR pixels:
#: its calls took 0.73-0.80x ONNX Runtime's time (all three shipped x4 models, 320x180), but it
#: starts about 1.2 s later (importing OpenVINO and onnx, compiling from its cache), which
#: those calls repay after about this much work (README "OpenVINO" has the runs).
OPENVINO_AUTO_MIN_LR_PX = 400_000


@dataclass(frozen=True, kw_only=True)
class EngineDescriptor:
    """One row of the engine table (see the module notes)."""

    name: str
    engine: str  # "module:Class"
    options: str  # "module:OptionsClass"
    kinds: tuple[str, ...]  # devices it can run on: "cpu", "gpu", "npu"
    precisions: tuple[str, ...]
    install_hint: str  # one line: what to install (or use instead) when it cannot run here
    available: Callable[[], tuple[bool, str]]  # (usable here, why); cheap, never raises
    runs: str = "onnx"  # "onnx": an .onnx file; "model": a registered PyTorch model by name
    auto_rank: int | None = None  # order in which ``auto`` tries it; None = never
    #: Devices accepted as ``name:DEVICE`` (the first is the default); the options class then
    #: has a ``device`` field that the name sets.
    devices: tuple[str, ...] = ()
    #: True when ``--fp16`` runs the fp32 graph in the engine's own half type (no FP16 export).
    half_from_fp32: bool = False
    #: ``auto`` passes this row over for jobs of fewer LR pixels (or of unknown size): below it
    #: the engine's start-up costs more than its faster calls save (README "OpenVINO").
    auto_min_lr_px: int = 0
    #: ``auto`` passes this row over where ONNX Runtime has a GPU provider (faster there).
    auto_cpu_only: bool = False

    def __post_init__(self) -> None:
        if self.runs not in ("onnx", "model"):
            raise ConfigError(f"engine {self.name!r}: runs={self.runs!r}, expected 'onnx' or 'model'")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ConfigError(f"engine {self.name!r}: kinds={self.kinds!r}, expected some of {KINDS}")
        for ref in (self.engine, self.options):
            if ":" not in ref:
                raise ConfigError(f"engine {self.name!r}: {ref!r} is not 'module:Name'")

    @property
    def module(self) -> str:
        return self.engine.partition(":")[0]


_BUILTIN = (
    EngineDescriptor(
        name="ort", engine="edgesr.runtime.engines.ort:OrtEngine",
        options="edgesr.runtime.engines.ort:OrtOptions", kinds=("cpu", "gpu", "npu"),
        precisions=("fp32", "fp16"), available=ort_available, auto_rank=2,
        install_hint="install ONNX Runtime: pip install -e '.[cpu]' (or '.[gpu]' on NVIDIA GPUs)",
    ),
    EngineDescriptor(
        # by name only: TensorRT is imported when this engine is asked for
        name="trt", engine=f"{TRT_MODULE}:TrtEngine",
        options="edgesr.runtime.engines.trt.options:TrtOptions", kinds=("gpu",),
        precisions=("fp32", "fp16"), available=trt_available, auto_rank=0,
        install_hint="install TensorRT on a machine with an NVIDIA GPU: pip install -e '.[trt-cu12]', or use --engine ort",
    ),
    EngineDescriptor(
        name="openvino", engine=f"{OPENVINO_MODULE}:OpenVinoEngine",
        options="edgesr.runtime.engines.openvino:OpenVinoOptions", kinds=("cpu", "gpu", "npu"),
        precisions=("fp32", "fp16"), available=openvino_available, devices=("CPU", "GPU", "NPU"),
        half_from_fp32=True, auto_rank=1, auto_cpu_only=True, auto_min_lr_px=OPENVINO_AUTO_MIN_LR_PX,
        install_hint="install OpenVINO: pip install -e '.[openvino]', or use --engine ort",
    ),
    EngineDescriptor(
        name="torch", engine="edgesr.torch_engine:TorchEngine",
        options="edgesr.torch_engine:TorchOptions", kinds=("cpu", "gpu"),
        precisions=("fp32", "fp16"), available=torch_available, runs="model",
        install_hint="install PyTorch: pip install -e '.[torch]', or use --engine ort with an .onnx file",
    ),
)

#: name -> descriptor. The one place engines are registered (see :func:`register_engine`).
ENGINES: dict[str, EngineDescriptor] = {row.name: row for row in _BUILTIN}


def register_engine(row: EngineDescriptor, *, replace: bool = False) -> EngineDescriptor:
    """Add ``row`` to the table (plugins, tests); an existing name needs ``replace=True``."""
    if row.name == "auto" or (row.name in ENGINES and not replace):
        raise ConfigError(f"engine {row.name!r} is already registered; pass replace=True to replace it")
    ENGINES[row.name] = row
    return row


def unregister_engine(name: str) -> None:
    ENGINES.pop(name, None)


def engine_choices() -> tuple[str, ...]:
    """What ``--engine`` accepts: ``auto``, every registered engine, and ``name:DEVICE`` for
    each device after an engine's default one (``openvino:GPU``)."""
    with_devices = [f"{name}:{device}" for name, row in ENGINES.items() for device in row.devices[1:]]
    return ("auto", *ENGINES, *with_devices)


def split_engine_name(name: str) -> tuple[str, str | None]:
    """``"openvino:GPU"`` -> ``("openvino", "GPU")``; ``"ort"`` -> ``("ort", None)``."""
    engine, _, device = name.partition(":")
    return engine, (device or None)


def model_engines() -> frozenset[str]:
    """Engines that run a registered PyTorch model (by name) rather than an ONNX file."""
    return frozenset(name for name, row in ENGINES.items() if row.runs == "model")


#: Snapshots of the table at import, for code written before the descriptors.
ENGINE_TABLE: dict[str, str] = {name: row.engine for name, row in ENGINES.items()}
ENGINE_CHOICES: tuple[str, ...] = engine_choices()
MODEL_ENGINES: frozenset[str] = model_engines()


@dataclass(frozen=True, kw_only=True)
class EngineChoice:
    """Which engine ``auto`` (or an explicit name) resolved to, and why."""

    name: str
    reason: str  # everything: the rule, and every engine that cannot run here
    device: str | None = None  # from ``name:DEVICE``; None = the engine's default device
    #: what ``edgesr-run`` prints: the engine and any engine the rule passed over, but not
    #: the engines that are not installed (TensorRT is mentioned only when asked for)
    summary: str = ""


def check_engine_name(name: object) -> str:
    """``name`` if it is ``auto``, a registered engine or ``engine:DEVICE`` of an engine with
    devices (``openvino:GPU``, ``openvino:GPU.1``); else UnknownNameError with suggestions."""
    if not isinstance(name, str):
        raise UnknownNameError("engine", str(name), engine_choices())
    engine, device = split_engine_name(name)
    row = ENGINES.get(engine)
    known_device = device is None or (row is not None and device.partition(".")[0].upper() in row.devices)
    if (name != "auto" and row is None) or not known_device:
        raise UnknownNameError("engine", name, engine_choices())
    return name


def descriptor(name: str) -> EngineDescriptor:
    check_engine_name(name)
    if name == "auto":
        raise ConfigError("'auto' is not an engine of its own; resolve it with choose_engine() first")
    return ENGINES[split_engine_name(name)[0]]


def _import_ref(row: EngineDescriptor, ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineUnavailableError(
            f"engine {row.name!r} is not available here: {missing_dependency(exc, module_name)}; "
            f"{row.install_hint}"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise EngineUnavailableError(
            f"engine {row.name!r}: {module_name} defines no {attr}; this install is "
            "incomplete, reinstall edgesr or use --engine ort"
        ) from None


def engine_class(name: str) -> type:
    """Import and return the engine class registered as ``name`` (EngineUnavailableError with
    the row's install hint when its module or a dependency cannot be imported)."""
    row = descriptor(name)
    return _import_ref(row, row.engine)


def options_class(name: str) -> type:
    """Import and return the options dataclass of engine ``name``."""
    row = descriptor(name)
    return _import_ref(row, row.options)


def engine_available(name: str) -> tuple[bool, str]:
    """(usable here, reason) for a registered engine, without opening a model."""
    return descriptor(name).available()


def _auto_passes_over(row: EngineDescriptor, lr_px: int | None) -> str:
    """Why ``auto`` does not try ``row`` for this job ("" when it does)."""
    if row.auto_cpu_only and ort_gpu_provider():
        return "passed over: ONNX Runtime has a GPU provider here, which is faster"
    if row.auto_min_lr_px and (lr_px is None or lr_px < row.auto_min_lr_px):
        size = "of unknown size" if lr_px is None else f"of {lr_px:,} LR px"
        return f"passed over: a job {size} is below {row.auto_min_lr_px:,}, where its start-up costs more than its faster calls save"
    return ""


def choose_engine(name: str = "auto", *, lr_px: int | None = None) -> EngineChoice:
    """Resolve ``auto`` to the first available engine by ``auto_rank`` whose job rules
    (``auto_cpu_only``, ``auto_min_lr_px``; ``lr_px``: the job's LR pixels, None = unknown)
    let it be tried (explicit names pass through). Raises EngineUnavailableError when nothing
    can run ONNX models here."""
    name = check_engine_name(name)
    if name != "auto":
        engine, device = split_engine_name(name)
        return EngineChoice(name=engine, device=device, reason="requested", summary="requested")
    ranked = sorted((row for row in ENGINES.values() if row.auto_rank is not None),
                    key=lambda row: row.auto_rank or 0)
    refusals: list[str] = []  # engines that cannot run here
    rules: list[str] = []  # engines auto's rule passed over for this job
    for row in ranked:
        passed_over = _auto_passes_over(row, lr_px)
        if passed_over:
            rules.append(f"{row.name} {passed_over}")
            continue
        ok, why = row.available()
        if ok:
            summary = "; ".join([why, *rules])
            passed = f"; not usable: {'; '.join(refusals)}" if refusals else ""
            return EngineChoice(name=row.name, reason=f"{summary}{passed}", summary=summary)
        refusals.append(f"{row.name}: {_without_advice(why)}")
    raise EngineUnavailableError(
        f"no engine can run ONNX models here ({'; '.join(refusals + rules)}); {ENGINES['ort'].install_hint}")


def _options_for(options: Any, engine: str, device: str | None = None) -> Any:
    if isinstance(options, Mapping):
        unknown = [k for k in options if k not in ENGINES]
        if unknown:
            raise UnknownNameError("engine", str(unknown[0]), ENGINES)
        options = options.get(engine)
    if device is not None:  # ``name:DEVICE`` sets the options' device
        options = dataclasses.replace(options or options_class(engine)(), device=device)
    return options


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
    lr_px: int | None = None,
) -> Engine:
    """Open engine ``name`` (``auto`` or a registered engine); close it when done.

    ONNX engines need ``model_path`` (``spec`` is read from its metadata when None); model
    engines (``torch``) need ``model_name`` (+ optional ``weights``; shipped by default).
    ``options`` is the engine's own options dataclass, or a mapping engine name -> options
    (what ``auto`` needs, since it may pick any engine), or None for the defaults. ``lr_px``:
    the job's LR pixels, for ``auto``'s rule (None = unknown). When
    ``auto`` picks an engine that then fails to open, ``ort`` is used instead (a warning).
    """
    choice = choose_engine(name, lr_px=lr_px)
    if name == "auto" and options is not None and not isinstance(options, Mapping):
        raise ConfigError(
            f"options {type(options).__name__} were given with engine 'auto', which may pick "
            "any engine; pass a mapping such as {'ort': OrtOptions(...)} or name the engine"
        )
    row = ENGINES[choice.name]
    if row.runs == "model":
        if model_name is None:
            raise ConfigError(
                f"engine {row.name!r} runs a registered PyTorch model: pass model_name "
                "(e.g. --model osffnet_x4), not an ONNX file"
            )
        cls = engine_class(row.name)
        return cls(model_name=model_name, weights=weights, spec=spec, options=_options_for(options, row.name))
    if model_path is None:
        raise ConfigError(f"engine {row.name!r} runs an ONNX file: pass model_path (e.g. --model model.onnx)")
    if weights is not None:
        raise ConfigError(
            f"weights={str(weights)!r} only apply to registered models (engine 'torch'); the "
            "weights of an ONNX file are inside it"
        )
    if name != "auto":
        ok, why = row.available()
        if not ok:
            raise EngineUnavailableError(
                f"engine {row.name!r} is not available here: {_without_advice(why)}; {row.install_hint}")
    try:
        engine = engine_class(row.name)(model_path=Path(model_path), spec=spec,
                                        options=_options_for(options, row.name, choice.device))
    except EngineUnavailableError as exc:
        if name != "auto" or row.name == "ort":
            raise
        logger.warning("engine auto: %s; falling back to ort", exc)
        return engine_class("ort")(model_path=Path(model_path), spec=spec, options=_options_for(options, "ort"))
    if name == "auto":  # debug: the CLI prints the engine it got; trt is mentioned only when asked for
        logger.debug("engine auto -> %s: %s", row.name, choice.reason)
    return engine


__all__ = [
    "ENGINES",
    "ENGINE_CHOICES",
    "ENGINE_TABLE",
    "KINDS",
    "MODEL_ENGINES",
    "EngineChoice",
    "EngineDescriptor",
    "check_engine_name",
    "choose_engine",
    "descriptor",
    "engine_available",
    "engine_choices",
    "engine_class",
    "model_engines",
    "open_engine",
    "options_class",
    "register_engine",
    "split_engine_name",
    "unregister_engine",
]
