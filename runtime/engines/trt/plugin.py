"""The ``edgesr::DynamicSnakeConv`` TensorRT plugin (tensorrt.plugin + Triton; no torch).

Registers the DSConv custom op with TensorRT's Python plugin API (``tensorrt.plugin``, the
"quickly deployable plugins"), so that the ONNX parser imports each tagged
``edgesr::DynamicSnakeConv`` node as this plugin instead of expanding its local function:

- ``register``: inputs x [N,C,H,W], offset [N,2K,H,W], weight [O,C,K,1] or [O,C,1,K],
  bias [O]; attributes kernel_size (int), morph (int), extend_scope (float), in the order
  of the ONNX node (``export/dsconv_onnx.py``); output [N, O, H, W] typed like x.
- ``autotune``: every fp32/fp16 mix of the four inputs, output typed like x.
- ``aot_impl`` (TensorRT >= 10.9): the Triton kernel compiled to PTX for the build target,
  its launch grid (N·H·W pixel blocks x output-channel blocks) and int32 sizes/strides as
  symbolic expressions. The kernel is baked into the engine; it runs without Python.
- ``impl`` (TensorRT >= 10.7, JIT): the same kernel launched from Python through the CUDA
  driver at every inference (``plugin_launch.py``).

TensorRT versions: ``tensorrt.plugin`` appeared (experimental) in 10.6, whose ONNX parser
still imports a node's local function before any plugin; parsers from 10.7 on prefer a
registered plugin; ``aot_impl`` arrived in 10.9. Below 10.7 (JetPack 6.x has 10.3) the
local function runs. ``tests/test_trt_parser_choice.py`` emulates the parser's choice.

**All or nothing.** NVIDIA's decorators validate each function when it is applied, after
``register`` has already put the plugin in TensorRT's registry, so a late failure would
leave a half-registered plugin that the parser still picks, and a retry fails with "already
has a definition". :func:`register_dsconv_plugin` therefore applies every decorator first
under a scratch id with ``lazy_register=True`` (NVIDIA's validation, nothing in TensorRT's
registry), and registers the real id only when that passed. Any failure is one
EngineUnavailableError; ``build.py`` then logs one line and uses the local function.
``tests/test_trt_plugin_contract.py`` runs all of this through NVIDIA's own plugin sources.
"""

# No `from __future__ import annotations`: tensorrt.plugin reads the annotations of the
# decorated functions at registration time and needs real objects, not strings.

import importlib
import itertools
import logging
import threading
from typing import Any

from edgesr.errors import EngineUnavailableError
from edgesr.runtime.engines.trt import kernel
from edgesr.runtime.engines.trt.plugin_launch import build_target, compiled_kernel, launcher
from edgesr.spec import DSCONV_OP_TYPE, DSCONV_PLUGIN_NAMESPACE, DSCONV_PLUGIN_VERSION

__all__ = ["PLUGIN_ID", "autotune_type_combinations", "plugin_version_tag", "register_dsconv_plugin"]

logger = logging.getLogger(__name__)

#: "namespace::name" as tensorrt.plugin spells a plugin id.
PLUGIN_ID = f"{DSCONV_PLUGIN_NAMESPACE}::{DSCONV_OP_TYPE}"
#: Namespace of the validation dry runs (lazily registered: never in TensorRT's registry).
DRY_RUN_NAMESPACE = f"{DSCONV_PLUGIN_NAMESPACE}_validate"

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"impls": (), "failure": "", "dry_runs": 0}


def plugin_version_tag(impl: str) -> str:
    """What the engine cache key records about the plugin an engine was built with."""
    version = getattr(kernel.triton, "__version__", "unknown") if kernel.HAVE_TRITON else "none"
    return f"{PLUGIN_ID}/v{DSCONV_PLUGIN_VERSION}/{impl}/triton-{version}"


def autotune_type_combinations() -> list[str]:
    """Type strings offered to TensorRT (x, offset, weight, bias, output): any fp32/fp16 mix
    of the inputs, output typed like x."""
    return [f"{tx}, {to}, {tw}, {tb}, {tx}" for tx, to, tw, tb in itertools.product(("FP32", "FP16"), repeat=4)]


def register_dsconv_plugin() -> tuple[str, ...]:
    """Register ``edgesr::DynamicSnakeConv`` once per process; returns ("aot", "jit") or
    ("jit",). All or nothing: EngineUnavailableError (remembered, so a retry says the same)
    when tensorrt.plugin or triton is missing or NVIDIA's validation rejects a function."""
    with _LOCK:
        if _STATE["impls"]:
            return tuple(_STATE["impls"])
        if _STATE["failure"]:
            raise EngineUnavailableError(_STATE["failure"])
        try:
            _STATE["impls"] = _register_all_or_nothing()
        except EngineUnavailableError as exc:
            _STATE["failure"] = str(exc)
            raise
        return tuple(_STATE["impls"])


def _import_trtp() -> Any:
    try:
        return importlib.import_module("tensorrt.plugin")
    except ImportError as exc:
        raise EngineUnavailableError(
            f"this TensorRT has no tensorrt.plugin module ({exc}); the DSConv plugin needs "
            "TensorRT >= 10.7"
        ) from exc


def _register_all_or_nothing() -> tuple[str, ...]:
    if not kernel.HAVE_TRITON:
        raise EngineUnavailableError(
            f"the DSConv plugin compiles a Triton kernel and triton cannot be imported "
            f"({kernel.TRITON_IMPORT_ERROR}); pip install -e '.[trt-cu12]'"
        )
    if DSCONV_PLUGIN_VERSION != "1":  # tensorrt.plugin registers every plugin as version "1"
        raise EngineUnavailableError(
            f"tensorrt.plugin registers only plugin version '1', edgesr.spec says {DSCONV_PLUGIN_VERSION!r}"
        )
    trtp = _import_trtp()
    _STATE["dry_runs"] += 1
    scratch_id = f"{DRY_RUN_NAMESPACE}::{DSCONV_OP_TYPE}{_STATE['dry_runs']}"
    try:
        _define(trtp, scratch_id, lazy=True)
    except Exception as exc:  # NVIDIA's validators raise ValueError, TypeError, AssertionError
        raise EngineUnavailableError(
            f"tensorrt.plugin rejected the DynamicSnakeConv plugin ({type(exc).__name__}: {exc}); "
            "nothing was registered"
        ) from exc
    try:
        impls = _define(trtp, PLUGIN_ID, lazy=False)
    except Exception as exc:  # TensorRT's registry itself refused (e.g. a clashing creator)
        raise EngineUnavailableError(
            f"TensorRT's plugin registry refused {PLUGIN_ID} ({type(exc).__name__}: {exc})"
        ) from exc
    logger.debug("registered TensorRT plugin %s (%s)", PLUGIN_ID, ", ".join(impls))
    return impls


def _dtype_name(trt_dtype: Any) -> str:
    import tensorrt as trt

    if trt_dtype == trt.DataType.FLOAT:
        return "fp32"
    if trt_dtype == trt.DataType.HALF:
        return "fp16"
    raise EngineUnavailableError(
        f"DynamicSnakeConv plugin got a {trt_dtype} tensor; only fp32 and fp16 are supported"
    )


def _io_dtypes(*descs: Any) -> tuple[tuple[str, str], ...]:
    names = ("x", "offset", "weight", "bias", "out")
    return tuple((name, _dtype_name(d.dtype)) for name, d in zip(names, descs, strict=True))


def _constant_or(expr: Any, default: int) -> int:
    """A ShapeExpr's value when it is a build-time constant, else ``default``."""
    try:
        if not expr.is_fake and expr.is_constant:
            return int(expr.constant_value())
    except (AttributeError, RuntimeError):
        pass
    return default


def _define(trtp: Any, plugin_id: str, *, lazy: bool) -> tuple[str, ...]:
    """Apply tensorrt.plugin's decorators to the DSConv functions under ``plugin_id``.

    Fully annotated, so NVIDIA's validators check every signature against ``register``'s;
    attributes follow register()'s order (TensorRT passes them positionally)."""
    @trtp.register(plugin_id, lazy_register=lazy)
    def dsconv_desc(
        x: trtp.TensorDesc, offset: trtp.TensorDesc, weight: trtp.TensorDesc, bias: trtp.TensorDesc,
        kernel_size: int, morph: int, extend_scope: float,
    ) -> trtp.TensorDesc:  # fmt: skip
        out = x.like()
        out.shape_expr[1] = weight.shape_expr[0]  # [N, O, H, W]
        return out

    @trtp.autotune(plugin_id)
    def dsconv_autotune(
        x: trtp.TensorDesc, offset: trtp.TensorDesc, weight: trtp.TensorDesc, bias: trtp.TensorDesc,
        outputs: tuple[trtp.TensorDesc],
    ) -> list[trtp.AutoTuneCombination]:  # fmt: skip
        return [trtp.AutoTuneCombination(c, "LINEAR") for c in autotune_type_combinations()]

    impls = ["jit"]
    if hasattr(trtp, "aot_impl"):  # TensorRT >= 10.9
        _define_aot(trtp, plugin_id)
        impls.insert(0, "aot")

    @trtp.impl(plugin_id)
    def dsconv_jit(
        x: trtp.Tensor, offset: trtp.Tensor, weight: trtp.Tensor, bias: trtp.Tensor,
        kernel_size: int, morph: int, extend_scope: float, outputs: tuple[trtp.Tensor], stream: int,
    ) -> None:  # fmt: skip
        n, c, h, w = (int(v) for v in x.shape)
        o = int(weight.shape[0])
        compiled = compiled_kernel(
            kernel_size, morph, extend_scope, _io_dtypes(x, offset, weight, bias, outputs[0]), o, build_target()
        )
        launcher().launch(
            compiled,
            grid=compiled.launch.grid(npix=n * h * w, out_channels=o),
            pointers_in=[int(t.data_ptr) for t in (x, offset, weight, bias)],
            scalars=kernel.scalar_args(x_shape=(n, c, h, w), out_channels=o, kernel_size=kernel_size),
            pointer_out=int(outputs[0].data_ptr),
            stream=int(stream),
        )

    return tuple(impls)


def _define_aot(trtp: Any, plugin_id: str) -> None:
    @trtp.aot_impl(plugin_id)
    def dsconv_aot(
        x: trtp.TensorDesc, offset: trtp.TensorDesc, weight: trtp.TensorDesc, bias: trtp.TensorDesc,
        kernel_size: int, morph: int, extend_scope: float, outputs: tuple[trtp.TensorDesc], tactic: int,
    ) -> tuple[str | bytes, str | bytes, trtp.KernelLaunchParams, trtp.SymIntExprs]:  # fmt: skip
        n, c, h, w = (x.shape_expr[i] for i in range(4))
        o = weight.shape_expr[0]
        dtypes = _io_dtypes(x, offset, weight, bias, outputs[0])
        # the output-channel block only depends on O; a symbolic O gets the 16-wide block
        compiled = compiled_kernel(kernel_size, morph, extend_scope, dtypes, _constant_or(o, 16), build_target())
        npix, hw, k2 = n * h * w, h * w, 2 * kernel_size
        params = trtp.KernelLaunchParams()
        params.grid_x = trtp.cdiv(npix, compiled.launch.block_p)
        params.grid_y = trtp.cdiv(o, compiled.launch.block_o)
        params.block_x = compiled.num_warps * 32
        params.shared_mem = compiled.shared_bytes
        # kernel.SCALAR_ARG_NAMES order; contiguous (LINEAR) strides in elements
        scalars = [
            c, h, w, o, npix,
            c * hw, hw, w, 1,  # x
            hw * k2, hw, w, 1,  # offset
            o * hw, hw, w, 1,  # output
        ]  # fmt: skip
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(e) for e in scalars])
        return compiled.name, compiled.ptx, params, extra


def _reset_for_tests() -> None:
    """Forget the registration outcome (the contract tests load a fresh tensorrt.plugin)."""
    with _LOCK:
        _STATE.update(impls=(), failure="", dry_runs=0)
