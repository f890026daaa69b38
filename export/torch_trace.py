"""The TorchScript trace behind :func:`edgesr.export.onnx_export.onnx_from_model`.

The legacy exporter (``dynamo=False``) is used because it is the one that reads DSConv's
``symbolic``: every DSConv becomes one ``edgesr::DynamicSnakeConv`` node, whose local
function body is attached afterwards. The trace runs on a fixed random input (seed 0) at
least :data:`TRACE_HEIGHT_PX` x :data:`TRACE_WIDTH_PX`; N, H and W stay dynamic in the graph.
"""

from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import nn

from edgesr.errors import EdgeSRError, ExportError
from edgesr.export.dsconv_onnx import (
    DSCONV_CUSTOM_OPSETS,
    attach_dsconv_function,
    dsconv_as_custom_op,
)
from edgesr.export.graph_tidy import IN_DIMS, OUT_DIMS
from edgesr.export.parity import model_device
from edgesr.ops.dsconv import DSConv
from edgesr.spec import INPUT_NAME, OUTPUT_NAME, ModelSpec

__all__ = ["TRACE_HEIGHT_PX", "TRACE_WIDTH_PX", "check_graph", "dsconv_modules",
           "torch_to_onnx", "trace_size"]

TRACE_HEIGHT_PX, TRACE_WIDTH_PX = 32, 48  # raised to the model's min_input_px when larger


def trace_size(spec: ModelSpec) -> tuple[int, int]:
    """(height, width) of the trace input: the defaults, or the model's minimum side."""
    return max(TRACE_HEIGHT_PX, spec.min_size_px), max(TRACE_WIDTH_PX, spec.min_size_px)


def dsconv_modules(model: nn.Module) -> list[DSConv]:
    return [m for m in model.modules() if isinstance(m, DSConv)]


def torch_to_onnx(model: nn.Module, *, opset: int, height: int, width: int) -> onnx.ModelProto:
    """Trace ``model`` (in eval mode, restored after) to ONNX with the DSConv function."""
    # the custom domain only when there is a DSConv (torch warns about an unused domain)
    custom_opsets = DSCONV_CUSTOM_OPSETS if dsconv_modules(model) else None
    generator = torch.Generator().manual_seed(0)
    lr = torch.rand(1, 3, height, width, generator=generator).to(model_device(model))
    buffer = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with dsconv_as_custom_op(), torch.no_grad(), warnings.catch_warnings():
            # the legacy-exporter notice, and the trace noting DSConv's constant snake matrix
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                model, (lr,), buffer, dynamo=False, opset_version=opset,
                custom_opsets=custom_opsets, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: IN_DIMS, OUTPUT_NAME: OUT_DIMS},
            )
    except EdgeSRError:
        raise
    except Exception as exc:  # the exporter raises many types
        raise ExportError(
            f"torch.onnx.export failed for {type(model).__name__} at opset {opset}: {exc}"
        ) from exc
    finally:
        model.train(was_training)
    return attach_dsconv_function(onnx.load_from_string(buffer.getvalue()))


def check_graph(model: onnx.ModelProto, what: str) -> None:
    """``onnx.checker`` with the full check (shape inference included), as an ExportError."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the {what} graph fails the ONNX checker: {exc}") from None
