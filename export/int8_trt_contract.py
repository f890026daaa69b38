"""Where TensorRT's explicit quantization fuses Q/DQ pairs, checked on an ONNX QDQ graph.

NVIDIA documents the rules in the TensorRT Developer Guide, "Explicit Quantization"
(docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/
quantized-types-explicit-quantization.html) and "Working with Quantized Types":

* quantization is symmetric: every zero-point is 0, INT8 is signed;
* activations are quantized per tensor (a scalar scale); weights may be per channel, along
  the output-channel axis (axis 0 of a Conv weight, K of KCRS);
* Q/DQ placement: quantize all inputs of weighted operations (the activation input and the
  weight of Convolution); do not quantize their outputs by default; the weight reaches the
  convolution through a DequantizeLinear of constant INT8 weights;
* a DQ is fused into the operation that consumes it; an operation TensorRT cannot run in
  INT8 between a DQ and its consumer leaves the pair unfused (a float detour).

edgesr's INT8 graphs quantize Conv only, so the contract here is the strict form of those
rules: every Q is followed by DQs only; every activation DQ feeds only Conv data inputs;
every weight DQ feeds only Conv weight inputs, per channel on axis 0 with one scale per
output channel; a Conv is INT8 on both inputs or on neither; biases stay float (TensorRT's
DequantizeLinear takes no INT32 input). :func:`qdq_violations` lists what breaks it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

_INT8_TYPES = {TensorProto.INT8}


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _zero_point_problem(node: onnx.NodeProto, init: dict[str, onnx.TensorProto]) -> str | None:
    if len(node.input) < 3 or not node.input[2]:
        return f"{node.name}: no zero-point (ONNX then means uint8; TensorRT needs int8 zero-point 0)"
    zp = init.get(node.input[2])
    if zp is None:
        return f"{node.name}: zero-point {node.input[2]!r} is not a constant"
    if zp.data_type not in _INT8_TYPES:
        return f"{node.name}: zero-point type {TensorProto.DataType.Name(zp.data_type)}, not INT8"
    if np.any(numpy_helper.to_array(zp) != 0):
        return f"{node.name}: zero-point not 0 (TensorRT quantizes symmetrically)"
    return None


def qdq_violations(model: onnx.ModelProto) -> list[str]:
    """One line per Q/DQ placement TensorRT would not fuse as INT8 Conv (empty: all fuse)."""
    graph = model.graph
    init = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, index))
    problems: list[str] = []
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            problem = _zero_point_problem(node, init)
            if problem:
                problems.append(problem)
        if node.op_type == "QuantizeLinear":
            problems += _check_quantize(node, init, consumers)
        elif node.op_type == "DequantizeLinear":
            problems += _check_dequantize(node, init, producer, consumers)
        elif node.op_type == "Conv":
            problems += _check_conv(node, producer)
    return problems


def _check_quantize(node, init, consumers) -> list[str]:  # noqa: ANN001
    out = []
    scale = init.get(node.input[1])
    if scale is None or numpy_helper.to_array(scale).size != 1:
        out.append(f"{node.name}: activation scale must be one constant (per tensor)")
    users = consumers.get(node.output[0], [])
    if not users or any(user.op_type != "DequantizeLinear" for user, _ in users):
        out.append(f"{node.name}: a QuantizeLinear must feed DequantizeLinear only")
    return out


def _check_dequantize(node, init, producer, consumers) -> list[str]:  # noqa: ANN001
    users = consumers.get(node.output[0], [])
    source = node.input[0]
    if source in init:  # weights: INT8 constant, per channel on axis 0, into Conv weights
        weight, scale = init[source], init.get(node.input[1])
        out = []
        if weight.data_type not in _INT8_TYPES:
            out.append(f"{node.name}: weight type {TensorProto.DataType.Name(weight.data_type)}, not INT8")
        channels = weight.dims[0] if weight.dims else 0
        if scale is None or numpy_helper.to_array(scale).shape != (channels,) or _attr(node, "axis", 1) != 0:
            out.append(f"{node.name}: Conv weights need one scale per output channel on axis 0")
        if any(user.op_type != "Conv" or index != 1 for user, index in users):
            out.append(f"{node.name}: a weight DequantizeLinear must feed Conv weight inputs only")
        return out
    quantize = producer.get(source)
    if quantize is None or quantize.op_type != "QuantizeLinear":
        return [f"{node.name}: DequantizeLinear of {source!r}, which no QuantizeLinear makes"]
    out = []
    if list(quantize.input[1:]) != list(node.input[1:]):
        out.append(f"{node.name}: scale/zero-point differ from its QuantizeLinear {quantize.name}")
    for user, index in users:
        if user.op_type != "Conv" or index != 0:
            out.append(f"{node.name}: feeds {user.op_type} {user.name!r} input {index}; TensorRT fuses "
                       "an activation DQ only into a quantized op's input (here: Conv data input)")
    return out


def _check_conv(node, producer) -> list[str]:  # noqa: ANN001
    def dq(index: int) -> bool:
        source = producer.get(node.input[index]) if len(node.input) > index else None
        return source is not None and source.op_type == "DequantizeLinear"

    out = []
    if dq(0) != dq(1):
        out.append(f"{node.name}: only one of data and weight quantized; TensorRT runs INT8 Conv "
                   "with both quantized")
    if dq(2):
        out.append(f"{node.name}: bias through DequantizeLinear; TensorRT wants a float bias")
    return out
