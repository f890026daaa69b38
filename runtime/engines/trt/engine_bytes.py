"""ONNX file -> serialized engine bytes without the engine cache (Polygraphy's
``EngineBytesFromNetwork``): the loader steps of ``build.py`` composed, for callers that
store or inspect the engine themselves. ``TrtEngine`` (``runner.py``) adds the cache."""

from __future__ import annotations

import os
from pathlib import Path

from edgesr.runtime.engines.checks import check_precision
from edgesr.runtime.engines.trt.build import build_engine, choose_plugin_impl, import_tensorrt, resolve_profile, spec_of
from edgesr.runtime.engines.trt.cache import cache_root, timing_cache_path
from edgesr.runtime.engines.trt.onnx_bytes import read_onnx
from edgesr.runtime.engines.trt.options import TrtOptions
from edgesr.spec import ModelSpec

__all__ = ["engine_from_onnx"]


def engine_from_onnx(
    onnx_path: str | os.PathLike[str],
    *,
    options: TrtOptions | None = None,
    spec: ModelSpec | None = None,
) -> bytes:
    """Build a serialized TensorRT engine from an edgesr ONNX file (no caching of the engine;
    the timing cache is used when ``options.timing_cache``). Raises EngineUnavailableError
    where TensorRT or a GPU is missing, ModelFileError when the model cannot be built."""
    options = options or TrtOptions()
    trt_mod = import_tensorrt()
    source = Path(onnx_path)
    model = read_onnx(source)
    spec = spec_of(model, source=str(source), spec=spec)
    check_precision(spec, options.precision, source=str(source))
    profile = resolve_profile(options, spec)
    plugin_impl = choose_plugin_impl(options, model, str(trt_mod.__version__))
    timing = None
    if options.timing_cache:
        from edgesr.runtime.engines.trt.cuda_memory import cuda_api

        device = cuda_api().device_info(0)
        major, minor = device.compute_capability
        timing = timing_cache_path(
            root=cache_root(options.cache_dir),
            trt_version=str(trt_mod.__version__),
            gpu_name=device.name,
            compute_capability=f"{major}.{minor}",
        )
    return build_engine(
        model, source=source, options=options, profile=profile, plugin_impl=plugin_impl, timing_path=timing
    )
