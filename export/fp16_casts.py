"""Remove float32 -> float16 -> float32 round trips between float32 nodes of an FP16 graph.

onnxconverter-common wraps each node of its block list in Casts on its own: inputs up to
float32, outputs back down to float16. Two float32 nodes in a row (LayerNorm's ``x - mean``
feeding ``Pow`` and ``Div``) therefore pass their value through float16 in between. That costs
two Casts and the value's precision, and a value past 65,504 (LKDN's pre-norm activations)
becomes Inf. Where a ``Cast(to=FLOAT)`` reads a ``Cast(to=FLOAT16)`` of a float32 value, its
readers are given the float32 value itself; Casts left without readers are dropped.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto


def _cast_to(node: onnx.NodeProto) -> int | None:
    if node.op_type != "Cast":
        return None
    return next((a.i for a in node.attribute if a.name == "to"), None)


def bypass_cast_round_trips(model: onnx.ModelProto, value_types: dict[str, int]) -> int:
    """Rewire round trips in ``model`` in place (module docstring); ``value_types`` maps value
    names to element types (onnx type inference). Returns how many round trips were removed."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    shortcut: dict[str, str] = {}  # float32 copy made through float16 -> the float32 original
    for node in graph.node:
        down = producer.get(node.input[0]) if _cast_to(node) == TensorProto.FLOAT else None
        if down is not None and _cast_to(down) == TensorProto.FLOAT16:
            original = down.input[0]
            if value_types.get(original) == TensorProto.FLOAT:
                shortcut[node.output[0]] = original
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in shortcut:
                node.input[i] = shortcut[name]
    _drop_unread_casts(graph)
    return len(shortcut)


def _drop_unread_casts(graph: onnx.GraphProto) -> None:
    outputs = {o.name for o in graph.output}
    while True:
        read = {i for node in graph.node for i in node.input} | outputs
        dead = [n for n in graph.node if n.op_type == "Cast" and not any(o in read for o in n.output)]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)
