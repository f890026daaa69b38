"""DSConv as one ``edgesr::DynamicSnakeConv`` ONNX node with a standard-op local function."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from edgesr.errors import ExportError  # noqa: E402
from edgesr.export.dsconv_function import dsconv_function_proto  # noqa: E402
from edgesr.export.dsconv_onnx import (  # noqa: E402
    DSCONV_CUSTOM_OPSETS,
    attach_dsconv_function,
    dsconv_as_custom_op,
    dsconv_nodes,
    inline_dsconv_functions,
)
from edgesr.ops.dsconv import DSConv, dynamic_snake_conv  # noqa: E402
from edgesr.spec import DSCONV_DOMAIN, DSCONV_OP_TYPE, DSCONV_OP_VERSION  # noqa: E402

PROVIDERS = ["CPUExecutionProvider"]
TOL = 1e-4


class TwoSnakes(nn.Module):
    """Two DSConvs (morph 0 / K=3 and morph 1 / K=5) with a residual."""

    def __init__(self) -> None:
        super().__init__()
        self.a = DSConv(in_channels=4, out_channels=6, kernel_size=3, morph=0, extend_scope=2.0)
        self.b = DSConv(in_channels=6, out_channels=4, kernel_size=5, morph=1, extend_scope=1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + x


def _export(model: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation, tracer notes
        with dsconv_as_custom_op():
            torch.onnx.export(
                model,
                (example,),
                buffer,
                dynamo=False,
                opset_version=18,
                input_names=["lr"],
                output_names=["sr"],
                dynamic_axes={"lr": {0: "N", 2: "H", 3: "W"}, "sr": {0: "N", 2: "H", 3: "W"}},
                custom_opsets=DSCONV_CUSTOM_OPSETS,
            )
    return attach_dsconv_function(onnx.load_from_string(buffer.getvalue()))


@pytest.fixture(scope="module")
def exported() -> tuple[nn.Module, onnx.ModelProto, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    model = TwoSnakes()
    with torch.no_grad():  # stronger offsets so that points cross the border
        for m in (model.a, model.b):
            m.offset_norm.weight.uniform_(1.0, 3.0)
    model.eval()
    proto = _export(model, torch.rand(1, 4, 9, 7))
    x = torch.rand(2, 4, 11, 13)  # a different batch and size than the export
    with torch.no_grad():
        expected = model(x).numpy()
    return model, proto, x.numpy(), expected


def _run_ort(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=PROVIDERS)
    return session.run(None, {"lr": x})[0]


def test_one_node_per_dsconv_and_one_function(exported) -> None:  # type: ignore[no-untyped-def]
    _, proto, _, _ = exported
    nodes = dsconv_nodes(proto)
    assert len(nodes) == 2
    attrs = [{a.name: helper.get_attribute_value(a) for a in n.attribute} for n in nodes]
    assert [(a["kernel_size"], a["morph"]) for a in attrs] == [(3, 0), (5, 1)]
    assert attrs[0]["extend_scope"] == pytest.approx(2.0)
    assert attrs[1]["extend_scope"] == pytest.approx(1.5)
    for node in nodes:
        assert node.domain == DSCONV_DOMAIN and node.op_type == DSCONV_OP_TYPE
        assert len(node.input) == 4 and all(node.input)
    # nothing of the decomposition leaks into the main graph
    assert not [n for n in proto.graph.node if n.op_type in ("GridSample", "Einsum", "ScatterND")]
    functions = [(f.domain, f.name) for f in proto.functions]
    assert functions == [(DSCONV_DOMAIN, DSCONV_OP_TYPE)]
    assert {(o.domain, o.version) for o in proto.opset_import} == {
        ("", 18), (DSCONV_DOMAIN, DSCONV_OP_VERSION)
    }
    function = proto.functions[0]
    assert list(function.attribute) == ["kernel_size", "morph", "extend_scope"]
    assert "GridSample" in {n.op_type for n in function.node}
    refs = {a.ref_attr_name for n in function.node for a in n.attribute if a.ref_attr_name}
    assert refs == {"kernel_size", "morph", "extend_scope"}
    # the custom outputs carry the input's symbolic N/H/W, not fresh exporter names
    dims = {
        vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in proto.graph.value_info
    }
    assert dims[nodes[0].output[0]] == ["N", 6, "H", "W"]


def test_checker_full(exported) -> None:  # type: ignore[no-untyped-def]
    _, proto, _, _ = exported
    onnx.checker.check_model(proto, full_check=True)


def test_onnxruntime_matches_torch_at_another_size(exported) -> None:  # type: ignore[no-untyped-def]
    _, proto, x, expected = exported
    out = _run_ort(proto, x)
    assert out.shape == expected.shape == (2, 4, 11, 13)
    assert np.abs(out - expected).max() < TOL


def test_reference_evaluator_matches_torch(exported) -> None:  # type: ignore[no-untyped-def]
    _, proto, x, expected = exported
    out = ReferenceEvaluator(proto).run(None, {"lr": x[:1]})[0]
    assert np.abs(out - expected[:1]).max() < TOL


def test_inlined_model_runs_and_matches(exported) -> None:  # type: ignore[no-untyped-def]
    _, proto, x, expected = exported
    inlined = inline_dsconv_functions(proto)
    assert not dsconv_nodes(inlined)
    assert not any(n.domain == DSCONV_DOMAIN for n in inlined.graph.node)
    assert not inlined.functions
    assert all(o.domain != DSCONV_DOMAIN for o in inlined.opset_import)
    assert sum(n.op_type == "GridSample" for n in inlined.graph.node) == 2
    onnx.checker.check_model(inlined, full_check=True)
    assert np.abs(_run_ort(inlined, x) - expected).max() < TOL
    # the input model is left untouched
    assert len(dsconv_nodes(proto)) == 2 and len(proto.functions) == 1


def test_attach_is_idempotent(exported) -> None:  # type: ignore[no-untyped-def]
    _, proto, _, _ = exported
    again = attach_dsconv_function(proto)
    assert len(again.functions) == 1
    assert sum(o.domain == DSCONV_DOMAIN for o in again.opset_import) == 1
    assert again.functions[0] == proto.functions[0]


def test_onnxsim_keeps_node_and_function(exported) -> None:  # type: ignore[no-untyped-def]
    onnxsim = pytest.importorskip("onnxsim")
    _, proto, x, expected = exported
    simplified, ok = onnxsim.simplify(proto)
    assert ok
    assert len(dsconv_nodes(simplified)) == 2
    assert list(simplified.functions) == list(proto.functions)  # body byte-identical
    onnx.checker.check_model(simplified, full_check=True)
    assert np.abs(_run_ort(simplified, x) - expected).max() < TOL


def test_onnxslim_keeps_node_and_function(exported) -> None:  # type: ignore[no-untyped-def]
    onnxslim = pytest.importorskip("onnxslim")
    _, proto, x, expected = exported
    slimmed = onnxslim.slim(proto)
    assert len(dsconv_nodes(slimmed)) == 2
    # onnxslim re-sorts the body and hoists constants, but keeps one working function
    assert [(f.domain, f.name) for f in slimmed.functions] == [(DSCONV_DOMAIN, DSCONV_OP_TYPE)]
    assert np.abs(_run_ort(slimmed, x) - expected).max() < TOL


class SameKernelTwice(nn.Module):
    """Two DSConvs with the same K on branches of one input, one of them called twice
    (regression: a tensor cached across calls broke the tracer with 'unordered_map::at')."""

    def __init__(self) -> None:
        super().__init__()
        self.a = DSConv(in_channels=2, out_channels=2, kernel_size=3, morph=0)
        self.b = DSConv(in_channels=2, out_channels=2, kernel_size=3, morph=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = torch.chunk(x, 2, dim=1)
        return torch.cat([self.a(left) + self.a(right), self.b(right)], dim=1)


def test_same_kernel_size_in_several_calls_exports() -> None:
    torch.manual_seed(2)
    model = SameKernelTwice().eval()
    proto = _export(model, torch.rand(1, 4, 5, 8))
    assert len(dsconv_nodes(proto)) == 3
    x = torch.rand(1, 4, 9, 6)
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(_run_ort(proto, x.numpy()) - expected).max() < TOL


def test_context_manager_leaves_eager_code_alone() -> None:
    torch.manual_seed(3)
    module = DSConv(in_channels=3, out_channels=4, kernel_size=3, morph=1)
    x = torch.rand(1, 3, 6, 5)
    reference = module(x)
    with dsconv_as_custom_op():
        inside = module(x)
        inside.sum().backward()  # still differentiable: not the export-only Function
    assert torch.equal(reference, inside)
    assert module.offset_conv.weight.grad is not None


def _single_node_model(opset: int, elem_type: int, k: int, morph: int, scope: float):  # type: ignore[no-untyped-def]
    kernel = [3, 2, k, 1] if morph == 0 else [3, 2, 1, k]
    node = helper.make_node(
        DSCONV_OP_TYPE, ["x", "offset", "weight", "bias"], ["y"], domain=DSCONV_DOMAIN,
        kernel_size=k, morph=morph, extend_scope=scope,
    )
    graph = helper.make_graph(
        [node],
        "dsconv",
        [
            helper.make_tensor_value_info("x", elem_type, ["N", 2, "H", "W"]),
            helper.make_tensor_value_info("offset", elem_type, ["N", 2 * k, "H", "W"]),
            helper.make_tensor_value_info("weight", elem_type, kernel),
            helper.make_tensor_value_info("bias", elem_type, [3]),
        ],
        [helper.make_tensor_value_info("y", elem_type, ["N", 3, "H", "W"])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DSCONV_DOMAIN, 1)],
        ir_version=10,  # what ONNX Runtime 1.18+ reads; onnx's newest IR may be ahead of it
    )
    return attach_dsconv_function(model)


@pytest.mark.parametrize(("opset", "k", "morph"), [(17, 5, 0), (18, 3, 1), (20, 7, 0)])
def test_single_node_across_opsets_and_fp16(opset: int, k: int, morph: int) -> None:
    g = torch.Generator().manual_seed(opset)
    x = torch.rand(1, 2, 6, 9, generator=g)
    offset = torch.tanh(2 * torch.randn(1, 2 * k, 6, 9, generator=g))
    weight = torch.randn(*((3, 2, k, 1) if morph == 0 else (3, 2, 1, k)), generator=g) / k
    bias = torch.randn(3, generator=g)
    expected = dynamic_snake_conv(
        x, offset, weight, bias, kernel_size=k, morph=morph, extend_scope=1.7
    ).numpy()
    feeds = {"x": x.numpy(), "offset": offset.numpy(), "weight": weight.numpy(),
             "bias": bias.numpy()}

    model = _single_node_model(opset, TensorProto.FLOAT, k, morph, 1.7)
    onnx.checker.check_model(model, full_check=True)
    out = ort.InferenceSession(model.SerializeToString(), providers=PROVIDERS).run(None, feeds)[0]
    assert np.abs(out - expected).max() < TOL

    # float16 I/O: the body computes in float32 and casts back
    model16 = _single_node_model(opset, TensorProto.FLOAT16, k, morph, 1.7)
    feeds16 = {name: value.astype(np.float16) for name, value in feeds.items()}
    out16 = ort.InferenceSession(model16.SerializeToString(), providers=PROVIDERS).run(
        None, feeds16
    )[0]
    assert out16.dtype == np.float16
    assert np.abs(out16.astype(np.float32) - expected).max() < 2e-2


def test_errors() -> None:
    with pytest.raises(ExportError, match="opset"):
        dsconv_function_proto(15)
    model = _single_node_model(18, TensorProto.FLOAT, 3, 0, 1.0)
    del model.functions[:]
    with pytest.raises(ExportError, match="attach_dsconv_function"):
        inline_dsconv_functions(model)
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    del bad.graph.node[0].attribute[:]
    with pytest.raises(ExportError, match="kernel_size"):
        attach_dsconv_function(bad)
