"""The ``edgesr::DynamicSnakeConv`` TensorRT plugin (tensorrt.plugin + Triton; no torch).

Registers the DSConv custom op with TensorRT's quickly deployable plugin API
(``tensorrt.plugin``, TensorRT >= 10.7), so that the ONNX parser imports each
``edgesr::DynamicSnakeConv`` node as this plugin instead of expanding its local function:

- ``@trtp.register``: inputs x [N,C,H,W], offset [N,2K,H,W], weight [O,C,K,1] or [O,C,1,K],
  bias [O]; attributes kernel_size (int), morph (int), extend_scope (float), in the order of
  the ONNX node (``export/dsconv_onnx.py``); output [N, O, H, W] of x's type.
- ``@trtp.autotune``: every fp32/fp16 combination of the four inputs with the output typed
  like x (a strongly typed network fixes the types; the plugin accepts whichever it gets).
- ``@trtp.aot_impl`` (TensorRT >= 10.8): compiles the Triton kernel of
  ``runtime/dsconv_triton.py`` to PTX for this GPU and returns its name, the PTX, the launch
  parameters (grid over N·H·W pixel blocks x output-channel blocks, as symbolic shape
  expressions) and the int32 scalar arguments (sizes and strides, also symbolic). The
  kernel is baked into the engine: the engine runs without Python (trtexec can run it).
- ``@trtp.impl`` (JIT fallback): launches the same compiled kernel on TensorRT's stream
  through the CUDA driver (cuda-python), from Python, at every inference.

Which one an engine uses is chosen at build time (``TrtOptions(plugin_impl=...)`` in
``runtime/trt_engine.py``: the network flag PREFER_AOT/JIT_PYTHON_PLUGINS and the ONNX node's
``aot`` attribute).

Only import this module where TensorRT is installed; :func:`register_dsconv_plugin` raises
EngineUnavailableError otherwise. It is idempotent.
"""

# No `from __future__ import annotations` here: tensorrt.plugin reads the annotations of the
# decorated functions at registration time and needs real objects, not strings.

import functools
import importlib
import itertools
import logging
import threading
from collections.abc import Sequence
from typing import Any

from edgesr.errors import EngineUnavailableError
from edgesr.runtime import dsconv_triton
from edgesr.spec import DSCONV_OP_TYPE, DSCONV_PLUGIN_NAMESPACE, DSCONV_PLUGIN_VERSION

__all__ = [
    "PLUGIN_ID",
    "plugin_version_tag",
    "plugin_capabilities",
    "register_dsconv_plugin",
]

logger = logging.getLogger(__name__)

#: "namespace::name" as tensorrt.plugin spells a plugin id.
PLUGIN_ID = f"{DSCONV_PLUGIN_NAMESPACE}::{DSCONV_OP_TYPE}"

_LOCK = threading.Lock()
_REGISTERED: set[str] = set()


def plugin_version_tag(impl: str) -> str:
    """What the engine cache key records about the plugin an engine was built with."""
    return f"{PLUGIN_ID}/v{DSCONV_PLUGIN_VERSION}/{impl}/triton-{_triton_version()}"


def _triton_version() -> str:
    if not dsconv_triton.HAVE_TRITON:
        return "none"
    return str(getattr(dsconv_triton.triton, "__version__", "unknown"))


def _import_trtp() -> Any:
    try:
        return importlib.import_module("tensorrt.plugin")
    except ImportError as exc:
        raise EngineUnavailableError(
            f"this TensorRT has no tensorrt.plugin module ({exc}); the DSConv plugin needs "
            "TensorRT >= 10.7 — upgrade TensorRT, or pass TrtOptions(plugin=False) to run "
            "DynamicSnakeConv through its ONNX local function"
        ) from exc


def plugin_capabilities() -> tuple[str, ...]:
    """The plugin implementations this TensorRT + triton can provide ("aot", "jit")."""
    trtp = _import_trtp()
    caps: list[str] = []
    if dsconv_triton.HAVE_TRITON and hasattr(trtp, "aot_impl"):
        caps.append("aot")
    if dsconv_triton.HAVE_TRITON and hasattr(trtp, "impl"):
        caps.append("jit")
    return tuple(caps)


# --------------------------------------------------------------------------- helpers


def _dtype_name(trt_dtype: Any) -> str:
    import tensorrt as trt

    if trt_dtype == trt.DataType.FLOAT:
        return "fp32"
    if trt_dtype == trt.DataType.HALF:
        return "fp16"
    raise EngineUnavailableError(
        f"DynamicSnakeConv plugin got a {trt_dtype} tensor; only fp32 and fp16 are supported "
        "— keep the DSConv inputs float32/float16 in the ONNX graph"
    )


def _constant(expr: Any) -> int | None:
    """The value of a tensorrt.plugin ShapeExpr when it is a build-time constant."""
    try:
        if bool(getattr(expr, "is_constant", False)):
            return int(expr.constant_value())
    except (AttributeError, TypeError, ValueError):
        return None
    return None


def _driver_ptx_isa() -> int | None:
    """Highest PTX ISA the installed driver can JIT (None when unknown)."""
    from edgesr.runtime.cuda_memory import cuda_api

    try:
        driver = cuda_api().device_info().driver_version
    except EngineUnavailableError:
        return None
    return dsconv_ptx_isa(driver)


def dsconv_ptx_isa(driver_version: int) -> int:
    """PTX ISA (e.g. 82 for 8.2) a CUDA driver of ``driver_version`` (e.g. 12020) accepts.

    Triton emits the newest ISA its bundled ptxas knows; an older driver (JetPack 6 ships
    CUDA 12.2) rejects that PTX when TensorRT loads the engine, so the AOT kernel is
    compiled for the driver's ISA instead (same rule as triton's own table).
    """
    major, minor = driver_version // 1000, (driver_version % 1000) // 10
    if major >= 13:
        return 90 + (major - 13) * 10 + minor
    if major == 12:
        return 80 + minor if minor < 6 else 80 + minor - 1
    if major == 11:
        return 70 + minor
    return 63 + minor


@functools.lru_cache(maxsize=64)
def _compiled(
    kernel_size: int,
    morph: int,
    extend_scope: float,
    dtypes: tuple[tuple[str, str], ...],
    out_channels: int,
    compute_capability: tuple[int, int],
) -> dsconv_triton.CompiledDSConv:
    launch = dsconv_triton.choose_launch(out_channels=out_channels)
    isa = _driver_ptx_isa()
    if isa is not None:
        try:
            return dsconv_triton.compile_dsconv(
                kernel_size=kernel_size,
                morph=morph,
                extend_scope=extend_scope,
                dtypes=dict(dtypes),
                launch=launch,
                compute_capability=compute_capability,
                ptx_version=isa,
            )
        except Exception as exc:  # a driver newer than triton's ptxas: use triton's own ISA
            logger.debug("compiling DSConv for PTX ISA %d failed (%s); using triton's default", isa, exc)
    return dsconv_triton.compile_dsconv(
        kernel_size=kernel_size,
        morph=morph,
        extend_scope=extend_scope,
        dtypes=dict(dtypes),
        launch=launch,
        compute_capability=compute_capability,
    )


def _device_cc() -> tuple[int, int]:
    from edgesr.runtime.cuda_memory import cuda_api

    return cuda_api().device_info().compute_capability


def _io_dtypes(x: Any, offset: Any, weight: Any, bias: Any, out: Any) -> tuple[tuple[str, str], ...]:
    return (
        ("x", _dtype_name(x.dtype)),
        ("offset", _dtype_name(offset.dtype)),
        ("weight", _dtype_name(weight.dtype)),
        ("bias", _dtype_name(bias.dtype)),
        ("out", _dtype_name(out.dtype)),
    )


def autotune_type_combinations() -> list[str]:
    """The type strings offered to TensorRT: any fp32/fp16 mix of the four inputs, output
    typed like x (x, offset, weight, bias, output)."""
    combos = []
    for tx, to, tw, tb in itertools.product(("FP32", "FP16"), repeat=4):
        combos.append(f"{tx}, {to}, {tw}, {tb}, {tx}")
    return combos


# --------------------------------------------------------------------------- JIT launch


class _DriverLauncher:
    """Loads the compiled cubin once per kernel variant and launches it on a raw stream
    through the CUDA driver API (cuda-python); no torch, no triton runtime."""

    def __init__(self) -> None:
        try:
            self._drv: Any = importlib.import_module("cuda.bindings.driver")
        except ImportError:
            try:
                self._drv = importlib.import_module("cuda.cuda")  # cuda-python < 12.6
            except ImportError as exc:
                raise EngineUnavailableError(
                    "the JIT DSConv plugin launches its kernel through cuda-python, which is "
                    "not installed; pip install cuda-python, or build with the AOT plugin "
                    "(TrtOptions(plugin_impl='aot'), the default)"
                ) from exc
        self._functions: dict[tuple[str, int], Any] = {}
        self._images: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def _check(self, result: Any, what: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise EngineUnavailableError(f"CUDA driver call {what} failed with error {int(err)}")
        return values[0] if len(values) == 1 else values

    def function(self, compiled: dsconv_triton.CompiledDSConv) -> Any:
        key = (compiled.name, id(compiled))
        with self._lock:
            if key not in self._functions:
                import numpy as np

                # cubin when ptxas ran, else NUL-terminated PTX text for the driver's JIT
                image = np.frombuffer(compiled.cubin or compiled.ptx.encode() + b"\0", dtype=np.uint8).copy()
                module = self._check(self._drv.cuModuleLoadData(image.ctypes.data), "cuModuleLoadData")
                self._images[key] = image
                func = self._check(
                    self._drv.cuModuleGetFunction(module, compiled.name.encode()),
                    "cuModuleGetFunction",
                )
                self._functions[key] = func
            return self._functions[key]

    def launch(
        self,
        compiled: dsconv_triton.CompiledDSConv,
        *,
        grid: tuple[int, int, int],
        pointers_in: Sequence[int],
        scalars: Sequence[int],
        pointer_out: int,
        stream: int,
    ) -> None:
        import ctypes

        func = self.function(compiled)
        values: list[int] = [*pointers_in, *scalars, pointer_out]
        types: list[Any] = (
            [ctypes.c_void_p] * len(pointers_in)
            + [ctypes.c_int32] * len(scalars)
            + [ctypes.c_void_p]
        )
        # the cubin keeps triton's hidden trailing scratch pointers (unused: no scratch)
        values += [0] * compiled.hidden_params
        types += [ctypes.c_void_p] * compiled.hidden_params
        self._check(
            self._drv.cuLaunchKernel(
                func,
                grid[0], grid[1], grid[2],
                compiled.num_warps * 32, 1, 1,
                compiled.shared_bytes,
                stream,
                (tuple(values), tuple(types)),
                0,
            ),
            "cuLaunchKernel",
        )  # fmt: skip


@functools.lru_cache(maxsize=1)
def _launcher() -> _DriverLauncher:
    return _DriverLauncher()


# --------------------------------------------------------------------------- registration


def register_dsconv_plugin() -> tuple[str, ...]:
    """Register ``edgesr::DynamicSnakeConv`` with tensorrt.plugin (once per process).

    Returns the implementations registered ("aot" and/or "jit"). Raises
    EngineUnavailableError when TensorRT has no tensorrt.plugin or triton is missing.
    """
    with _LOCK:
        if _REGISTERED:
            return tuple(sorted(_REGISTERED))
        if not dsconv_triton.HAVE_TRITON:
            raise EngineUnavailableError(
                "the DynamicSnakeConv TensorRT plugin compiles a Triton kernel, and triton "
                f"cannot be imported ({dsconv_triton.TRITON_IMPORT_ERROR}); pip install triton, "
                "or pass TrtOptions(plugin=False) to use the ONNX local function"
            )
        trtp = _import_trtp()
        if DSCONV_PLUGIN_VERSION != "1":  # tensorrt.plugin registers every plugin as version "1"
            raise EngineUnavailableError(
                f"tensorrt.plugin only registers plugin version '1', edgesr.spec says "
                f"{DSCONV_PLUGIN_VERSION!r}; keep DSCONV_PLUGIN_VERSION at '1'"
            )
        _define(trtp)
        return tuple(sorted(_REGISTERED))


def _define(trtp: Any) -> None:  # noqa: C901 - one function per decorator, kept together
    import tensorrt as trt

    # Only register() needs annotations (tensorrt.plugin derives the schema from them); the
    # others are checked against it when annotated, so they are left bare. The attribute
    # parameters of aot_impl/impl must follow register()'s order: TensorRT passes them
    # positionally.
    @trtp.register(PLUGIN_ID)
    def dsconv_desc(
        x: trtp.TensorDesc,
        offset: trtp.TensorDesc,
        weight: trtp.TensorDesc,
        bias: trtp.TensorDesc,
        kernel_size: int,
        morph: int,
        extend_scope: float,
    ) -> trtp.TensorDesc:
        out = x.like()
        out.shape_expr[1] = weight.shape_expr[0]  # [N, O, H, W]
        return out

    @trtp.autotune(PLUGIN_ID)
    def dsconv_autotune(x, offset, weight, bias, outputs):
        return [trtp.AutoTuneCombination(c, "LINEAR") for c in autotune_type_combinations()]

    if hasattr(trtp, "aot_impl"):  # TensorRT >= 10.8

        @trtp.aot_impl(PLUGIN_ID)
        def dsconv_aot(
            x, offset, weight, bias, kernel_size, morph, extend_scope, outputs, tactic
        ):
            n, c, h, w = (x.shape_expr[i] for i in range(4))
            o = weight.shape_expr[0]
            o_const = _constant(o)
            compiled = _compiled(
                int(kernel_size),
                int(morph),
                float(extend_scope),
                _io_dtypes(x, offset, weight, bias, outputs[0]),
                o_const if o_const is not None else 16,
                _device_cc(),
            )
            launch = compiled.launch
            npix = n * h * w
            hw = h * w
            params = trtp.KernelLaunchParams()
            params.grid_x = trtp.cdiv(npix, launch.block_p)
            params.grid_y = trtp.cdiv(o, launch.block_o)
            params.block_x = compiled.num_warps * 32
            params.shared_mem = compiled.shared_bytes
            k2 = 2 * int(kernel_size)
            # dsconv_triton.SCALAR_ARG_NAMES order; contiguous (LINEAR) strides
            scalars = [
                c, h, w, o, npix,
                c * hw, hw, w, 1,  # x
                hw * k2, hw, w, 1,  # offset
                o * hw, hw, w, 1,  # output
            ]  # fmt: skip
            extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(e) for e in scalars])
            return compiled.name.encode(), compiled.ptx.encode(), params, extra

        _REGISTERED.add("aot")

    @trtp.impl(PLUGIN_ID)
    def dsconv_jit(
        x, offset, weight, bias, kernel_size, morph, extend_scope, outputs, stream
    ):
        out = outputs[0]
        n_batch, channels, height, width = (int(v) for v in x.shape)
        o_channels = int(weight.shape[0])
        compiled = _compiled(
            int(kernel_size),
            int(morph),
            float(extend_scope),
            _io_dtypes(x, offset, weight, bias, out),
            o_channels,
            _device_cc(),
        )
        scalars = dsconv_triton.scalar_args(
            x_shape=(n_batch, channels, height, width),
            out_channels=o_channels,
            kernel_size=int(kernel_size),
        )
        grid = compiled.launch.grid(npix=n_batch * height * width, out_channels=o_channels)
        _launcher().launch(
            compiled,
            grid=grid,
            pointers_in=[int(x.data_ptr), int(offset.data_ptr), int(weight.data_ptr), int(bias.data_ptr)],
            scalars=scalars,
            pointer_out=int(out.data_ptr),
            stream=int(stream),
        )

    _REGISTERED.add("jit")
    logger.debug(
        "registered TensorRT plugin %s (%s) with TensorRT %s",
        PLUGIN_ID,
        ", ".join(sorted(_REGISTERED)),
        trt.__version__,
    )
