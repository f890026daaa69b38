"""Tidying an exported graph: dynamic axis names, weights as initializers, edgesr metadata,
and the counts the export summary prints."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from edgesr.errors import ExportError
from edgesr.export.fp16 import sorted_counts
from edgesr.spec import METADATA_PREFIX, ModelSpec

# Dim names of the dynamic axes.
IN_DIMS = {0: "batch", 2: "height", 3: "width"}
OUT_DIMS = {0: "batch", 2: "sr_height", 3: "sr_width"}


def float_param_count(model: onnx.ModelProto) -> int:
    """Float elements (float32/float16/bfloat16/float64) in the main graph's initializers."""
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)
    return sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer if t.data_type in floats)


def node_counts(model: onnx.ModelProto) -> dict[str, int]:
    return sorted_counts(n.op_type for n in model.graph.node)


_TOOL_METADATA_PREFIXES = ("onnxsim.", "onnxslim.")


#: Metadata key naming the graph's form: "deployment" (edgesr.models.deploy) or "training".
META_GRAPH_FORM = METADATA_PREFIX + "graph_form"


def set_metadata(model: onnx.ModelProto, spec: ModelSpec, *, simplifier: str,
                 graph_form: str = "deployment") -> None:
    # onnxsim 0.8 records its own bookkeeping (assigned node names, ...): not for users
    keep = {p.key: p.value for p in model.metadata_props
            if not p.key.startswith((METADATA_PREFIX, *_TOOL_METADATA_PREFIXES))}
    onnx.helper.set_model_props(model, {**keep, **spec.to_metadata(), META_GRAPH_FORM: graph_form})
    model.doc_string = (
        f"{spec.arch} (x{spec.scale}, {spec.precision}, {graph_form} form) exported by edgesr "
        f"{spec.edgesr_version}; simplifier: {simplifier}"
    )


def constants_to_initializers(model: onnx.ModelProto) -> None:
    """Main-graph ``Constant`` nodes holding a tensor of more than one element become
    initializers (onnxsim leaves some folded weights as Constant nodes), so every weight
    is an initializer. Scalar constants (GELU's 0.5, a norm's eps) stay Constant nodes."""
    kept = []
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if (
            node.op_type == "Constant"
            and node.domain in ("", "ai.onnx")
            and set(attrs) == {"value"}
            and int(np.prod(attrs["value"].t.dims, dtype=np.int64)) > 1
        ):
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attrs["value"].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def name_dynamic_dims(model: onnx.ModelProto) -> None:
    """Give lr/sr's dynamic axes stable names; fail if any was frozen to a number."""
    for values, names in ((model.graph.input, IN_DIMS), (model.graph.output, OUT_DIMS)):
        for vi in values:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) != 4:
                raise ExportError(f"{vi.name!r} has rank {len(dims)}; expected 4 (NCHW)")
            for axis, dim_name in names.items():
                if dims[axis].HasField("dim_value"):
                    raise ExportError(
                        f"axis {axis} of {vi.name!r} became static ({dims[axis].dim_value}) "
                        "during export; expected a dynamic axis. Export with --no-simplify "
                        "and report the model name."
                    )
                dims[axis].dim_param = dim_name
