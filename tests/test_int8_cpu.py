"""runtime.engines.int8_cpu, and ONNX Runtime's int8 convolution on CPUs whose default kernels
saturate.

Oracle: a hand computation in numpy of what the Q/DQ graph means (ONNX's QuantizeLinear and
DequantizeLinear: round half to even, clip to int8, multiply back). The graph is a 1x1
convolution with Q/DQ on its input, weights and output, which ONNX Runtime fuses into one
int8 kernel; its activations are shifted to u8 (+128), so two same-sign weights of 127 make a
product pair of 255 * 127 * 2 = 64770, past int16. On an AVX2 CPU without VNNI the default
session returned 0.0157 where the graph means 2.0 (and lkdn_x4 scored 7-11 dB instead of 33-35).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgesr.runtime.engines.int8_cpu import is_qdq_graph, saturating_int8_cpu  # noqa: E402
from edgesr.runtime.engines.ort_session import optimized_model_path, session_options  # noqa: E402

SCALE_X, SCALE_W, SCALE_Y = 1 / 127, 0.01, 4 / 127
WEIGHTS = np.array([[127, 127, 127], [127, -127, 127], [-127, -127, -127], [64, 32, -16]], np.int8)


def _one_conv_graph() -> onnx.ModelProto:
    tensors = [numpy_helper.from_array(np.float32(SCALE_X), "sx"), numpy_helper.from_array(np.int8(0), "zx"),
               numpy_helper.from_array(WEIGHTS.reshape(4, 3, 1, 1), "wq"),
               numpy_helper.from_array(np.full(4, SCALE_W, np.float32), "sw"),
               numpy_helper.from_array(np.zeros(4, np.int8), "zw"),
               numpy_helper.from_array(np.float32(SCALE_Y), "sy")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["w"], axis=0),
             helper.make_node("Conv", ["xd", "w"], ["yf"], kernel_shape=[1, 1]),
             helper.make_node("QuantizeLinear", ["yf", "sy", "zx"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "sy", "zx"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def _int8(values: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.rint(values / np.float32(scale)), -128, 127)  # np.rint: half to even, as ONNX


def _by_hand(x: np.ndarray) -> np.ndarray:
    products = np.einsum("ck,nkhw->nchw", WEIGHTS.astype(np.float64), _int8(x, SCALE_X))
    return _int8(products * SCALE_X * SCALE_W, SCALE_Y) * SCALE_Y


def test_the_unsaturated_session_computes_what_the_graph_says_where_int8_pairs_pass_int16() -> None:
    x = np.ones((1, 3, 4, 5), np.float32)  # int8 127 everywhere: the u8 side of every pair is 255
    x[0, :, 0, 0] = [0.5, -0.25, 0.03]
    options = session_options(ort, threads=1, spinning=False, log_severity=3, unsaturated_int8=True)
    session = ort.InferenceSession(_one_conv_graph().SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    got = session.run(["y"], {"x": x})[0]
    np.testing.assert_allclose(got, _by_hand(x), rtol=0, atol=1e-6)
    assert got[0, 0, 1, 1] == pytest.approx(121 * SCALE_Y)  # 3 * 127 * 0.01 = 3.81 = 120.97 steps of 4/127


@pytest.mark.parametrize(("flags", "saturating"), [
    ("fpu sse2 avx avx2 fma", True),  # vpmaddubsw: pairs of u8 x s8 products in saturating int16
    ("avx2 avx512f avx512_vnni", False),
    ("avx2 avx_vnni", False),
    ("avx2 amx_int8 amx_tile", False),
    (None, True),  # no flags line: assume the worst
])
def test_which_cpus_sum_int8_products_in_saturating_int16(flags: str | None, saturating: bool) -> None:
    cpuinfo = "processor\t: 0\n" + (f"flags\t\t: {flags}\n" if flags else "")
    assert saturating_int8_cpu(cpuinfo) is saturating


def test_an_int8_graph_is_told_from_its_bytes_and_its_int8_kernels_have_their_own_cached_graph(tmp_path: Path) -> None:
    int8 = tmp_path / "m_int8.onnx"
    onnx.save(_one_conv_graph(), str(int8))
    plain = _one_conv_graph()
    plain.graph.node.remove(plain.graph.node[0])
    assert is_qdq_graph(int8)
    fp32 = tmp_path / "m.onnx"
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])),
              str(fp32))
    assert not is_qdq_graph(fp32)
    # the optimised-graph cache keeps the fused and the exact form apart
    assert optimized_model_path(int8, ort, cache_root=tmp_path) != optimized_model_path(
        int8, ort, cache_root=tmp_path, unsaturated_int8=True)
