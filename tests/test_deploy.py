"""The deployment form (edgesr.models.deploy, export.deploy_graph): same function, faster graph.

Oracles: the training-form module (the function the weights were trained as; the issue's
parity gate), a hand-written numpy LayerNorm + MLP, math.erf for GELU, and ONNX Runtime's own
optimised graph (which says whether it fused a GELU).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgesr.export.deploy_graph import gelu_fusable
from edgesr.export.simplify import simplify_onnx
from edgesr.models.deploy import ChannelMLP, deploy
from edgesr.models.registry import create_model

TINY = ["osffnet-tiny_x4", "lmfn-tiny_x2", "lkdn-tiny_x3", "bsrn-tiny_x2", "imdn-tiny_x2"]
STACKED = ("osffnet", "lmfn", "lkdn", "bsrn")  # the families whose input is stacked


@pytest.mark.parametrize("name", TINY)
def test_deployment_form_computes_the_training_form(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    for p in model.parameters():  # non-trivial affines and biases, not the identity init
        p.data.add_(0.05 * torch.randn_like(p))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    deployed = deploy(model)
    x = torch.rand(2, 3, 37, 29)
    with torch.no_grad():
        expected, got = model(x), deployed(x)
    assert torch.allclose(got, expected, atol=2e-5, rtol=0)
    if name.startswith(STACKED):  # input stacking folded into a 3-channel first conv
        assert deployed.copies == 1 and deployed.shallow.pw.weight.shape[1] == 3
    assert not any(isinstance(m, torch.nn.Linear) for m in deployed.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules()) == name.startswith("osffnet")


def test_full_size_osffnet_ablation_without_stacking_or_attention_deploys() -> None:
    """osffnet-000_x4: no OISI (nothing to fold), no SFGC, no MFDF; full size."""
    model = create_model("osffnet-000_x4")
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        assert torch.allclose(deploy(model)(x), model(x), atol=2e-5, rtol=0)


def test_channel_mlp_matches_layernorm_and_mlp_written_in_numpy() -> None:
    torch.manual_seed(1)
    norm = torch.nn.LayerNorm(8)
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 8))
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(1, 8, 5, 6)
    with torch.no_grad():
        got = ChannelMLP(norm, mlp)(x).numpy()
    pixels = x.numpy().transpose(0, 2, 3, 1).astype(np.float64)  # NHWC, per-pixel maths
    mean = pixels.mean(-1, keepdims=True)
    var = ((pixels - mean) ** 2).mean(-1, keepdims=True)
    normed = (pixels - mean) / np.sqrt(var + 1e-5) * norm.weight.detach().numpy() + norm.bias.detach().numpy()
    w1, b1 = mlp[0].weight.detach().numpy(), mlp[0].bias.detach().numpy()
    w2, b2 = mlp[2].weight.detach().numpy(), mlp[2].bias.detach().numpy()
    hidden = normed @ w1.T + b1
    gelu = hidden * 0.5 * (1 + np.vectorize(math.erf)(hidden / math.sqrt(2)))
    expected = (pixels + gelu @ w2.T + b2).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def _exporter_gelu_graph() -> onnx.ModelProto:
    """Conv -> GELU in the TorchScript exporter's form -> Conv (the case ORT failed to fuse)."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(8, 4, 1, 1)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(4, 8, 1, 1)).astype(np.float32), "w2")
    consts = [numpy_helper.from_array(np.array(v, np.float32), n)
              for n, v in (("root2", math.sqrt(2)), ("one", 1.0), ("half", 0.5))]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"]),
        helper.make_node("Div", ["h", "root2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]),
        helper.make_node("Mul", ["h", "a"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["g"]),
        helper.make_node("Conv", ["g", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 7])], [w1, w2, *consts])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _optimised_ops(model: onnx.ModelProto, tmp_path) -> list[str]:  # noqa: ANN001
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]


def test_gelu_pass_lets_onnx_runtime_fuse_and_keeps_the_values(tmp_path) -> None:  # noqa: ANN001
    simplified, _ = simplify_onnx(_exporter_gelu_graph())
    assert "Erf" in _optimised_ops(simplified, tmp_path)  # the defect: onnxsim moved the 0.5
    model = _exporter_gelu_graph()
    assert gelu_fusable(model) == 1
    onnx.checker.check_model(model, full_check=True)
    model, _ = simplify_onnx(model)
    ops = _optimised_ops(model, tmp_path)
    assert "Gelu" in ops and "Erf" not in ops
    x = np.random.default_rng(1).normal(size=(1, 4, 6, 7)).astype(np.float32)
    (y,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    weights = {t.name: numpy_helper.to_array(t) for t in _exporter_gelu_graph().graph.initializer}
    w1 = weights["w1"].reshape(8, 4).astype(np.float64)
    w2 = weights["w2"].reshape(4, 8).astype(np.float64)
    h = np.einsum("oc,nchw->nohw", w1, x)
    g = h * 0.5 * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
    np.testing.assert_allclose(y, np.einsum("oc,nchw->nohw", w2, g), atol=1e-5)


def test_gelu_pass_leaves_other_erf_uses_alone() -> None:
    model = _exporter_gelu_graph()
    model.graph.node[5].input[1] = "one"  # times 1.0, not 0.5: not a GELU
    assert gelu_fusable(model) == 0
