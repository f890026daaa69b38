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
from onnx import helper
from torch import Tensor

from edgesr.errors import ExportError
from edgesr.ops.dsconv import dsconv_override, dynamic_snake_conv_eager
from edgesr.export.dsconv_function import MIN_OPSET, dsconv_function_proto
from edgesr.spec import DSCONV_DOMAIN, DSCONV_OP_TYPE, DSCONV_OP_VERSION

__all__ = [
    "DSCONV_CUSTOM_OPSETS",
    "MIN_OPSET",
    "dsconv_as_custom_op",
    "attach_dsconv_function",
    "inline_dsconv_functions",
    "dsconv_nodes",
]

logger = logging.getLogger(__name__)

# Pass as ``torch.onnx.export(..., custom_opsets=DSCONV_CUSTOM_OPSETS)``.
DSCONV_CUSTOM_OPSETS: dict[str, int] = {DSCONV_DOMAIN: DSCONV_OP_VERSION}



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
