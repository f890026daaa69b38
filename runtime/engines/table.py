"""The engine table: one :class:`EngineDescriptor` row per engine, and the names ``--engine``
accepts (see the package notes in ``edgesr.runtime.engines``). Never imports an engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgesr.errors import ConfigError, UnknownNameError
from edgesr.runtime.engines.availability import (
    OPENVINO_MODULE,
    TRT_MODULE,
    openvino_available,
    ort_available,
    torch_available,
    trt_available,
)

KINDS = ("cpu", "gpu", "npu")
#: ``auto`` picks OpenVINO over ONNX Runtime on a CPU for jobs of at least this many LR pixels:
#: its calls took 0.73-0.80x ONNX Runtime's time (all three shipped x4 models, 320x180), but it
#: starts about 1.2 s later (importing OpenVINO and onnx, compiling from its cache), which
#: those calls repay after about this much work (docs/performance.md "OpenVINO" has the runs).
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
    #: the engine's start-up costs more than its faster calls save (docs/performance.md "OpenVINO").
    auto_min_lr_px: int = 0
    #: ``auto`` passes this row over where ONNX Runtime has a GPU provider (faster there).
    auto_cpu_only: bool = False
    #: The top-level package the engine needs ("openvino"): ``auto`` checks that it is
    #: installed (a cheap find_spec, no import) before its job rules, so an engine that is not
    #: installed is never reported as "passed over" for the job.
    package: str | None = None

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
        name="ort", package="onnxruntime", engine="edgesr.runtime.engines.ort:OrtEngine",
        options="edgesr.runtime.engines.ort:OrtOptions", kinds=("cpu", "gpu", "npu"),
        precisions=("fp32", "fp16"), available=ort_available, auto_rank=2,
        install_hint="install ONNX Runtime: pip install -e '.[cpu]' (or '.[gpu]' on NVIDIA GPUs)",
    ),
    EngineDescriptor(
        # by name only: TensorRT is imported when this engine is asked for
        name="trt", package="tensorrt", engine=f"{TRT_MODULE}:TrtEngine",
        options="edgesr.runtime.engines.trt.options:TrtOptions", kinds=("gpu",),
        precisions=("fp32", "fp16"), available=trt_available, auto_rank=0,
        install_hint="install TensorRT on a machine with an NVIDIA GPU: pip install -e '.[trt-cu12]', or use --engine ort",
    ),
    EngineDescriptor(
        name="openvino", package="openvino", engine=f"{OPENVINO_MODULE}:OpenVinoEngine",
        options="edgesr.runtime.engines.openvino:OpenVinoOptions", kinds=("cpu", "gpu", "npu"),
        precisions=("fp32", "fp16"), available=openvino_available, devices=("CPU", "GPU", "NPU"),
        half_from_fp32=True, auto_rank=1, auto_cpu_only=True, auto_min_lr_px=OPENVINO_AUTO_MIN_LR_PX,
        install_hint="install OpenVINO: pip install -e '.[openvino]', or use --engine ort",
    ),
    EngineDescriptor(
        name="torch", package="torch", engine="edgesr.torch_engine:TorchEngine",
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


def engine_available(name: str) -> tuple[bool, str]:
    """(usable here, reason) for a registered engine, without opening a model."""
    return descriptor(name).available()
