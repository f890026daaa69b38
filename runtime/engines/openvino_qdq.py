"""Two rewrites of an INT8 (QDQ) graph before OpenVINO's CPU plugin reads it.

OpenVINO 2026.4's CPU plugin ran edgesr's INT8 graphs wrong (lkdn_x4 Set5 22.44 dB against
32.27 through ONNX Runtime; docs/int8.md). A node-by-node comparison with ONNX Runtime on the
same graph found two faults, each reproduced on a hand-built graph:

1. **int16 saturation on CPUs without VNNI.** OpenVINO runs the quantized convolutions with u8
   activations (the signed input shifted by +128). Without VNNI/AMX, oneDNN's AVX2 int8
   kernels add each pair of u8 x s8 products with ``vpmaddubsw`` into a saturating int16:
   255 * 127 * 2 > 32767, so channels whose weights use the full int8 range come out too
   small (the model's first conv: 22.7 dB against ONNX Runtime). Intel documents this
   "saturation issue"; its quantizers answer it with 7-bit weights, as done here: each
   Conv's per-channel int8 weights are re-quantized to [-64, 64] (255 * 64 * 2 = 32640 fits),
   the scale multiplied to match. CPUs with VNNI or AMX sum in int32 and keep 8 bits.
2. **A u8 Concat feeding a 1x1 Conv.** When a Concat's output is quantized for a pointwise
   (1x1, group 1) Conv, OpenVINO runs the Concat in u8 and the Conv then reads values of -1,
   0 or +1 regardless of the scale (a two-conv -> Concat -> Q/DQ -> 1x1 Conv graph: 17-19 dB
   against ONNX Runtime; fine without the Concat, or with a depthwise consumer). Moving the
   Q/DQ above the Concat does not help (OpenVINO forms the u8 Concat again), so that Conv's
   activation Q/DQ is removed and it runs in float.

The file on disk is not changed (TensorRT and NPUs read it as exported); only the copy that
OpenVINO's CPU plugin compiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SEVEN_BIT_MAX = 64  # 255 * 64 * 2 = 32640 <= 32767


@dataclass(frozen=True)
class QdqRewrite:
    """What :func:`for_openvino_cpu` changed (counts of Conv nodes)."""

    weights_to_7_bit: int
    float_after_concat: int

    def summary(self) -> str:
        parts = []
        if self.weights_to_7_bit:
            parts.append(f"{self.weights_to_7_bit} Conv weights re-quantized to 7 bits (this CPU has no "
                         "VNNI: OpenVINO's int8 kernels would saturate)")
        if self.float_after_concat:
            parts.append(f"{self.float_after_concat} 1x1 Conv fed by a Concat run in float "
                         "(OpenVINO's u8 Concat there is wrong)")
        return "; ".join(parts) or "nothing changed"


def for_openvino_cpu(model: Any, *, saturating: bool) -> tuple[Any, QdqRewrite]:
    """``model`` (an onnx ModelProto, changed in place) with both rewrites (the first only
    when ``saturating``), and what was changed."""
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    floated = 0
    for conv in (node for node in convs if _pointwise(node, producer, initializers)):
        source = _dequantized_from(conv.input[0], producer)
        if source is not None and source in producer and producer[source].op_type == "Concat":
            conv.input[0] = source
            floated += 1
    seven_bit = 0
    if saturating:
        for conv in (node for node in convs if len(node.input) > 1):
            seven_bit += _weights_to_7_bit(producer.get(conv.input[1]), graph, initializers)
    if floated or seven_bit:
        _drop_unread(graph)
    return model, QdqRewrite(weights_to_7_bit=seven_bit, float_after_concat=floated)


def _pointwise(conv: Any, producer: dict[str, Any], initializers: dict[str, Any]) -> bool:
    """A 1x1 Conv of group 1 (the kernel from its attribute, else from its weight's shape)."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    kernel = list(attrs.get("kernel_shape", []))
    if not kernel and len(conv.input) > 1:
        weight = conv.input[1]
        dequantize = producer.get(weight)
        if dequantize is not None and dequantize.op_type == "DequantizeLinear":
            weight = dequantize.input[0]
        kernel = list(initializers[weight].dims[2:]) if weight in initializers else []
    return kernel == [1, 1] and attrs.get("group", 1) == 1


def _dequantized_from(tensor: str, producer: dict[str, Any]) -> str | None:
    """The float tensor behind ``tensor`` when it is DequantizeLinear(QuantizeLinear(x)), else None."""
    dequantize = producer.get(tensor)
    if dequantize is None or dequantize.op_type != "DequantizeLinear":
        return None
    quantize = producer.get(dequantize.input[0])
    return quantize.input[0] if quantize is not None and quantize.op_type == "QuantizeLinear" else None


def _weights_to_7_bit(dequantize: Any, graph: Any, initializers: dict[str, Any]) -> int:
    """Re-quantize the int8 weights that ``dequantize`` reads (per output channel) to
    [-64, 64] under new initializers; 1 when changed, 0 when not a quantized weight."""
    from onnx import TensorProto, helper, numpy_helper

    if dequantize is None or dequantize.op_type != "DequantizeLinear" or len(dequantize.input) < 2:
        return 0
    weight, scale = (initializers.get(name) for name in dequantize.input[:2])
    if weight is None or scale is None or weight.data_type != TensorProto.INT8:
        return 0
    q = numpy_helper.to_array(weight).astype(np.int32)
    s = numpy_helper.to_array(scale).astype(np.float32)
    axis = next((helper.get_attribute_value(a) for a in dequantize.attribute if a.name == "axis"), 1)
    if s.size > 1 and axis != 0:  # per-channel on another axis: not a Conv weight as exported
        return 0
    rows = q.reshape(s.size, -1)  # one row per scale: per output channel, or one for the tensor
    largest = np.abs(rows).max(axis=1)
    shrink = np.where(largest > SEVEN_BIT_MAX, SEVEN_BIT_MAX / np.maximum(largest, 1), 1.0)
    if np.all(shrink == 1.0):
        return 0
    new_q = np.clip(np.rint(rows * shrink[:, None]), -SEVEN_BIT_MAX, SEVEN_BIT_MAX).astype(np.int8).reshape(q.shape)
    new_s = (s.reshape(-1) / shrink).astype(np.float32).reshape(s.shape)
    # new names: an initializer may be shared, and the original stays for its other readers
    names = (f"{weight.name}__7bit_{dequantize.name}", f"{scale.name}__7bit_{dequantize.name}")
    graph.initializer.extend([numpy_helper.from_array(new_q, names[0]), numpy_helper.from_array(new_s, names[1])])
    dequantize.input[0], dequantize.input[1] = names
    return 1


def _drop_unread(graph: Any) -> None:
    """Remove the Quantize/DequantizeLinear nodes, then the initializers, that nothing reads
    any more (ONNX Runtime warns of each unread initializer)."""
    while True:
        read = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
        dead = [node for node in graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(output in read for output in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    for tensor in [t for t in graph.initializer if t.name not in read]:
        graph.initializer.remove(tensor)
