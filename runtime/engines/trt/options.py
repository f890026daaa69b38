"""Options of a TensorRT build (what changes the engine is part of its cache key)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgesr.errors import ConfigError
from edgesr.runtime.engines.trt.profile import OptimizationProfile
from edgesr.spec import PRECISIONS

__all__ = ["PLUGIN_IMPLS", "TrtOptions"]

#: DSConv plugin implementations an engine can bake in: "aot" (PTX in the engine, no Python
#: at run time; TensorRT >= 10.9) or "jit" (a Python callback at every inference; >= 10.7).
PLUGIN_IMPLS: tuple[str, ...] = ("aot", "jit")


@dataclass(frozen=True, kw_only=True)
class TrtOptions:
    """How to build and cache a TensorRT engine.

    precision: "fp32" | "fp16" to assert the ONNX graph's precision (from its metadata), or
        None to take whatever the graph is. Strongly typed networks cannot change it.
    workspace_bytes: builder workspace memory pool limit.
    profile: input shapes (min/opt/max NCHW); None derives them from the model's tiling
        advice (tile_px + 2 * overlap_px per side at most, min_size_px at least).
    cache_dir: engine/timing cache folder; None = $EDGESR_CACHE_DIR/trt or ~/.cache/edgesr/trt.
    timing_cache: load and save the builder's timing cache on disk.
    plugin: use the edgesr::DynamicSnakeConv plugin for DSConv nodes where TensorRT
        (>= 10.7) and triton allow, else (or when False) their ONNX local function.
    plugin_impl: "aot" (kernel baked into the engine; no Python at run time) or "jit".
    builder_optimization_level: 0-5, None for TensorRT's default (3).
    """

    precision: str | None = None
    workspace_bytes: int = 1 << 30
    profile: OptimizationProfile | None = None
    cache_dir: Path | None = None
    timing_cache: bool = True
    plugin: bool = True
    plugin_impl: str = "aot"
    builder_optimization_level: int | None = None

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ConfigError(
                f"TrtOptions precision={self.precision!r}; expected one of "
                f"{', '.join(PRECISIONS)} or None (the ONNX graph's own)"
            )
        if (
            isinstance(self.workspace_bytes, bool)
            or not isinstance(self.workspace_bytes, int)
            or self.workspace_bytes < (1 << 20)
        ):
            raise ConfigError(
                f"TrtOptions workspace_bytes={self.workspace_bytes!r}; expected an integer "
                ">= 1 MiB such as 1 << 30"
            )
        if self.plugin_impl not in PLUGIN_IMPLS:
            raise ConfigError(
                f"TrtOptions plugin_impl={self.plugin_impl!r}; expected 'aot' or 'jit'"
            )
        level = self.builder_optimization_level
        if level is not None and (isinstance(level, bool) or level not in range(6)):
            raise ConfigError(
                f"TrtOptions builder_optimization_level={level!r}; expected 0..5 or None"
            )
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    def builder_fields(self) -> dict[str, str]:
        """The options that change the engine's content (part of the cache key)."""
        out = {"workspace_bytes": str(self.workspace_bytes)}
        if self.builder_optimization_level is not None:
            out["builder_optimization_level"] = str(self.builder_optimization_level)
        return out

