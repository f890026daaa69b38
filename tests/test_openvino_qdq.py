"""runtime.engines.openvino_qdq: the INT8 graph that OpenVINO's CPU plugin compiles.

Oracles: hand computations (the 7-bit weights) and ONNX Runtime's reference
QDQ arithmetic on the same graph. The OpenVINO tests run in a forked child (pytest-forked), as
in test_int8.py.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgesr.runtime.engines.int8_cpu import saturating_int8_cpu  # noqa: E402
from edgesr.runtime.engines.openvino_qdq import for_openvino_cpu  # noqa: E402


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name)


def _qdq_weight(name: str, q: np.ndarray, scale: np.ndarray) -> tuple[list, onnx.NodeProto]:
    tensors = [_const(f"{name}_q", q.astype(np.int8)), _const(f"{name}_s", scale.astype(np.float32)),
               _const(f"{name}_z", np.zeros(len(scale), np.int8))]
    node = helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [name], axis=0,
                            name=f"{name}_dq")
    return tensors, node


def _concat_graph(consumer: str, weight_q: np.ndarray | None = None) -> onnx.ModelProto:
    """x -Q/DQ-> two 1x1 convs -> Concat -Q/DQ-> a 1x1 or depthwise 3x3 conv, as the export
    writes them (S8 activations and per-channel weights, zero-points 0)."""
    rng = np.random.default_rng(3)
    tensors, nodes = [_const("sx", np.float32(1 / 127)), _const("sa", np.float32(0.02)), _const("z", np.int8(0))], []
    nodes += [helper.make_node("QuantizeLinear", ["x", "sx", "z"], ["xq"]),
              helper.make_node("DequantizeLinear", ["xq", "sx", "z"], ["xd"])]
    for branch in ("a", "b"):
        q = weight_q if weight_q is not None and branch == "a" else rng.integers(-127, 128, (8, 3, 1, 1))
        more, dq = _qdq_weight(f"w{branch}", q, np.full(8, 0.004))
        tensors += more
        nodes += [dq, helper.make_node("Conv", ["xd", f"w{branch}"], [branch])]
    nodes += [helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
              helper.make_node("QuantizeLinear", ["cat", "sa", "z"], ["catq"]),
              helper.make_node("DequantizeLinear", ["catq", "sa", "z"], ["catd"])]
    if consumer == "1x1":
        more, dq = _qdq_weight("wc", rng.integers(-127, 128, (8, 16, 1, 1)), np.full(8, 0.003))
        conv = helper.make_node("Conv", ["catd", "wc"], ["y"], name="consumer")
    else:
        more, dq = _qdq_weight("wc", rng.integers(-127, 128, (16, 1, 3, 3)), np.full(16, 0.003))
        conv = helper.make_node("Conv", ["catd", "wc"], ["y"], group=16, pads=[1, 1, 1, 1], name="consumer")
    tensors += more
    nodes += [dq, conv]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 24, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def test_full_range_weights_become_7_bit_with_the_same_values_to_half_a_step() -> None:
    q = np.zeros((8, 3, 1, 1), np.int32)
    q[0, :, 0, 0] = [127, -64, 10]  # full range: 64/127 of each, rounded (hand: 64, -32, 5)
    q[1, :, 0, 0] = [64, -3, 0]  # already within 7 bits: untouched
    model, rewrite = for_openvino_cpu(_concat_graph("dw", weight_q=q), saturating=True)
    assert rewrite.weights_to_7_bit == 3  # both branch convs and the consumer
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dq = next(n for n in model.graph.node if n.name == "wa_dq")
    new_q, new_s = tensors[dq.input[0]], tensors[dq.input[1]]
    assert new_q[0, :, 0, 0].tolist() == [64, -32, 5] and new_q[1, :, 0, 0].tolist() == [64, -3, 0]
    assert new_s[0] == pytest.approx(0.004 * 127 / 64) and new_s[1] == pytest.approx(0.004)
    assert np.abs(new_q).max() <= 64
    assert np.all(np.abs(new_q * new_s[:, None, None, None] - q * 0.004) <= new_s[:, None, None, None] / 2 + 1e-9)


def test_a_vnni_cpu_keeps_8_bit_weights() -> None:
    _, rewrite = for_openvino_cpu(_concat_graph("1x1"), saturating=False)
    assert (rewrite.weights_to_7_bit, rewrite.float_after_concat) == (0, 1)


def test_only_a_pointwise_conv_after_a_concat_reads_it_in_float() -> None:
    model, rewrite = for_openvino_cpu(_concat_graph("1x1"), saturating=False)
    consumer = next(n for n in model.graph.node if n.name == "consumer")
    assert rewrite.float_after_concat == 1 and consumer.input[0] == "cat"
    assert not any(n.output[0] in ("catq", "catd") for n in model.graph.node)  # the dead Q/DQ pair is gone
    _, rewrite = for_openvino_cpu(_concat_graph("dw"), saturating=False)
    assert rewrite.float_after_concat == 0


@pytest.mark.forked
@pytest.mark.parametrize("consumer", ["1x1", "dw"])
def test_openvino_runs_the_rewritten_graph_as_onnx_runtime_does(consumer: str) -> None:
    ov = pytest.importorskip("openvino")
    from skimage.metrics import peak_signal_noise_ratio

    x = np.random.default_rng(0).random((1, 3, 24, 32), dtype=np.float32)
    original = _concat_graph(consumer)
    rewritten, _ = for_openvino_cpu(_concat_graph(consumer), saturating=saturating_int8_cpu())
    ran = {}
    for name, model in (("original", original), ("rewritten", rewritten)):
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ran[f"ort {name}"] = session.run(["y"], {"x": x})[0].astype(np.float64)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(rewritten.SerializeToString(), ov.Tensor(np.empty(0, np.uint8))),
                                  "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    on_openvino = compiled({"x": x})[compiled.outputs[0]].astype(np.float64)
    span = float(np.ptp(ran["ort original"]))
    # the same graph on both: OpenVINO's int8 kernels and ORT's reference arithmetic agree
    # (measured before the rewrite, with a 1x1 consumer: 17-19 dB)
    assert peak_signal_noise_ratio(ran["ort rewritten"], on_openvino, data_range=span) >= 60.0
    # and the rewrite only removes quantization noise: close to the file as exported
    assert peak_signal_noise_ratio(ran["ort original"], on_openvino, data_range=span) >= 35.0
