"""ONNX Runtime execution providers: their names, short aliases and the default order.

Split from :mod:`edgesr.runtime.engines.ort` (which re-exports every name here) so the engine
module keeps to the session and the run.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgesr.errors import EngineUnavailableError, UnknownNameError

TENSORRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
#: Default preference, fastest first; only those this onnxruntime build offers are used.
PROVIDER_ORDER: tuple[str, ...] = (TENSORRT_EP, CUDA_EP, CPU_EP)
#: Short names accepted in :attr:`OrtOptions.providers`.
PROVIDER_ALIASES: dict[str, str] = {
    "tensorrt": TENSORRT_EP,
    "trt": TENSORRT_EP,
    "cuda": CUDA_EP,
    "cpu": CPU_EP,
    "xnnpack": "XnnpackExecutionProvider",  # Arm/x86 CPUs, Android and iOS builds
    "coreml": "CoreMLExecutionProvider",  # Apple GPU/Neural Engine (iOS, macOS builds)
    "nnapi": "NnapiExecutionProvider",  # Android NPU/GPU/DSP
    "qnn": "QNNExecutionProvider",  # Qualcomm Hexagon NPU
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",  # DirectML, Windows
}


def short_provider_name(provider: str) -> str:
    """``CUDAExecutionProvider`` -> ``cuda``: the name a user passes (the full name if none)."""
    for short, full in PROVIDER_ALIASES.items():
        if full == provider and short != "trt":
            return short
    return provider


def resolve_providers(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """The provider list to pass to ONNX Runtime (see the module notes)."""
    if not requested:
        return [p for p in PROVIDER_ORDER if p in available] or [CPU_EP]
    chosen: list[str] = []
    known = sorted(set(PROVIDER_ALIASES) | set(PROVIDER_ALIASES.values()) | set(available))
    for name in requested:
        full = PROVIDER_ALIASES.get(str(name).lower(), name)
        if full not in available:
            if full not in known:
                raise UnknownNameError("execution provider", str(name), known)
            raise EngineUnavailableError(
                f"execution provider {name!r} ({full}) is not in this onnxruntime build, which "
                f"offers {', '.join(available)}; install onnxruntime-gpu for CUDA/TensorRT, or "
                "request one of those"
            )
        if full not in chosen:
            chosen.append(full)
    return chosen


__all__ = [
    "CPU_EP",
    "CUDA_EP",
    "PROVIDER_ALIASES",
    "PROVIDER_ORDER",
    "TENSORRT_EP",
    "resolve_providers",
    "short_provider_name",
]
