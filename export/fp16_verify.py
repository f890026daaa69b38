"""Is an FP16 graph strongly typed? The checks behind :mod:`edgesr.export.fp16`.

TensorRT's strongly-typed networks reject an op whose inputs mix float16 and float32, and
edgesr's contract keeps the graph's I/O float32. onnxconverter-common does not promise
either, so every FP16 graph is verified here before it is written: types come from strict
onnx type inference, never from what the converter recorded.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto

from edgesr.errors import ExportError

__all__ = ["FLOATS", "float_io", "mixed_precision_nodes", "value_types", "verify_fp16_graph"]

FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16)
# Ops whose inputs may legitimately differ in float type.
_MIXED_TYPES_OK = frozenset({"Cast", "CastLike", "Shape", "Size", "ConstantOfShape"})


def value_types(model: onnx.ModelProto, *, strict: bool = False,
                 checker: bool = False) -> dict[str, int]:
    """Element types of the graph's values by onnx type inference (unknown values absent).

    Lenient by default (a failed inference falls back to the types already recorded).
    ``strict=True`` runs strict type inference and raises ExportError on failure;
    ``checker=True`` also runs ``onnx.checker`` first: together they are exactly
    ``onnx.checker.check_model(model, full_check=True)``, with the inferred types kept.
    """
    try:
        if checker:
            onnx.checker.check_model(model)
        g = onnx.shape_inference.infer_shapes(model, check_type=strict, strict_mode=strict).graph
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        if not (strict or checker):
            g = model.graph
        else:
            what = "the ONNX checker (full check)" if checker else "strict ONNX type inference"
            raise ExportError(
                f"the FP16 graph fails {what} ({exc}); expected a strongly typed graph. "
                "Export FP32 (drop --fp16) and report the model name."
            ) from None
    types = {
        vi.name: vi.type.tensor_type.elem_type for vi in [*g.input, *g.output, *g.value_info]
    }
    types.update({i.name: i.data_type for i in g.initializer})
    return {k: v for k, v in types.items() if v != TensorProto.UNDEFINED}


def mixed_precision_nodes(model: onnx.ModelProto) -> list[str]:
    """Main-graph nodes whose inputs mix float16 and float32 (empty for a strongly typed
    graph: what TensorRT's strongly-typed networks require). Runs strict type inference."""
    return _mixed_nodes(model, value_types(model, strict=True))


def _mixed_nodes(model: onnx.ModelProto, types: dict[str, int]) -> list[str]:
    mixed = []
    for node in model.graph.node:
        if node.op_type in _MIXED_TYPES_OK:
            continue
        kinds = {types.get(i) for i in node.input if i} & set(FLOATS)
        if len(kinds) > 1:
            mixed.append(node.name)
    return mixed


def float_io(model: onnx.ModelProto) -> list[str]:
    return [
        vi.name
        for vi in [*model.graph.input, *model.graph.output]
        if vi.type.tensor_type.elem_type != TensorProto.FLOAT
    ]


def verify_fp16_graph(model: onnx.ModelProto, *, full_check: bool = False) -> None:
    """Raise ExportError unless the FP16 graph has float32 I/O and is strongly typed (strict
    type inference; no node mixes float16 and float32 inputs). ``full_check=True`` runs the
    ONNX checker too: the same work as ``check_model(full_check=True)``, done once."""
    if float_io(model):
        raise ExportError(f"FP16 conversion changed the graph I/O types of {float_io(model)}")
    mixed = _mixed_nodes(model, value_types(model, strict=True, checker=full_check))
    if mixed:
        raise ExportError(
            f"the FP16 graph mixes float16 and float32 inputs at {len(mixed)} nodes "
            f"({', '.join(mixed[:5])}); TensorRT's strongly-typed networks reject that. "
            "Export FP32 (drop --fp16) and report the model name."
        )
