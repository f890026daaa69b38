"""Graph passes of the deployment form that the PyTorch rewrite cannot express.

:func:`gelu_fusable`: the TorchScript exporter writes the exact (erf) GELU as
``Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)``. When that last ``Mul(., 0.5)`` feeds a
Conv, onnxsim folds the 0.5 into the Conv's weights, and ONNX Runtime's GeluFusion, which
needs the 0.5, no longer recognises the pattern: those GELUs (25 of OSFFNet's 89) ran as
five separate kernels, with a blocked-layout round trip each. The pass, run on the exporter's
graph before simplification, rewrites each GELU as ``Mul(Mul(x, 0.5), Add(Erf(Div(x, sqrt 2)), 1))``
(the other form GeluFusion accepts; the same product in another order), which leaves onnxsim
nothing to fold. The graph stays standard ONNX at the same opset, so TensorRT and other
runtimes read it as before.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["gelu_fusable"]

_TOLERANCE = 1e-6


def _scalar(graph_constants: dict[str, np.ndarray], name: str) -> float | None:
    value = graph_constants.get(name)
    if value is None or value.size != 1:
        return None
    return float(value.reshape(()))


def _other_input(node: onnx.NodeProto, name: str) -> str | None:
    if len(node.input) != 2 or name not in node.input:
        return None
    return node.input[1] if node.input[0] == name else node.input[0]


def _only_consumer(consumers: dict[str, list[onnx.NodeProto]], name: str, op_type: str):
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 and users[0].op_type == op_type else None


def _match_gelu(erf, producers, consumers, constants):
    """(div, add, mul_x, mul_half, x) when ``erf`` is the exporter's GELU pattern, else None."""
    div = producers.get(erf.input[0])
    if div is None or div.op_type != "Div" or len(consumers.get(div.output[0], [])) != 1:
        return None
    x = div.input[0]
    root2 = _scalar(constants, div.input[1])
    if root2 is None or abs(root2 - math.sqrt(2.0)) > _TOLERANCE:
        return None
    add = _only_consumer(consumers, erf.output[0], "Add")
    one = _scalar(constants, _other_input(add, erf.output[0]) or "") if add is not None else None
    if one is None or abs(one - 1.0) > _TOLERANCE:
        return None
    mul_x = _only_consumer(consumers, add.output[0], "Mul")
    if mul_x is None or _other_input(mul_x, add.output[0]) != x:
        return None
    mul_half = _only_consumer(consumers, mul_x.output[0], "Mul")
    half = _scalar(constants, _other_input(mul_half, mul_x.output[0]) or "") if mul_half is not None else None
    if half is None or abs(half - 0.5) > _TOLERANCE:
        return None
    return add, mul_x, mul_half, x


def gelu_fusable(model: onnx.ModelProto) -> int:
    """Rewrite every exporter-form GELU of ``model``'s main graph in place (module notes);
    returns how many were rewritten."""
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewritten = 0
    for erf in [n for n in graph.node if n.op_type == "Erf"]:
        match = _match_gelu(erf, producers, consumers, constants)
        if match is None:
            continue
        add, mul_x, mul_half, x = match
        half_name = next(i for i in mul_half.input if i != mul_x.output[0])
        output, halved = mul_half.output[0], f"{mul_half.output[0]}_half_x"
        # mul_x's slot (before mul_half in node order) now computes x * 0.5 and mul_half's
        # slot multiplies that by (1 + erf): the node list stays topologically sorted
        _rewire(mul_x, [x, half_name], halved)
        _rewire(mul_half, [halved, add.output[0]], output)
        rewritten += 1
    if rewritten:  # the 0.5 may be a Constant node placed after mul_x's slot
        _sort_topologically(graph)
    return rewritten


def _rewire(node: onnx.NodeProto, inputs: list[str], output: str) -> None:
    node.ClearField("input")
    node.input.extend(inputs)
    node.output[0] = output


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Stable topological order (Kahn's algorithm, ties in the current order)."""
    nodes = list(graph.node)
    producer = {out: index for index, node in enumerate(nodes) for out in node.output if out}
    waiting_on = [{producer[i] for i in node.input if i in producer} for node in nodes]
    users: dict[int, list[int]] = {}
    for index, needs in enumerate(waiting_on):
        for need in needs:
            users.setdefault(need, []).append(index)
    ready = [index for index, needs in enumerate(waiting_on) if not needs]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users.get(index, []):
            waiting_on[user].discard(index)
            if not waiting_on[user]:
                heapq.heappush(ready, user)
    if len(order) != len(nodes):
        raise ValueError("the graph has a cycle after the GELU rewrite")
    graph.ClearField("node")
    graph.node.extend(nodes[index] for index in order)
