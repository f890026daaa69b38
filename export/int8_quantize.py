"""An FP32 ONNX graph to a QDQ INT8 graph with ONNX Runtime's static quantization.

Why ONNX Runtime's tool and not NNCF: it writes standard ONNX QuantizeLinear/DequantizeLinear
pairs that every consumer reads as they are (ONNX Runtime's CPU, QNN and NNAPI providers,
OpenVINO, TensorRT's explicit quantization), it is already an edgesr dependency (the cpu
extra), and it quantizes the ONNX file we ship rather than a torch model that would have to
be exported again. NNCF's ONNX backend writes the same QDQ format but tunes its defaults for
OpenVINO (asymmetric u8 activations, which TensorRT refuses: it needs zero-point 0).

Settings, all for TensorRT's explicit quantization (and fine for the others):

* S8S8: int8 activations and int8 weights, symmetric, zero-point 0 (TensorRT supports only
  symmetric quantization; u8 activations also saturate on x86 without VNNI).
* per-channel weights on the output-channel axis 0 of each Conv; per-tensor activations.
* only Conv is quantized (its input activation and its weight); biases stay float
  (``QuantizeBias=False``: TensorRT's DequantizeLinear takes no int32 input and fuses the
  float bias into the INT8 convolution itself). Elementwise ops, LayerNorm / CCA statistics,
  GELU and Sigmoid run float between the convolutions, as TensorRT's placement advice says.
* DepthToSpace (the pixel shuffle, absent from ONNX Runtime's default QDQ op list) stays float
  on purpose: it moves data without computing, so INT8 there saves nothing, and putting
  Q/DQ around it would round the image itself to 8 bits (the tail conv's output feeds it);
  TensorRT runs it as a shuffle layer in whatever precision it gets.
* the output is clipped to [0, 1] (a float Clip after the pixel shuffle): quantization
  error must not leave the valid range.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

from edgesr.export.int8_calib import TileReader
from edgesr.spec import OUTPUT_NAME

QUANTIZED_OPS = ("Conv",)
_EXTRA_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "OpTypesToExcludeOutputQuantization": ["Conv"],  # TensorRT: outputs of weighted ops stay float
    "DedicatedQDQPair": True,  # a tensor read by a Conv and a float op: only the Conv reads the DQ
    "QDQOpTypePerChannelSupportToAxis": {"Conv": 0},
}


def clip_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its ``sr`` output clipped to [0, 1] by a final float Clip node."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    raw = f"{OUTPUT_NAME}_unclipped"
    for node in out.graph.node:
        node.output[:] = [raw if name == OUTPUT_NAME else name for name in node.output]
    lo, hi = "sr_clip_min", "sr_clip_max"
    out.graph.initializer.extend([onnx.numpy_helper.from_array(np.array(0, np.float32), lo),
                                  onnx.numpy_helper.from_array(np.array(1, np.float32), hi)])
    out.graph.node.append(helper.make_node("Clip", [raw, lo, hi], [OUTPUT_NAME],
                                           name="/output_clip/Clip"))
    return out


def float_outside_conv(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every reader of an activation DQ other than a Conv data input reads the float tensor
    again, and Q/DQ nodes left without readers are removed. ONNX Runtime's quantizer gives a
    tensor one Q/DQ pair for all its readers even with ``DedicatedQDQPair`` in some places
    (LKDN's attention Mul reads the tensor its pw Conv quantizes); TensorRT would run that
    Mul on rounded values and leave the pair unfused."""
    producer = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear" and not (node.op_type == "Conv" and index == 0):
                node.input[index] = q.input[0]
    _drop_unread(model, ("QuantizeLinear", "DequantizeLinear"))
    return model


def _drop_unread(model: onnx.ModelProto, op_types: tuple[str, ...]) -> None:
    outputs = {o.name for o in model.graph.output}
    while True:
        read = {name for n in model.graph.node for name in n.input} | outputs
        dead = [n for n in model.graph.node if n.op_type in op_types and not set(n.output) & read]
        if not dead:
            return
        for node in dead:
            model.graph.node.remove(node)


def quantize_qdq(fp32: onnx.ModelProto, tiles: list[np.ndarray], *, cache: Path,
                 keep_float: list[str] = ()) -> onnx.ModelProto:
    """The QDQ graph of ``fp32`` calibrated (MinMax) on ``tiles``; Conv nodes named in
    ``keep_float`` stay float. ``cache``: ONNX Runtime's calibration cache (JSON), written
    by the first call, read by the next ones (one calibration for the whole sensitivity
    pass); it must be in a private folder of this run."""
    with tempfile.TemporaryDirectory(prefix="edgesr-int8-") as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        onnx.save(fp32, source)
        quantize_static(
            str(source), str(target), TileReader(tiles), quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True, reduce_range=False,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=list(keep_float), calibrate_method=CalibrationMethod.MinMax,
            extra_options=dict(_EXTRA_OPTIONS), calibration_cache_path=str(cache),
        )
        return clip_output(float_outside_conv(onnx.load(str(target))))
