"""ONNX bytes -> serialized TensorRT engine, in small loader steps (as Polygraphy splits them).

No torch here (DESIGN sections 1 and 7); TensorRT, CUDA and the DSConv plugin are imported
lazily, so this module imports on any machine. The steps, each a function:

1. :func:`choose_plugin_impl`: "aot", "jit" or "" (the ONNX local function) for the DSConv
   nodes, from the TensorRT version and what registers (one log line on a fallback).
2. :func:`create_network`: a **strongly typed** network (TensorRT 11 has no other kind, and
   removed ``BuilderFlag.FP16``: precision comes from the ONNX graph) parsed from the bytes,
   DSConv nodes tagged ``plugin_namespace``/``aot`` (``onnx_bytes.mark_plugin_nodes``).
3. :func:`create_config`: workspace limit and builder optimization level.
4. :func:`add_profile`: min/opt/max input shapes.
5. :func:`attach_timing_cache` / :func:`save_timing_cache`: the on-disk timing cache.
6. :func:`build_serialized`: the build, logged with its duration (minutes on a Jetson).

TRT 10 vs 11: ``STRONGLY_TYPED`` and ``PREFER_AOT/JIT_PYTHON_PLUGINS`` (10.9+) are looked up
with getattr; ``EXPLICIT_BATCH`` and the weak-typing builder flags are never used.
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Any

from edgesr import __version__ as EDGESR_VERSION
from edgesr.errors import EngineUnavailableError, ModelFileError
from edgesr.runtime.engines.checks import check_precision
from edgesr.runtime.engines.trt.cache import EngineKey, load_timing_cache_bytes, save_timing_cache_bytes
from edgesr.runtime.engines.trt.cuda_memory import DeviceInfo
from edgesr.runtime.engines.trt.onnx_bytes import count_plugin_nodes, mark_plugin_nodes, read_onnx_metadata
from edgesr.runtime.engines.trt.options import TrtOptions
from edgesr.runtime.engines.trt.profile import OptimizationProfile, profile_from_tiling
from edgesr.spec import INPUT_NAME, OUTPUT_NAME, ModelSpec

__all__ = [
    "PLUGIN_PRECEDENCE_FROM",
    "AOT_PLUGINS_FROM",
    "build_engine",
    "choose_plugin_impl",
    "engine_key",
    "import_tensorrt",
    "plugin_build_settings",
    "spec_of",
    "resolve_profile",
    "trt_logger",
]

logger = logging.getLogger(__name__)

#: First TensorRT whose ONNX parser imports a registered plugin instead of the node's local
#: function (``tests/test_trt_parser_choice.py``); older ones always expand the function.
PLUGIN_PRECEDENCE_FROM = (10, 7)
#: First TensorRT with ``tensorrt.plugin.aot_impl`` and the PREFER_*_PYTHON_PLUGINS flags.
AOT_PLUGINS_FROM = (10, 9)


def import_tensorrt() -> Any:
    """The real TensorRT module, or EngineUnavailableError saying what is wrong."""
    try:
        trt_mod = importlib.import_module("tensorrt")
    except ImportError as exc:
        raise EngineUnavailableError(
            f"TensorRT is not installed ({exc}); pip install -e '.[trt-cu12]' (JetPack ships "
            "it on Jetson), or use --engine ort"
        ) from exc
    if not hasattr(trt_mod, "Builder"):  # tensorrt-stubs alone: an empty namespace package
        raise EngineUnavailableError(
            "the importable 'tensorrt' has no TensorRT runtime (only type stubs such as "
            "tensorrt-stubs are installed); pip install -e '.[trt-cu12]', or use --engine ort"
        )
    return trt_mod


def trt_version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of a TensorRT version string such as "10.13.0.35"."""
    parts = (version.split(".") + ["0"])[:2]
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        return (0, 0)


_TRT_LOGGER: list[Any] = []


def trt_logger(trt_mod: Any) -> Any:
    """One TensorRT ILogger per process, forwarding to Python logging (no prints)."""
    if not _TRT_LOGGER:
        severity = trt_mod.ILogger.Severity
        levels = {
            severity.INTERNAL_ERROR: logging.CRITICAL,
            severity.ERROR: logging.ERROR,
            severity.WARNING: logging.WARNING,
            severity.INFO: logging.DEBUG,  # TensorRT's INFO is chatty
            severity.VERBOSE: logging.DEBUG - 5,
        }
        trt_log = logging.getLogger("edgesr.runtime.tensorrt")

        class _Logger(trt_mod.ILogger):
            def __init__(self) -> None:
                trt_mod.ILogger.__init__(self)

            def log(self, sev: Any, msg: str) -> None:
                trt_log.log(levels.get(sev, logging.INFO), "%s", msg)

        _TRT_LOGGER.append(_Logger())
    return _TRT_LOGGER[0]


def spec_of(model: bytes, *, source: str, spec: ModelSpec | None) -> ModelSpec:
    return spec if spec is not None else ModelSpec.from_metadata(read_onnx_metadata(model), source=source)


def resolve_profile(options: TrtOptions, spec: ModelSpec) -> OptimizationProfile:
    if options.profile is not None:
        return options.profile
    return profile_from_tiling(
        tile_px=spec.tile_px,
        overlap_px=spec.overlap_px,
        min_size_px=max(1, spec.min_size_px),
        size_multiple=max(1, spec.size_multiple),
    )


def choose_plugin_impl(options: TrtOptions, model: bytes, trt_version: str) -> str:
    """"aot"/"jit" when the DSConv plugin is registered and the parser will pick it, else ""
    (the local function), logged in one line when the plugin was asked for but is not used."""
    if not options.plugin or count_plugin_nodes(model) == 0:
        return ""
    version = trt_version_tuple(trt_version)
    if version < PLUGIN_PRECEDENCE_FROM:
        logger.info(
            "DSConv runs through its ONNX local function: TensorRT %s's parser imports local "
            "functions before plugins (plugins take precedence from 10.7)",
            trt_version,
        )
        return ""
    from edgesr.runtime.engines.trt import plugin

    try:
        impls = plugin.register_dsconv_plugin()
    except EngineUnavailableError as exc:
        logger.warning("DSConv runs through its ONNX local function: %s", exc)
        return ""
    if version < AOT_PLUGINS_FROM:  # no aot_impl and no creation request: JIT only
        impls = tuple(i for i in impls if i == "jit")
    if options.plugin_impl in impls:
        return options.plugin_impl
    logger.warning(
        "the %s DSConv plugin needs TensorRT >= 10.9 (this is %s); using the %s plugin",
        options.plugin_impl, trt_version, impls[0],
    )  # fmt: skip
    return impls[0]


def engine_key(
    *, onnx_sha256: str, spec: ModelSpec, options: TrtOptions, trt_version: str,
    device: DeviceInfo, plugin_impl: str, source: str = "the model",
) -> EngineKey:  # fmt: skip
    """The cache key of the engine these inputs build (see ``cache.py``)."""
    plugin_version = ""
    if plugin_impl:
        from edgesr.runtime.engines.trt.plugin import plugin_version_tag

        plugin_version = plugin_version_tag(plugin_impl)
    major, minor = device.compute_capability
    return EngineKey(
        onnx_sha256=onnx_sha256,
        trt_version=trt_version,
        gpu_name=device.name,
        compute_capability=f"{major}.{minor}",
        precision=check_precision(spec, options.precision, source=source),
        profile=resolve_profile(options, spec),
        plugin_version=plugin_version,
        edgesr_version=EDGESR_VERSION,
        builder=options.builder_fields(),
    )


def plugin_build_settings(trt_version: str, plugin_impl: str) -> tuple[bool | None, str]:
    """(the ``aot`` tag for DSConv nodes, the PREFER_*_PYTHON_PLUGINS flag name) for a build
    with ``plugin_impl``. Before 10.9 neither exists (every Python plugin is JIT): (None, "")."""
    if trt_version_tuple(trt_version) < AOT_PLUGINS_FROM:
        return None, ""
    aot = plugin_impl == "aot"
    return aot, "PREFER_AOT_PYTHON_PLUGINS" if aot else "PREFER_JIT_PYTHON_PLUGINS"


# --------------------------------------------------------------------------- the steps


def create_network(trt: Any, builder: Any, model: bytes, *, source: Path, plugin_impl: str) -> Any:
    """A strongly typed network parsed from ``model`` (DSConv nodes tagged for the plugin)."""
    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed is not None:
        flags |= 1 << int(strongly_typed)
    if plugin_impl:
        aot, prefer = plugin_build_settings(str(trt.__version__), plugin_impl)
        model, tagged = mark_plugin_nodes(model, aot=aot)
        logger.debug("tagged %d DynamicSnakeConv node(s) for the %s plugin", tagged, plugin_impl)
        prefer_flag = getattr(trt.NetworkDefinitionCreationFlag, prefer, None) if prefer else None
        if prefer_flag is not None:
            flags |= 1 << int(prefer_flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger(trt))
    # ENABLE_PLUGIN_OVERRIDE (TensorRT 11) is not set: it would let any registered plugin
    # replace standard ops of the same name; our nodes carry plugin_namespace instead.
    if not parser.parse(model, str(source)):
        errors = "; ".join(f"node {e.node()}: {e.desc()}" for e in map(parser.get_error, range(parser.num_errors)))
        raise ModelFileError(
            f"TensorRT cannot parse {source}: {errors or 'no details'}; check the model with the "
            "ONNX checker, or try --engine ort"
        )
    if network.num_inputs != 1 or network.num_outputs != 1:
        raise ModelFileError(
            f"{source} has {network.num_inputs} inputs and {network.num_outputs} outputs; an "
            f"edgesr SR model has one input ({INPUT_NAME!r}) and one output ({OUTPUT_NAME!r})"
        )
    return network


def create_config(trt: Any, builder: Any, options: TrtOptions) -> Any:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    if options.builder_optimization_level is not None:
        config.builder_optimization_level = options.builder_optimization_level
    return config


def add_profile(trt: Any, builder: Any, config: Any, input_name: str, profile: OptimizationProfile) -> None:
    shapes = (trt.Dims(list(s)) for s in (profile.min, profile.opt, profile.max))
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(input_name, *shapes)
    config.add_optimization_profile(trt_profile)


def attach_timing_cache(config: Any, path: Path) -> None:
    """Load the verified timing cache into ``config`` (a new one when absent or rejected)."""
    cached = load_timing_cache_bytes(path)
    try:
        timing: Any = config.create_timing_cache(cached)
        accepted = timing is not None and config.set_timing_cache(timing, ignore_mismatch=False)
    except Exception as exc:  # TensorRT raises or returns None on a damaged cache
        logger.debug("timing cache %s not usable: %s", path, exc)
        accepted = False
    if not accepted:
        if cached:
            logger.warning("TensorRT rejected the timing cache %s; starting a new one", path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def save_timing_cache(config: Any, path: Path) -> None:
    timing_cache = config.get_timing_cache()
    if timing_cache is not None:
        save_timing_cache_bytes(path, bytes(memoryview(timing_cache.serialize())))


def build_serialized(builder: Any, network: Any, config: Any, *, source: Path, what: str) -> bytes:
    logger.info("building TensorRT engine for %s (%s); first builds on a Jetson take minutes", source.name, what)
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelFileError(
            f"TensorRT could not build an engine from {source} (see the TensorRT log above); "
            "raise TrtOptions(workspace_bytes=...), narrow the profile, or use --engine ort"
        )
    logger.info("built TensorRT engine for %s in %.1f s", source.name, time.perf_counter() - started)
    return bytes(memoryview(serialized))


def build_engine(
    model: bytes, *, source: Path, options: TrtOptions, profile: OptimizationProfile,
    plugin_impl: str, timing_path: Path | None,
) -> bytes:  # fmt: skip
    """Run the steps above; the serialized engine's bytes."""
    trt = import_tensorrt()
    builder = trt.Builder(trt_logger(trt))
    network = create_network(trt, builder, model, source=source, plugin_impl=plugin_impl)
    config = create_config(trt, builder, options)
    add_profile(trt, builder, config, network.get_input(0).name, profile)
    if timing_path is not None:
        attach_timing_cache(config, timing_path)
    plugin_note = f", DSConv plugin {plugin_impl}" if plugin_impl else ""
    what = f"TensorRT {trt.__version__}, profile {profile.describe()}{plugin_note}"
    data = build_serialized(builder, network, config, source=source, what=what)
    if timing_path is not None:
        save_timing_cache(config, timing_path)
    return data
