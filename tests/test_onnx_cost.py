"""Multiply-adds and bytes from ONNX Runtime's own shapes, against hand counts and torch.

Oracles: a hand-built graph whose counts are worked out below by hand, and edgesr's torch
``full`` counter (FlopCounterMode, an independent implementation) on the shipped OSFFNet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesr.benchmarks.onnx_cost import model_cost, node_costs


def small_graph(path: Path) -> Path:
    """X[1,4,6,5] -> Conv(6 out, groups 2, 3x3, pad 1) -> MatMul [5,7] -> Resize linear x2."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.random((6, 2, 3, 3), dtype=np.float32), "w")
    m = numpy_helper.from_array(rng.random((5, 7), dtype=np.float32), "m")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], group=2, pads=[1, 1, 1, 1], name="conv"),
         helper.make_node("MatMul", ["c", "m"], ["mm"], name="matmul"),
         helper.make_node("Resize", ["mm", "", "scales"], ["y"], mode="linear", name="resize")],
        "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w, m, scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_counts_match_the_hand_count(tmp_path: Path) -> None:
    nodes = {n.name: n for n in node_costs(small_graph(tmp_path / "s.onnx"), height=6, width=5)}
    # Conv: output 1*6*6*5 = 180 elements x (C_in/groups = 2) x 3 x 3 = 3240
    assert nodes["conv"].multi_adds == 3240
    # MatMul: output 1*6*6*7 = 252 elements x K = 5 = 1260
    assert nodes["matmul"].multi_adds == 1260
    # Resize linear: output 1*6*12*14 = 1008 elements x 4 = 4032
    assert nodes["resize"].multi_adds == 4032
    # Conv reads x (120) + w (108), writes 180 -> 408 floats = 1632 bytes fp32, 816 fp16
    assert nodes["conv"].bytes_moved("fp32") == 1632 and nodes["conv"].bytes_moved("fp16") == 816
    # MatMul reads 180 + 35, writes 252 -> 467 floats
    assert nodes["matmul"].bytes_moved("fp32") == 467 * 4


def test_a_size_scales_the_count(tmp_path: Path) -> None:
    path = small_graph(tmp_path / "s.onnx")
    small, large = model_cost(path, height=6, width=5), model_cost(path, height=12, width=5)
    assert small.multi_adds == 3240 + 1260 + 4032
    assert large.multi_adds == 2 * small.multi_adds  # every term is per output row here (width = K stays 5)


@pytest.mark.slow
def test_shipped_osffnet_matches_torch_full_count() -> None:
    from edgesr.complexity import measure
    from edgesr.models import create_model
    from edgesr.weights import shipped_onnx

    torch_count = measure(create_model("osffnet_x4"), scale=4)  # LR 320x180 for a 1280x720 output
    onnx_count = model_cost(shipped_onnx("osffnet_x4"), height=180, width=320)
    # The shipped file is the deployment form (edgesr.models.deploy), by hand from the training
    # form's counts: the first pointwise conv reads 3 channels instead of 8 stacked copies
    # (21 x 64 fewer per pixel); the 8 AEFD LayerNorms (2 per element, 64 channels) become
    # elementwise ops (counted 0) with their affine in the next conv; the 8 x 2 MLP Linear
    # layers (64 x 128 each) become 1x1 Conv nodes.
    pixels = 180 * 320
    folded_input, layer_norms, mlp = pixels * 21 * 64, pixels * 8 * 2 * 64, pixels * 8 * 2 * 64 * 128
    assert onnx_count.multi_adds == torch_count.full_multi_adds - folded_input - layer_norms
    # the ONNX file's Conv nodes are the paper's convolutions (bias adds not counted) + the MLPs
    assert onnx_count.by_op["Conv"]["multi_adds"] == torch_count.paper_nobias_multi_adds - folded_input + mlp
