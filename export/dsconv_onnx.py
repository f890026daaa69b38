"""Dynamic snake convolution as ONE ONNX node plus a standard-op local function (DESIGN section 6).

Export in three steps::

    from edgesr.export.dsconv_onnx import (
        DSCONV_CUSTOM_OPSETS, attach_dsconv_function, dsconv_as_custom_op,
    )

    with dsconv_as_custom_op():
        torch.onnx.export(model, (lr,), path, dynamo=False, opset_version=18,
                          custom_opsets=DSCONV_CUSTOM_OPSETS, dynamic_axes=...)
    model_proto = attach_dsconv_function(onnx.load(path))

1. :func:`dsconv_as_custom_op` (a context manager) routes ``edgesr.ops.dsconv.
   dynamic_snake_conv`` through a ``torch.autograd.Function`` whose ``symbolic`` emits
   ``edgesr::DynamicSnakeConv(x, offset, weight, bias)`` with the int attributes
   ``kernel_size``, ``morph`` and the float attribute ``extend_scope``, and types its output
   [N, O, H, W] so that downstream export (GroupNorm needs the rank) works with dynamic
   N/H/W. Only while ``torch.onnx.is_in_onnx_export()``: eager calls inside the context
   keep the normal (differentiable) implementation.
2. :func:`attach_dsconv_function` adds one ``FunctionProto`` ``edgesr.DynamicSnakeConv``
   whose body is standard ONNX ops (see :func:`dsconv_function_proto`), adds the ``edgesr``
   opset import (version 1), and renames the exporter's fresh symbolic dims of each
   DynamicSnakeConv output to the N/H/W of its input.
3. :func:`inline_dsconv_functions` replaces each node by the body, for tools that do not
   read local functions.

The body computes in float32 internally (inputs are Cast to float32, the output is
CastLike'd back to x), so coordinate math and GridSample stay float32 in FP16 graphs.
GridSample's ``mode`` is left at its default, which is bilinear at every opset (spelt
"bilinear" in GridSample-16, "linear" in GridSample-20): spelling it out would tie the body
to one opset, and onnx's ReferenceEvaluator only accepts the opset-20 spelling.

Only the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) reads the
``symbolic`` used here; the dynamo exporter does not.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import onnx
import onnx.inliner
import torch
from onnx import AttributeProto, TensorProto, helper
from torch import Tensor

from edgesr.errors import ExportError
from edgesr.ops.dsconv import dsconv_override, dynamic_snake_conv_eager
from edgesr.spec import DEFAULT_OPSET, DSCONV_DOMAIN, DSCONV_OP_TYPE, DSCONV_OP_VERSION

__all__ = [
    "DSCONV_CUSTOM_OPSETS",
    "MIN_OPSET",
    "dsconv_as_custom_op",
    "dsconv_function_proto",
    "attach_dsconv_function",
    "inline_dsconv_functions",
    "dsconv_nodes",
]

logger = logging.getLogger(__name__)

# Pass as ``torch.onnx.export(..., custom_opsets=DSCONV_CUSTOM_OPSETS)``.
DSCONV_CUSTOM_OPSETS: dict[str, int] = {DSCONV_DOMAIN: DSCONV_OP_VERSION}

MIN_OPSET = 16  # the lowest ONNX opset with GridSample (the function body needs it)


def _varying_sizes(value: object, rank: int) -> list[int | None]:
    """Static sizes of a TorchScript value, None where dynamic or unknown."""
    try:
        sizes = value.type().varyingSizes()  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        sizes = None
    if sizes is None or len(sizes) != rank:
        return [None] * rank
    return list(sizes)


class _DynamicSnakeConvOp(torch.autograd.Function):
    """Export-only wrapper: forward is the eager implementation, symbolic is one node."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: object,
        x: Tensor,
        offset: Tensor,
        weight: Tensor,
        bias: Tensor,
        kernel_size: int,
        morph: int,
        extend_scope: float,
    ) -> Tensor:
        return dynamic_snake_conv_eager(
            x,
            offset,
            weight,
            bias,
            kernel_size=kernel_size,
            morph=morph,
            extend_scope=extend_scope,
        )

    @staticmethod
    def symbolic(  # type: ignore[no-untyped-def]
        g, x, offset, weight, bias, kernel_size: int, morph: int, extend_scope: float
    ):
        out = g.op(
            f"{DSCONV_DOMAIN}::{DSCONV_OP_TYPE}",
            x,
            offset,
            weight,
            bias,
            kernel_size_i=kernel_size,
            morph_i=morph,
            extend_scope_f=extend_scope,
        )
        # rank 4 and the channel count must be known downstream (GroupNorm's export needs
        # them); N, H, W stay dynamic. attach_dsconv_function renames the symbolic dims.
        x_sizes = _varying_sizes(x, 4)
        w_sizes = _varying_sizes(weight, 4)
        out.setType(x.type().with_sizes([x_sizes[0], w_sizes[0], x_sizes[2], x_sizes[3]]))
        return out


def _custom_op_impl(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    *,
    kernel_size: int,
    morph: int,
    extend_scope: float,
) -> Tensor:
    if not torch.onnx.is_in_onnx_export():
        return dynamic_snake_conv_eager(
            x,
            offset,
            weight,
            bias,
            kernel_size=kernel_size,
            morph=morph,
            extend_scope=extend_scope,
        )
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    return _DynamicSnakeConvOp.apply(
        x, offset, weight, bias, int(kernel_size), int(morph), float(extend_scope)
    )


@contextlib.contextmanager
def dsconv_as_custom_op() -> Iterator[None]:
    """While exporting with the TorchScript exporter (``dynamo=False``), every DSConv
    becomes one ``edgesr::DynamicSnakeConv`` node. Follow with :func:`attach_dsconv_function`.
    """
    with dsconv_override(_custom_op_impl):
        yield


# --------------------------------------------------------------------------- function body


class _Body:
    """Tiny builder for the function body: unique value names, one node per call."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self._count = 0

    def op(self, op_type: str, *inputs: str, **attrs: object) -> str:
        self._count += 1
        out = f"t{self._count}_{op_type}"
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [out], name=f"n{self._count}_{op_type}", **attrs)
        )
        return out

    def ints(self, *values: int) -> str:
        return self.op("Constant", value_ints=list(values))

    def int_scalar(self, value: int) -> str:
        return self.op("Constant", value_int=value)

    def float_scalar(self, value: float) -> str:
        # a typed float32 tensor, not value_float: onnxslim 0.1.98 rewrites value_float
        # constants inside function bodies as float64 tensors, which breaks the body.
        return self.op(
            "Constant", value=helper.make_tensor("value", TensorProto.FLOAT, [], [value])
        )

    def ref_constant(self, attr_type: AttributeProto.AttributeType, value_attr: str, ref: str) -> str:
        """A Constant whose value is the caller's attribute ``ref``."""
        self._count += 1
        out = f"t{self._count}_{ref}"
        node = helper.make_node("Constant", [], [out], name=f"n{self._count}_{ref}")
        node.attribute.append(helper.make_attribute_ref(value_attr, attr_type, ref_attr_name=ref))
        self.nodes.append(node)
        return out


def dsconv_function_proto(opset: int = DEFAULT_OPSET) -> onnx.FunctionProto:
    """The ``edgesr.DynamicSnakeConv`` local function for ONNX opset ``opset`` (>= 16).

    Inputs ``x`` [N,C,H,W], ``offset`` [N,2K,H,W], ``weight`` [O,C,K,1] or [O,C,1,K],
    ``bias`` [O] (required); output ``y`` [N,O,H,W]. Attributes ``kernel_size``, ``morph``
    (int) and ``extend_scope`` (float), referenced from the body, so one body serves both
    morphs and any K:

    Slice the offsets [m·K, m·K+K) -> MatMul with the K x K snake matrix (built from
    Range/compare) -> pixel coordinates from Shape/Range, Where(morph) picks which axis
    moves -> Clip to the image -> normalise for align_corners=1 -> GridSample (bilinear,
    border, align_corners=1) on a [N, K·H, W, 2] grid -> Reshape to [N, C·K, H, W] -> Conv
    with the weight reshaped to [O, C·K, 1, 1] and the bias -> CastLike x.
    """
    if opset < MIN_OPSET:
        raise ExportError(
            f"DynamicSnakeConv's function body needs ONNX opset >= {MIN_OPSET} (GridSample), "
            f"received opset {opset}; export with opset_version={DEFAULT_OPSET}."
        )
    FLOAT = TensorProto.FLOAT
    b = _Body()

    xf = b.op("Cast", "x", to=FLOAT)
    of = b.op("Cast", "offset", to=FLOAT)
    wf = b.op("Cast", "weight", to=FLOAT)
    bf = b.op("Cast", "bias", to=FLOAT)
    k = b.ref_constant(AttributeProto.INT, "value_int", "kernel_size")  # int64 scalar
    m = b.ref_constant(AttributeProto.INT, "value_int", "morph")
    s = b.ref_constant(AttributeProto.FLOAT, "value_float", "extend_scope")
    i0, i1, i2 = b.int_scalar(0), b.int_scalar(1), b.int_scalar(2)
    f0, f1, f2 = b.float_scalar(0.0), b.float_scalar(1.0), b.float_scalar(2.0)
    axis0 = b.ints(0)

    # offsets of the moving axis: channels [m*K, m*K + K)
    start = b.op("Mul", m, k)
    end = b.op("Add", start, k)
    delta = b.op(
        "Slice", of, b.op("Unsqueeze", start, axis0), b.op("Unsqueeze", end, axis0), b.ints(1)
    )  # [N, K, H, W]

    # snake matrix A[k, j]: c < j <= k  or  k <= j < c
    kr = b.op("Range", i0, k, i1)  # [K] int64
    c = b.op("Div", k, i2)
    kcol = b.op("Unsqueeze", kr, b.ints(1))  # [K, 1]
    jrow = b.op("Unsqueeze", kr, axis0)  # [1, K]
    right = b.op("And", b.op("Greater", jrow, c), b.op("LessOrEqual", jrow, kcol))
    left = b.op("And", b.op("Less", jrow, c), b.op("GreaterOrEqual", jrow, kcol))
    snake = b.op("Cast", b.op("Or", right, left), to=FLOAT)  # [K, K]

    # accumulate: [K,K] @ [N, K, H*W]
    acc3 = b.op("MatMul", snake, b.op("Reshape", delta, b.ints(0, 0, -1)))
    acc = b.op("Reshape", acc3, b.op("Shape", delta))  # [N, K, H, W]
    disp = b.op("Mul", acc, s)

    # pixel coordinates
    h = b.op("Gather", b.op("Shape", xf), i2)  # int64 scalar
    w = b.op("Gather", b.op("Shape", xf), b.int_scalar(3))
    ys = b.op("Reshape", b.op("Cast", b.op("Range", i0, h, i1), to=FLOAT), b.ints(1, 1, -1, 1))
    xs = b.op("Reshape", b.op("Cast", b.op("Range", i0, w, i1), to=FLOAT), b.ints(1, 1, 1, -1))
    koff = b.op("Sub", b.op("Cast", kr, to=FLOAT), b.op("Cast", c, to=FLOAT))
    k4 = b.op("Reshape", koff, b.ints(1, -1, 1, 1))
    is_m1 = b.op("Equal", m, i1)
    y = b.op("Where", is_m1, b.op("Add", ys, k4), b.op("Add", ys, disp))  # [N, K, H, W]
    xx = b.op("Where", is_m1, b.op("Add", xs, disp), b.op("Add", xs, k4))
    h_max = b.op("Cast", b.op("Sub", h, i1), to=FLOAT)
    w_max = b.op("Cast", b.op("Sub", w, i1), to=FLOAT)
    y = b.op("Clip", y, f0, h_max)
    xx = b.op("Clip", xx, f0, w_max)

    # normalise for align_corners=1 (Max(., 1) keeps H == 1 / W == 1 finite)
    gy = b.op("Sub", b.op("Div", b.op("Mul", y, f2), b.op("Max", h_max, f1)), f1)
    gx = b.op("Sub", b.op("Div", b.op("Mul", xx, f2), b.op("Max", w_max, f1)), f1)
    last = b.ints(-1)
    grid5 = b.op("Concat", b.op("Unsqueeze", gx, last), b.op("Unsqueeze", gy, last), axis=-1)
    n1 = b.op("Shape", xf, start=0, end=1)
    h1 = b.op("Shape", xf, start=2, end=3)
    w1 = b.op("Shape", xf, start=3, end=4)
    minus1 = b.ints(-1)
    grid = b.op(
        "Reshape", grid5, b.op("Concat", n1, minus1, w1, b.ints(2), axis=0)
    )  # [N, K*H, W, 2], row k*H + i
    sampled = b.op(
        "GridSample", xf, grid, padding_mode="border", align_corners=1
    )  # [N, C, K*H, W]; mode left at its default (bilinear), see the module docstring
    sampled = b.op(
        "Reshape", sampled, b.op("Concat", n1, minus1, h1, w1, axis=0)
    )  # [N, C*K, H, W], channel c*K + k

    # collapse: [O,C,K,1] and [O,C,1,K] both flatten to [O, C*K] in (c, k) order
    w2 = b.op("Reshape", wf, b.ints(0, -1, 1, 1))
    conv = b.op("Conv", sampled, w2, bf)
    b.nodes.append(helper.make_node("CastLike", [conv, "x"], ["y"], name="n_out_CastLike"))

    return helper.make_function(
        DSCONV_DOMAIN,
        DSCONV_OP_TYPE,
        inputs=["x", "offset", "weight", "bias"],
        outputs=["y"],
        nodes=b.nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attributes=["kernel_size", "morph", "extend_scope"],
        doc_string=(
            "Dynamic snake convolution (edgesr, DESIGN section 3): snake accumulation of "
            "the offsets, clamped bilinear sampling, collapse conv and bias. Standard-op "
            "reference body; a TensorRT plugin edgesr::DynamicSnakeConv may replace it."
        ),
    )


# --------------------------------------------------------------------------- model passes


def _is_dsconv_function(function: onnx.FunctionProto) -> bool:
    return function.domain == DSCONV_DOMAIN and function.name == DSCONV_OP_TYPE


def _drop_dsconv_function(model: onnx.ModelProto) -> None:
    """Remove the ``edgesr.DynamicSnakeConv`` function from ``model`` (in place)."""
    kept = [f for f in model.functions if not _is_dsconv_function(f)]
    del model.functions[:]
    model.functions.extend(kept)


def dsconv_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The ``edgesr::DynamicSnakeConv`` nodes of the main graph."""
    return [
        n for n in model.graph.node if n.domain == DSCONV_DOMAIN and n.op_type == DSCONV_OP_TYPE
    ]


def _default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise ExportError(
        "the ONNX model has no default-domain opset import; expected one (e.g. opset 18) "
        "from torch.onnx.export."
    )


def _propagate_dims(model: onnx.ModelProto) -> None:
    """Rename the exporter's fresh symbolic dims of each DynamicSnakeConv output (N, H, W)
    to those of its input x, everywhere in the graph's value infos."""
    graph = model.graph
    infos = {vi.name: vi for vi in [*graph.input, *graph.value_info, *graph.output]}
    rename: dict[str, onnx.TensorShapeProto.Dimension] = {}
    for node in dsconv_nodes(model):
        src = infos.get(node.input[0])
        dst = infos.get(node.output[0])
        if src is None or dst is None:
            continue
        src_dims = src.type.tensor_type.shape.dim
        dst_dims = dst.type.tensor_type.shape.dim
        if len(src_dims) != 4 or len(dst_dims) != 4:
            continue
        for axis in (0, 2, 3):
            d_out, d_in = dst_dims[axis], src_dims[axis]
            if d_out.HasField("dim_param") and (
                d_in.HasField("dim_param") or d_in.HasField("dim_value")
            ):
                if d_in.dim_param != d_out.dim_param:
                    rename[d_out.dim_param] = d_in
    if not rename:
        return

    def resolve(dim: onnx.TensorShapeProto.Dimension) -> onnx.TensorShapeProto.Dimension:
        seen = set()
        while dim.HasField("dim_param") and dim.dim_param in rename and dim.dim_param not in seen:
            seen.add(dim.dim_param)
            dim = rename[dim.dim_param]
        return dim

    for vi in [*graph.input, *graph.value_info, *graph.output]:
        for dim in vi.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in rename:
                target = resolve(dim)
                if target.HasField("dim_value"):
                    dim.dim_value = target.dim_value
                else:
                    dim.dim_param = target.dim_param


def attach_dsconv_function(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of ``model`` carrying the ``edgesr.DynamicSnakeConv`` local function.

    Adds (or replaces) the one FunctionProto, adds the ``edgesr`` opset import (version 1)
    and tidies the symbolic dims of the custom nodes' outputs. Idempotent. The function's
    default-domain opset is the model's (>= 16).
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    opset = _default_opset(out)
    nodes = dsconv_nodes(out)
    for node in nodes:
        names = {a.name for a in node.attribute}
        missing = {"kernel_size", "morph", "extend_scope"} - names
        if missing or len(node.input) != 4 or not all(node.input):
            raise ExportError(
                f"DynamicSnakeConv node {node.name!r} has inputs {list(node.input)} and "
                f"attributes {sorted(names)}; expected 4 inputs (x, offset, weight, bias) and "
                "kernel_size, morph, extend_scope. Export through dsconv_as_custom_op()."
            )
    _drop_dsconv_function(out)
    out.functions.append(dsconv_function_proto(opset))

    versions = [imp for imp in out.opset_import if imp.domain == DSCONV_DOMAIN]
    if not versions:
        out.opset_import.append(helper.make_opsetid(DSCONV_DOMAIN, DSCONV_OP_VERSION))
    elif any(imp.version != DSCONV_OP_VERSION for imp in versions):
        raise ExportError(
            f"the model imports domain {DSCONV_DOMAIN!r} at version "
            f"{[imp.version for imp in versions]}, expected {DSCONV_OP_VERSION}; export with "
            "custom_opsets=DSCONV_CUSTOM_OPSETS."
        )
    _propagate_dims(out)
    logger.debug("attached %s.%s function (%d nodes)", DSCONV_DOMAIN, DSCONV_OP_TYPE, len(nodes))
    return out


def inline_dsconv_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy with every ``edgesr::DynamicSnakeConv`` replaced by its function body.

    Other local functions are left alone. The ``edgesr`` opset import and the function are
    dropped when nothing uses them any more.
    """
    if not any(_is_dsconv_function(f) for f in model.functions):
        if dsconv_nodes(model):
            raise ExportError(
                "the model has DynamicSnakeConv nodes but no edgesr.DynamicSnakeConv function "
                "to inline; call attach_dsconv_function(model) first."
            )
        out = onnx.ModelProto()
        out.CopyFrom(model)
        return out
    out = onnx.inliner.inline_selected_functions(model, [(DSCONV_DOMAIN, DSCONV_OP_TYPE)])
    _drop_dsconv_function(out)
    used = any(n.domain == DSCONV_DOMAIN for n in out.graph.node) or any(
        n.domain == DSCONV_DOMAIN for f in out.functions for n in f.node
    )
    if not used:
        keep = [imp for imp in out.opset_import if imp.domain != DSCONV_DOMAIN]
        del out.opset_import[:]
        out.opset_import.extend(keep)
    return out
