"""Whether each built-in engine can run here: cheap checks for the engine table (no torch).

Each check returns ``(usable here, why)`` and never raises; the engine modules themselves are
imported only where their own check needs them (TensorRT, OpenVINO), and never torch's:
``torch_available`` imports torch only when the torch engine is asked about.
"""

from __future__ import annotations

import importlib

TRT_MODULE = "edgesr.runtime.engines.trt.runner"
OPENVINO_MODULE = "edgesr.runtime.engines.openvino"


def missing_dependency(exc: ImportError, module: str) -> str:
    """Why importing ``module`` failed: the module itself is absent, or one of its imports."""
    missing = getattr(exc, "name", None) or ""
    if missing == module:
        return f"this install has no module {module}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"importing {module} failed ({text})"


def ort_gpu_provider() -> bool:
    """True when the installed onnxruntime has a CUDA or TensorRT execution provider."""
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return any(p in ort.get_available_providers() for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider"))


def ort_available() -> tuple[bool, str]:
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        return False, "onnxruntime is not installed"
    providers = list(ort.get_available_providers())
    where = "with a GPU provider" if ort_gpu_provider() else "on the CPU (no GPU provider)"
    return True, f"ONNX Runtime {ort.__version__} {where} ({', '.join(providers)})"


def trt_available() -> tuple[bool, str]:
    module_name = TRT_MODULE  # the TensorRT module says itself (GPU, libraries)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return False, missing_dependency(exc, module_name)
    return module.available()


def openvino_available() -> tuple[bool, str]:
    try:
        module = importlib.import_module(OPENVINO_MODULE)
    except ImportError as exc:
        return False, missing_dependency(exc, OPENVINO_MODULE)
    return module.available()


def torch_available() -> tuple[bool, str]:
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return False, "PyTorch is not installed"
    return True, f"PyTorch {torch.__version__}"
