"""A TensorRT engine-cache key for the cache tests: every field filled in, any of them changed
by keyword; and a stand-in engine's bytes."""

from __future__ import annotations

from edgesr.runtime.engines.trt.cache import EngineKey
from edgesr.runtime.engines.trt.profile import OptimizationProfile

PROFILE = OptimizationProfile(min=(1, 3, 16, 16), opt=(1, 3, 288, 288), max=(1, 3, 288, 288))
ENGINE = b"\x7fTRT-engine-bytes" * 64


def make_key(**changes: object) -> EngineKey:
    fields: dict[str, object] = dict(
        onnx_sha256="a" * 64,
        trt_version="10.13.0.35",
        gpu_name="NVIDIA Jetson AGX Orin",
        compute_capability="8.7",
        precision="fp16",
        profile=PROFILE,
        plugin_version="edgesr::DynamicSnakeConv/v1/aot/triton-3.9.0",
        edgesr_version="0.1.0",
        builder={"workspace_bytes": str(1 << 30)},
    )
    fields.update(changes)
    return EngineKey(**fields)  # type: ignore[arg-type]
