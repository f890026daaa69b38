"""The ``trt`` engine: ONNX -> TensorRT engine (cached), run through the TensorRT Python API.

No torch here (DESIGN sections 1 and 7). TensorRT, CUDA (``runtime/cuda_memory.py``) and the
DSConv plugin (``runtime/trt_plugin.py``, triton) are imported lazily, so this module imports
on any machine; :func:`available` says whether the engine can run here and why not.

Building (:func:`engine_from_onnx`):

- **Strongly typed network** (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``). TensorRT 11
  removed the weak-typing builder flags (``BuilderFlag.FP16`` and friends), so precision
  comes from the ONNX graph itself: an FP16 engine is built from an FP16 ONNX (float32 I/O,
  float32 islands where the export kept them). TensorRT 10 builds the same way.
- **DSConv plugin**: with ``TrtOptions(plugin=True)`` (default) the ``edgesr::DynamicSnakeConv``
  plugin is registered before parsing and each DSConv node is tagged (in memory) with
  ``plugin_namespace="edgesr"`` and ``aot=1|0``, so every TensorRT from 10.7 on imports it as
  the plugin rather than expanding the node's ONNX local function. (The parser's "is this
  node a registered plugin?" check reads the namespace from that attribute only; and newer
  parsers prefer a local function over a plugin unless the node carries it.) The runtime may
  not import ``onnx``, so the tag is written on the protobuf bytes (:func:`mark_plugin_nodes`).
  Without tensorrt.plugin (TensorRT < 10.7) or triton, or with ``plugin=False``, the parser
  expands the local function instead (logged).
- **Optimization profile** over N, H, W from the model's tiling advice
  (:func:`~edgesr.runtime.trt_cache.profile_from_tiling`), or ``TrtOptions(profile=...)``.
- **Timing cache** on disk, one per TensorRT version and GPU, loaded before and saved after
  each build. The build logs when it starts and how long it took (first builds on a Jetson
  take minutes).

Running (:class:`TrtEngine`): the engine comes from edgesr's own cache (checked by hash,
``runtime/trt_cache.py``) or is built and cached; I/O by tensor name with
``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``; inputs smaller than the
profile minimum are edge-padded and the output cropped; device memory is released by
``close()`` (also on ``with`` exit).

TensorRT 10 vs 11 (handled where they differ, each marked "TRT 10/11" below):
``STRONGLY_TYPED`` is required on 10 and the only mode on 11 (looked up with getattr);
``EXPLICIT_BATCH`` and ``BuilderFlag.FP16/BF16/INT8`` are never used (no-op on 10, gone
on 11); ``PREFER_AOT/JIT_PYTHON_PLUGINS`` (10.8+) are looked up with getattr. The
name-based tensor API used here (set_input_shape, set_tensor_address, execute_async_v3,
get_tensor_profile_shape) is the same in both.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesr import __version__ as EDGESR_VERSION
from edgesr.errors import ConfigError, EngineUnavailableError, ModelFileError
from edgesr.runtime.engine import EngineInfo
from edgesr.runtime.engines import check_lr, check_precision, check_sr, crop_sr, pad_for_model
from edgesr.runtime.trt_cache import (
    EngineKey,
    OptimizationProfile,
    cache_root,
    load_cached_engine_bytes,
    load_timing_cache_bytes,
    profile_from_tiling,
    save_engine,
    save_timing_cache_bytes,
    timing_cache_path,
)
from edgesr.spec import (
    DSCONV_DOMAIN,
    DSCONV_OP_TYPE,
    DSCONV_PLUGIN_NAMESPACE,
    INPUT_NAME,
    OUTPUT_NAME,
    PRECISIONS,
    ModelSpec,
)

if TYPE_CHECKING:
    from edgesr.runtime.cuda_memory import CudaApi, DeviceBuffer, DeviceInfo, Stream

__all__ = [
    "PLUGIN_IMPLS",
    "TrtEngine",
    "TrtOptions",
    "available",
    "engine_from_onnx",
    "engine_key",
    "mark_plugin_nodes",
    "read_onnx_metadata",
    "count_plugin_nodes",
]

logger = logging.getLogger(__name__)

#: DSConv plugin implementations an engine can bake in: "aot" (PTX in the engine, no Python
#: at run time) or "jit" (a Python callback at every inference; ``runtime/trt_plugin.py``).
PLUGIN_IMPLS: tuple[str, ...] = ("aot", "jit")
_BUILD_HINT = "first builds on a Jetson take minutes"


# --------------------------------------------------------------------------- availability


def _import_tensorrt() -> Any:
    """The real TensorRT module, or EngineUnavailableError saying what is wrong."""
    try:
        trt_mod = importlib.import_module("tensorrt")
    except ImportError as exc:
        raise EngineUnavailableError(
            f"TensorRT is not installed ({exc}); pip install tensorrt (JetPack ships it on "
            "Jetson), or use --engine ort"
        ) from exc
    if not hasattr(trt_mod, "Builder"):
        # `tensorrt-stubs` alone installs a `tensorrt/` folder of .pyi files: Python imports
        # it as an empty namespace package.
        raise EngineUnavailableError(
            "the importable 'tensorrt' has no TensorRT runtime (only type stubs such as "
            "tensorrt-stubs are installed); pip install tensorrt, or use --engine ort"
        )
    return trt_mod


def available() -> tuple[bool, str]:
    """(True, "TensorRT x on GPU") when TensorRT and a CUDA device are usable, else
    (False, the reason and what to do). Never raises."""
    try:
        trt_mod = _import_tensorrt()
    except EngineUnavailableError as exc:
        return False, str(exc)
    except Exception as exc:  # a broken install: missing libnvinfer, wrong CUDA
        return False, f"TensorRT cannot be imported ({type(exc).__name__}: {exc}); reinstall it"
    try:
        from edgesr.runtime.cuda_memory import cuda_api

        api = cuda_api()
        count = api.device_count()
        if count < 1:
            return False, "no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
        info = api.device_info(0)
    except EngineUnavailableError as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"CUDA is not usable ({type(exc).__name__}: {exc}); check the driver"
    return True, f"TensorRT {trt_mod.__version__} on {info.name} ({info.sm})"


# --------------------------------------------------------------------------- options


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


# --------------------------------------------------------------------------- ONNX protobuf
#
# The runtime may not import the `onnx` package (DESIGN section 1), and TensorRT takes the
# model as bytes; the two things needed from the file — its metadata_props and a tag on the
# DynamicSnakeConv nodes — are read and written here directly on protobuf's wire format.
# ModelProto: graph = 7, metadata_props = 14 (key = 1, value = 2). GraphProto: node = 1.
# NodeProto: op_type = 4, attribute = 5, domain = 7. AttributeProto: name = 1, i = 3,
# s = 4, type = 20 (INT = 2, STRING = 3).

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelFileError("truncated protobuf varint; the ONNX file is damaged")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ModelFileError("malformed protobuf varint; the ONNX file is damaged")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, start of the field, start of its value, end), in order.

    For length-delimited fields the value span is the payload; for varints it is the
    encoded varint."""
    pos = 0
    end = len(buf)
    while pos < end:
        start = pos
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value_start = pos
            _, pos = _read_varint(buf, pos)
        elif wire == _I64:
            value_start, pos = pos, pos + 8
        elif wire == _I32:
            value_start, pos = pos, pos + 4
        elif wire == _LEN:
            length, value_start = _read_varint(buf, pos)
            pos = value_start + length
        else:
            raise ModelFileError(f"unsupported protobuf wire type {wire}; not an ONNX model")
        if pos > end:
            raise ModelFileError("truncated protobuf field; the ONNX file is damaged")
        yield number, wire, start, value_start, pos


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint((number << 3) | _LEN) + _encode_varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _encode_varint((number << 3) | _VARINT) + _encode_varint(value)


def _string_attribute(name: str, value: str) -> bytes:
    return _len_field(1, name.encode()) + _len_field(4, value.encode()) + _varint_field(20, 3)


def _int_attribute(name: str, value: int) -> bytes:
    return _len_field(1, name.encode()) + _varint_field(3, value) + _varint_field(20, 2)


def read_onnx_metadata(model: bytes) -> dict[str, str]:
    """The ``metadata_props`` of a serialized ONNX ModelProto (no onnx package needed)."""
    buf = memoryview(model)
    meta: dict[str, str] = {}
    for number, wire, _, vs, ve in _fields(buf):
        if number == 14 and wire == _LEN:
            key = value = ""
            for sub, sub_wire, _, svs, sve in _fields(buf[vs:ve]):
                if sub_wire != _LEN:
                    continue
                text = bytes(buf[vs + svs : vs + sve]).decode("utf-8", errors="replace")
                if sub == 1:
                    key = text
                elif sub == 2:
                    value = text
            meta[key] = value
    return meta


def _node_matches(node: memoryview, *, domain: str, op_type: str) -> tuple[bool, set[str]]:
    node_op = node_domain = ""
    attrs: set[str] = set()
    for number, wire, _, vs, ve in _fields(node):
        if wire != _LEN:
            continue
        if number == 4:
            node_op = bytes(node[vs:ve]).decode("utf-8", errors="replace")
        elif number == 7:
            node_domain = bytes(node[vs:ve]).decode("utf-8", errors="replace")
        elif number == 5:
            for sub, sub_wire, _, svs, sve in _fields(node[vs:ve]):
                if sub == 1 and sub_wire == _LEN:
                    attrs.add(bytes(node[vs + svs : vs + sve]).decode("utf-8", errors="replace"))
    return node_op == op_type and node_domain == domain, attrs


def count_plugin_nodes(model: bytes) -> int:
    """How many ``edgesr::DynamicSnakeConv`` nodes the main graph has."""
    buf = memoryview(model)
    count = 0
    for number, wire, _, vs, ve in _fields(buf):
        if number == 7 and wire == _LEN:
            graph = buf[vs:ve]
            for g_num, g_wire, _, gvs, gve in _fields(graph):
                if g_num == 1 and g_wire == _LEN:
                    match, _ = _node_matches(graph[gvs:gve], domain=DSCONV_DOMAIN, op_type=DSCONV_OP_TYPE)
                    count += match
    return count


def mark_plugin_nodes(model: bytes, *, aot: bool | None) -> tuple[bytes, int]:
    """Tag every ``edgesr::DynamicSnakeConv`` node of the main graph for TensorRT's parser.

    Adds ``plugin_namespace="edgesr"`` (and ``aot`` = 1/0 unless ``aot`` is None) to each such
    node that lacks them; everything else is copied byte for byte. Returns the new
    serialized model and the number of nodes tagged.
    """
    buf = memoryview(model)
    out = bytearray()
    tagged = 0
    for number, wire, start, vs, ve in _fields(buf):
        if not (number == 7 and wire == _LEN):
            out += buf[start:ve]
            continue
        graph = buf[vs:ve]
        new_graph = bytearray()
        for g_num, g_wire, g_start, gvs, gve in _fields(graph):
            if not (g_num == 1 and g_wire == _LEN):
                new_graph += graph[g_start:gve]
                continue
            node = graph[gvs:gve]
            match, attrs = _node_matches(node, domain=DSCONV_DOMAIN, op_type=DSCONV_OP_TYPE)
            if not match:
                new_graph += graph[g_start:gve]
                continue
            extra = b""
            if "plugin_namespace" not in attrs:
                extra += _len_field(5, _string_attribute("plugin_namespace", DSCONV_PLUGIN_NAMESPACE))
            if aot is not None and "aot" not in attrs:
                extra += _len_field(5, _int_attribute("aot", int(aot)))
            tagged += bool(extra)
            new_graph += _len_field(1, bytes(node) + extra)
        out += _len_field(7, bytes(new_graph))
    return bytes(out), tagged


# --------------------------------------------------------------------------- building


def _make_logger(trt_mod: Any) -> Any:
    """A TensorRT ILogger that forwards to Python logging (library code never prints)."""
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

    return _Logger()


_LOGGER: Any = None


def _trt_logger(trt_mod: Any) -> Any:
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = _make_logger(trt_mod)
    return _LOGGER


def _read_onnx(onnx_path: str | os.PathLike[str]) -> bytes:
    path = Path(onnx_path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"ONNX model {path} does not exist; export one with edgesr-export") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read ONNX model {path}: {exc}") from exc


def _spec_of(model: bytes, *, source: str, spec: ModelSpec | None) -> ModelSpec:
    if spec is not None:
        return spec
    return ModelSpec.from_metadata(read_onnx_metadata(model), source=source)


def _resolve_profile(options: TrtOptions, spec: ModelSpec) -> OptimizationProfile:
    if options.profile is not None:
        return options.profile
    return profile_from_tiling(
        tile_px=spec.tile_px,
        overlap_px=spec.overlap_px,
        min_size_px=max(1, spec.min_size_px),
        size_multiple=max(1, spec.size_multiple),
    )


def _plugin_impl(options: TrtOptions, model: bytes) -> str:
    """"" when the build runs without the plugin, else "aot" or "jit"."""
    if not options.plugin or count_plugin_nodes(model) == 0:
        return ""
    from edgesr.runtime import trt_plugin

    try:
        caps = trt_plugin.plugin_capabilities()
    except EngineUnavailableError as exc:
        logger.warning("DSConv runs through its ONNX local function: %s", exc)
        return ""
    if options.plugin_impl in caps:
        return options.plugin_impl
    if caps:
        logger.warning(
            "the %s DSConv plugin is not available with this TensorRT; using the %s one",
            options.plugin_impl,
            caps[0],
        )
        return caps[0]
    logger.warning(
        "DSConv runs through its ONNX local function: the plugin needs triton (%s); "
        "pip install triton for the fused kernel",
        trt_plugin.dsconv_triton.TRITON_IMPORT_ERROR or "not importable",
    )
    return ""


def engine_key(
    *,
    onnx_sha256: str,
    spec: ModelSpec,
    options: TrtOptions,
    trt_version: str,
    device: DeviceInfo,
    plugin_impl: str,
    source: str = "the model",
) -> EngineKey:
    """The cache key of the engine these inputs build (see ``runtime/trt_cache.py``)."""
    plugin_version = ""
    if plugin_impl:
        from edgesr.runtime import trt_plugin

        plugin_version = trt_plugin.plugin_version_tag(plugin_impl)
    major, minor = device.compute_capability
    return EngineKey(
        onnx_sha256=onnx_sha256,
        trt_version=trt_version,
        gpu_name=device.name,
        compute_capability=f"{major}.{minor}",
        precision=check_precision(spec, options.precision, source=source),
        profile=_resolve_profile(options, spec),
        plugin_version=plugin_version,
        edgesr_version=EDGESR_VERSION,
        builder=options.builder_fields(),
    )


def _parser_errors(parser: Any) -> str:
    messages = []
    for index in range(parser.num_errors):
        err = parser.get_error(index)
        messages.append(f"node {err.node()}: {err.desc()}")
    return "; ".join(messages) or "no details"


def _build(
    model: bytes,
    *,
    source: Path,
    options: TrtOptions,
    profile: OptimizationProfile,
    plugin_impl: str,
    timing_path: Path | None,
) -> bytes:
    import tensorrt as trt

    log = _trt_logger(trt)
    if plugin_impl:
        from edgesr.runtime import trt_plugin

        trt_plugin.register_dsconv_plugin()
        aot_flag = plugin_impl == "aot" if "aot" in trt_plugin.plugin_capabilities() else None
        model, tagged = mark_plugin_nodes(model, aot=aot_flag)
        logger.debug("tagged %d DynamicSnakeConv node(s) for the %s plugin", tagged, plugin_impl)

    builder = trt.Builder(log)
    flags = 0
    # TRT 10/11: STRONGLY_TYPED is required on TensorRT 10 and the only mode on 11 (where
    # the enum member may disappear); EXPLICIT_BATCH is never set (no-op on 10, gone on 11).
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed is not None:
        flags |= 1 << int(strongly_typed)
    if plugin_impl:
        # TRT >= 10.8: which implementation of a Python plugin that has both to bake in
        prefer = "PREFER_AOT_PYTHON_PLUGINS" if plugin_impl == "aot" else "PREFER_JIT_PYTHON_PLUGINS"
        prefer_flag = getattr(trt.NetworkDefinitionCreationFlag, prefer, None)
        if prefer_flag is not None:
            flags |= 1 << int(prefer_flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, log)
    # Not set: OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE (newer parsers). It would also let any
    # registered plugin replace standard ONNX ops of the same name; the plugin_namespace
    # attribute added above already makes the parser pick our plugin for our nodes.
    if not parser.parse(model, str(source)):
        raise ModelFileError(
            f"TensorRT cannot parse {source}: {_parser_errors(parser)}; check the model with "
            "the ONNX checker, or try --engine ort"
        )
    if network.num_inputs != 1 or network.num_outputs != 1:
        raise ModelFileError(
            f"{source} has {network.num_inputs} inputs and {network.num_outputs} outputs; an "
            f"edgesr SR model has one input ({INPUT_NAME!r}) and one output ({OUTPUT_NAME!r})"
        )
    input_name = network.get_input(0).name

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    if options.builder_optimization_level is not None:
        config.builder_optimization_level = options.builder_optimization_level
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(
        input_name, trt.Dims(list(profile.min)), trt.Dims(list(profile.opt)), trt.Dims(list(profile.max))
    )
    config.add_optimization_profile(trt_profile)

    if timing_path is not None:
        cached = load_timing_cache_bytes(timing_path)
        try:
            timing: Any = config.create_timing_cache(cached)
            accepted = timing is not None and config.set_timing_cache(timing, ignore_mismatch=False)
        except Exception as exc:  # a damaged file: TensorRT raises or returns None
            logger.debug("timing cache %s not usable: %s", timing_path, exc)
            accepted = False
        if not accepted:
            if cached:
                logger.warning("TensorRT rejected the timing cache %s; starting a new one", timing_path)
            config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)

    logger.info(
        "building TensorRT engine for %s (TensorRT %s, profile %s%s); %s",
        source.name,
        trt.__version__,
        profile.describe(),
        f", DSConv plugin {plugin_impl}" if plugin_impl else "",
        _BUILD_HINT,
    )
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    elapsed = time.perf_counter() - started
    if serialized is None:
        raise ModelFileError(
            f"TensorRT could not build an engine from {source} (see the TensorRT log above); "
            "raise TrtOptions(workspace_bytes=...), narrow the profile, or use --engine ort"
        )
    logger.info("built TensorRT engine for %s in %.1f s", source.name, elapsed)

    if timing_path is not None:
        timing_cache = config.get_timing_cache()
        if timing_cache is not None:
            save_timing_cache_bytes(timing_path, bytes(memoryview(timing_cache.serialize())))
    return bytes(memoryview(serialized))


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
    trt_mod = _import_tensorrt()
    source = Path(onnx_path)
    model = _read_onnx(source)
    spec = _spec_of(model, source=str(source), spec=spec)
    check_precision(spec, options.precision, source=str(source))
    profile = _resolve_profile(options, spec)
    plugin_impl = _plugin_impl(options, model)
    timing = None
    if options.timing_cache:
        from edgesr.runtime.cuda_memory import cuda_api

        device = cuda_api().device_info(0)
        major, minor = device.compute_capability
        timing = timing_cache_path(
            root=cache_root(options.cache_dir),
            trt_version=str(trt_mod.__version__),
            gpu_name=device.name,
            compute_capability=f"{major}.{minor}",
        )
    return _build(
        model, source=source, options=options, profile=profile, plugin_impl=plugin_impl, timing_path=timing
    )


# --------------------------------------------------------------------------- running


@dataclass
class _Buffers:
    buffers: dict[str, DeviceBuffer] = field(default_factory=dict)

    def ensure(self, api: CudaApi, name: str, nbytes: int) -> DeviceBuffer:
        current = self.buffers.get(name)
        if current is not None and current.nbytes >= nbytes:
            return current
        if current is not None:
            current.free()
        buf = api.alloc(nbytes)
        self.buffers[name] = buf
        return buf

    def free(self) -> None:
        for buf in self.buffers.values():
            buf.free()
        self.buffers.clear()


class TrtEngine:
    """Engine protocol over a TensorRT engine built (and cached) from an edgesr ONNX file.

    Keyword-only: ``model_path``, ``options`` (:class:`TrtOptions`), ``spec`` (override the
    ONNX metadata), ``device`` (CUDA device index; only 0 is supported by the CUDA helper).
    Raises EngineUnavailableError at once where TensorRT or a CUDA GPU is missing.
    """

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str],
        options: TrtOptions | None = None,
        spec: ModelSpec | None = None,
        device: int = 0,
    ) -> None:
        self._closed = True  # until every resource below exists
        ok, reason = available()
        if not ok:
            raise EngineUnavailableError(f"the trt engine cannot run here: {reason}")
        if device != 0:
            raise ConfigError(f"device={device}: only CUDA device 0 is supported; set CUDA_VISIBLE_DEVICES")
        import tensorrt as trt

        from edgesr.runtime.cuda_memory import cuda_api

        self._trt = trt
        self._options = options or TrtOptions()
        self._source = Path(model_path)
        model = _read_onnx(self._source)
        self.spec = _spec_of(model, source=str(self._source), spec=spec)
        self._api = cuda_api()
        self._device = self._api.device_info(device)
        self._plugin_impl = _plugin_impl(self._options, model)
        self._key = engine_key(
            onnx_sha256=hashlib.sha256(model).hexdigest(),
            spec=self.spec,
            options=self._options,
            trt_version=str(trt.__version__),
            device=self._device,
            plugin_impl=self._plugin_impl,
            source=str(self._source),
        )
        self._root = cache_root(self._options.cache_dir)
        self._logger = _trt_logger(trt)
        if self._plugin_impl:  # the JIT plugin runs Python at inference; AOT needs nothing
            from edgesr.runtime import trt_plugin

            trt_plugin.register_dsconv_plugin()

        engine_bytes = load_cached_engine_bytes(self._key, root=self._root)
        self._cache_hit = engine_bytes is not None
        if engine_bytes is None:
            engine_bytes = self._build_and_cache(model)
        self._runtime: Any = trt.Runtime(self._logger)
        self._engine: Any = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self._engine is None and self._cache_hit:
            logger.warning("TensorRT could not load the cached engine for %s; rebuilding it", self._source)
            self._cache_hit = False
            self._engine = self._runtime.deserialize_cuda_engine(self._build_and_cache(model))
        if self._engine is None:
            raise ModelFileError(
                f"TensorRT could not deserialize the engine built from {self._source}; "
                f"delete {self._root} and retry"
            )
        self._context: Any = self._engine.create_execution_context()
        self._stream: Stream = self._api.stream()
        self._buffers = _Buffers()
        self._closed = False
        self._io_names()

    # ----------------------------------------------------------------- setup helpers

    def _build_and_cache(self, model: bytes) -> bytes:
        timing = None
        if self._options.timing_cache:
            timing = timing_cache_path(
                root=self._root,
                trt_version=self._key.trt_version,
                gpu_name=self._key.gpu_name,
                compute_capability=self._key.compute_capability,
            )
        data = _build(
            model,
            source=self._source,
            options=self._options,
            profile=self._key.profile,
            plugin_impl=self._plugin_impl,
            timing_path=timing,
        )
        save_engine(self._key, data, root=self._root)
        return data

    def _io_names(self) -> None:
        trt = self._trt
        inputs, outputs = [], []
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs.append(name)
            else:
                outputs.append(name)
        if len(inputs) != 1 or len(outputs) != 1:
            self.close()
            raise ModelFileError(
                f"the engine from {self._source} has inputs {inputs} and outputs {outputs}; "
                "expected one of each"
            )
        self._in_name, self._out_name = inputs[0], outputs[0]
        self._in_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._in_name)))
        self._out_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._out_name)))
        lo, _, hi = self._engine.get_tensor_profile_shape(self._in_name, 0)
        self._min_shape = tuple(int(v) for v in lo)
        self._max_shape = tuple(int(v) for v in hi)

    # ----------------------------------------------------------------- protocol

    def run(self, lr: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 in [0, 1] -> (N, 3, s·H, s·W) float32 (not clipped).

        The checks, padding and cropping every engine shares (``runtime/engines.py``), plus
        what the TensorRT profile adds: inputs larger than its max are refused, batches
        larger than its max N run in chunks, and anything below its min is edge-padded.
        """
        if self._closed:
            raise EngineUnavailableError("this TrtEngine is closed; create a new one")
        x = check_lr(lr, self.spec, engine="trt")
        padded, height, width = pad_for_model(x, self.spec)
        max_n, _, max_h, max_w = self._max_shape
        if padded.shape[2] > max_h or padded.shape[3] > max_w:
            raise ConfigError(
                f"lr is {height}x{width} (HxW) but this engine's profile allows at most "
                f"{max_h}x{max_w}; run it through the tiler (runtime/tiling.py) or build with "
                "a larger TrtOptions(profile=...)"
            )
        chunks = [self._run_profile(padded[i : i + max_n]) for i in range(0, padded.shape[0], max_n)]
        sr = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        sr = check_sr(sr, padded.shape, self.spec, source=self._source.name)
        return crop_sr(sr, height, width, self.spec)

    def _run_profile(self, x: np.ndarray) -> np.ndarray:
        """Run at most the profile's max N images, edge-padded up to its min N/H/W; the output
        is cropped back to ``x``'s batch and size (by the output/input size ratio)."""
        n_batch, _, height, width = x.shape
        min_n, _, min_h, min_w = self._min_shape
        pad_n, pad_h, pad_w = max(0, min_n - n_batch), max(0, min_h - height), max(0, min_w - width)
        x = np.asarray(x, dtype=self._in_dtype)
        if pad_n or pad_h or pad_w:
            x = np.pad(x, ((0, pad_n), (0, 0), (0, pad_h), (0, pad_w)), mode="edge")
        x = np.ascontiguousarray(x)
        if not self._context.set_input_shape(self._in_name, x.shape):
            raise ConfigError(
                f"TensorRT rejected input shape {x.shape}; the engine's profile is "
                f"{self._min_shape} .. {self._max_shape}"
            )
        out_shape = tuple(int(v) for v in self._context.get_tensor_shape(self._out_name))
        out = np.empty(out_shape, dtype=self._out_dtype)
        in_buf = self._buffers.ensure(self._api, "in", x.nbytes)
        out_buf = self._buffers.ensure(self._api, "out", out.nbytes)
        started = time.perf_counter()
        self._api.copy_htod_async(in_buf.ptr, x, self._stream)
        self._context.set_tensor_address(self._in_name, in_buf.ptr)
        self._context.set_tensor_address(self._out_name, out_buf.ptr)
        if not self._context.execute_async_v3(self._stream.handle):
            raise EngineUnavailableError(
                f"TensorRT failed to run {self._source.name} on input {x.shape} (see the log)"
            )
        self._api.copy_dtoh_async(out, out_buf.ptr, self._stream)
        self._stream.synchronize()
        latency_ms = (time.perf_counter() - started) * 1e3
        logger.debug("trt run %s -> %s: latency_ms=%.2f", x.shape, out_shape, latency_ms)
        if pad_n or pad_h or pad_w:
            scale = out_shape[2] // x.shape[2]
            out = np.ascontiguousarray(out[:n_batch, :, : height * scale, : width * scale])
        return out

    def info(self) -> EngineInfo:
        details = {
            "tensorrt": self._key.trt_version,
            "profile": self._key.profile.describe(),
            "plugin": self._plugin_impl or "off",
            "engine_cache": "hit" if self._cache_hit else "built",
            "workspace_bytes": str(self._options.workspace_bytes),
        }
        return EngineInfo(
            name="trt",
            device=f"{self._device.name} ({self._device.sm})",
            precision=self._key.precision,
            details=details,
        )

    def close(self) -> None:
        """Release device memory, the stream and the TensorRT objects (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._buffers.free()
        self._stream.close()
        # drop in dependency order: execution context, engine, runtime
        self._context = None
        self._engine = None
        self._runtime = None

    def __enter__(self) -> TrtEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: CUDA may already be gone
            pass
