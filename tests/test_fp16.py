"""FP16 graphs (edgesr.export.fp16): float32 I/O, FP32 block list, strongly typed, accurate.

Tiny models here; the full-size OSFFNet x4 / LMFN x4 FP16-vs-FP32 checks are in
test_export.py (they share the full-size exports there).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")

from onnx import TensorProto  # noqa: E402

from edgesr.errors import ExportError  # noqa: E402
from edgesr.export.dsconv_function import dsconv_function_proto  # noqa: E402
from edgesr.export.dsconv_onnx import (  # noqa: E402
    dsconv_nodes,
    inline_dsconv_functions,
)
from edgesr.export.fp16 import fp16_from_onnx, mixed_precision_nodes  # noqa: E402
from edgesr.export.onnx_export import export_model, onnx_from_model, spec_for  # noqa: E402
from edgesr.export.parity import FP16_MIN_PSNR_DB, check_fp16_parity  # noqa: E402
from edgesr.metrics import psnr  # noqa: E402
from edgesr.models.registry import create_model  # noqa: E402
from edgesr.spec import DSCONV_DOMAIN, ModelSpec  # noqa: E402
from oracles import assert_checker_agrees, ort_sr  # noqa: E402

NORM_STATISTICS = {"ReduceMean", "Sqrt"}  # the deployment form squares with Mul, not Pow


@pytest.fixture(scope="module")
def fp32_graphs() -> dict[str, onnx.ModelProto]:
    out = {}
    for name in ("osffnet-tiny_x4", "lmfn-tiny_x4"):
        torch.manual_seed(0)
        model = create_model(name)
        out[name] = onnx_from_model(model, spec=spec_for(name, model=model), path=None)
    return out


def _ops(kept: list[str]) -> set[str]:
    """Op types of fp16_from_onnx's "name (OpType)" listing."""
    return {k.rsplit(" (", 1)[1].removesuffix(")") for k in kept}


def _types(model: onnx.ModelProto) -> dict[str, int]:
    g = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types.update({i.name: i.data_type for i in g.initializer})
    return types


def _lr(seed: int, shape=(2, 3, 19, 23)) -> np.ndarray:  # noqa: ANN001
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _assert_fp16_graph(fp16: onnx.ModelProto) -> None:
    for vi in [*fp16.graph.input, *fp16.graph.output]:
        assert vi.type.tensor_type.elem_type == TensorProto.FLOAT, vi.name
    assert any(i.data_type == TensorProto.FLOAT16 for i in fp16.graph.initializer)
    assert mixed_precision_nodes(fp16) == []  # every op sees one float type (TensorRT 11)
    onnx.checker.check_model(fp16, full_check=True)


def test_lmfn_fp16_keeps_dsconv_and_statistics_fp32(fp32_graphs) -> None:
    fp32 = fp32_graphs["lmfn-tiny_x4"]
    fp16, kept = fp16_from_onnx(fp32)
    _assert_fp16_graph(fp16)
    ops = _ops(kept)
    assert {"DynamicSnakeConv", "InstanceNormalization", "Resize"} | NORM_STATISTICS <= ops
    assert "Conv" not in ops and "Erf" not in ops  # the bulk of the work is float16
    # the custom node sees float32 inputs and its function body is untouched
    types = _types(fp16)
    for node in dsconv_nodes(fp16):
        assert {types[i] for i in node.input} == {TensorProto.FLOAT}, node.name
        assert types[node.output[0]] == TensorProto.FLOAT
    assert [f.SerializeToString() for f in fp16.functions] == [
        dsconv_function_proto(18).SerializeToString()
    ]
    # the offsets reach the sampler in float32: GroupNorm -> affine -> tanh stay float32
    assert "Tanh" in ops
    lr = _lr(0)
    result = check_fp16_parity(fp32, fp16, lr=lr, scale=4)
    assert assert_checker_agrees(result, ort_sr(fp32, lr), ort_sr(fp16, lr), fp16=True)


def test_osffnet_fp16_keeps_norms_and_cca_statistics_fp32(fp32_graphs) -> None:
    fp32 = fp32_graphs["osffnet-tiny_x4"]
    fp16, kept = fp16_from_onnx(fp32)
    _assert_fp16_graph(fp16)
    ops = _ops(kept)
    assert {"BatchNormalization", "GlobalAveragePool", "Resize"} | NORM_STATISTICS <= ops
    # CCA: x - mean and std + mean in float32 too (a Sub whose operand is a statistic)
    assert {"Sub", "Add"} <= ops
    assert all(not k.endswith("(Conv)") for k in kept)
    lr = _lr(1)
    result = check_fp16_parity(fp32, fp16, lr=lr, scale=4)
    assert assert_checker_agrees(result, ort_sr(fp32, lr), ort_sr(fp16, lr), fp16=True)


def test_fp16_arithmetic_in_reference_evaluator(fp32_graphs) -> None:
    """ONNX Runtime's CPU provider runs many float16 ops in float32; onnx's reference
    evaluator computes each op in its tensor type, so this measures true FP16 arithmetic."""
    from onnx.reference import ReferenceEvaluator

    fp32 = fp32_graphs["osffnet-tiny_x4"]
    fp16, _ = fp16_from_onnx(fp32)
    lr = _lr(2, (1, 3, 16, 16))
    ref = ReferenceEvaluator(fp32).run(None, {"lr": lr})[0]
    out = ReferenceEvaluator(fp16).run(None, {"lr": lr})[0]
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert psnr(out, ref, data_range=1.0) >= FP16_MIN_PSNR_DB


def test_inlined_graph_keeps_gridsample_and_coordinate_math_fp32(fp32_graphs) -> None:
    fp32 = inline_dsconv_functions(fp32_graphs["lmfn-tiny_x4"])
    fp16, kept = fp16_from_onnx(fp32)
    _assert_fp16_graph(fp16)
    ops = _ops(kept)
    assert {"GridSample", "Clip", "MatMul", "Where"} <= ops  # sampler + coordinate math
    types = _types(fp16)
    for node in fp16.graph.node:
        if node.op_type == "GridSample":
            assert {types[i] for i in node.input} == {TensorProto.FLOAT}
    lr = _lr(3)
    result = check_fp16_parity(fp32, fp16, lr=lr, scale=4)
    assert assert_checker_agrees(result, ort_sr(fp32, lr), ort_sr(fp16, lr), fp16=True)


def test_unsimplified_graph_converts_strongly_typed() -> None:
    """--no-simplify --fp16: the raw exporter graph shares merged initializers between
    float32 and float16 readers and computes weights with Identity/Unsqueeze nodes."""
    name = "lmfn-tiny_x4"
    torch.manual_seed(0)
    model = create_model(name)
    raw = onnx_from_model(model, spec=spec_for(name, model=model), path=None, simplify=False)
    fp16, kept = fp16_from_onnx(raw)
    _assert_fp16_graph(fp16)
    assert {"DynamicSnakeConv", "InstanceNormalization", "Tanh"} | NORM_STATISTICS <= _ops(kept)
    lr = _lr(4)
    result = check_fp16_parity(raw, fp16, lr=lr, scale=4)
    assert assert_checker_agrees(result, ort_sr(raw, lr), ort_sr(fp16, lr), fp16=True)


def _with_fp16_weights(fp16: onnx.ModelProto, change) -> onnx.ModelProto:  # noqa: ANN001
    """A copy whose largest float16 initializer (a conv weight) is ``change(values)``."""
    from onnx import numpy_helper

    changed = onnx.ModelProto()
    changed.CopyFrom(fp16)
    init = max((i for i in changed.graph.initializer if i.data_type == TensorProto.FLOAT16),
               key=lambda i: int(np.prod(i.dims)))
    init.CopyFrom(numpy_helper.from_array(change(numpy_helper.to_array(init)).astype(np.float16), init.name))
    return changed


@pytest.mark.parametrize(("change", "finite"), [(lambda w: w * 1.5, True), (lambda w: w + np.inf, False)],
                         ids=["weights x1.5", "weights inf"])
def test_check_fp16_parity_says_no_to_a_graph_that_differs(fp32_graphs, change, finite: bool) -> None:
    fp32 = fp32_graphs["osffnet-tiny_x4"]
    fp16, _ = fp16_from_onnx(fp32)
    lr = _lr(6, (1, 3, 16, 16))
    untouched = check_fp16_parity(fp32, fp16, lr=lr, scale=4)
    assert assert_checker_agrees(untouched, ort_sr(fp32, lr), ort_sr(fp16, lr), fp16=True)
    broken = _with_fp16_weights(fp16, change)
    result = check_fp16_parity(fp32, broken, lr=lr, scale=4)
    candidate = ort_sr(broken, lr)
    assert bool(np.isfinite(candidate).all()) == finite
    assert not assert_checker_agrees(result, ort_sr(fp32, lr), candidate, fp16=True)
    assert "FAILED" in result.line()


def test_fp16_input_is_refused(fp32_graphs) -> None:
    fp16, _ = fp16_from_onnx(fp32_graphs["osffnet-tiny_x4"])
    with pytest.raises(ExportError, match="already|float16|FP32"):
        fp16_from_onnx(fp16)


def test_export_model_fp16_inline_writes_checked_fp16_file(tmp_path) -> None:
    out = tmp_path / "lmfn_fp16.onnx"
    report = export_model("lmfn-tiny_x4", fp16=True, inline_functions=True, output=out)
    saved = onnx.load(str(out))
    meta = ModelSpec.from_metadata({p.key: p.value for p in saved.metadata_props}, source="t")
    assert meta.precision == report.precision == "fp16"
    assert not any(n.domain == DSCONV_DOMAIN for n in saved.graph.node) and not saved.functions
    assert mixed_precision_nodes(saved) == []
    # converted before inlining: the body (GridSample included) runs in float32
    types = _types(saved)
    grid = [n for n in saved.graph.node if n.op_type == "GridSample"]
    assert grid and all(types[n.input[0]] == TensorProto.FLOAT for n in grid)
    assert [(r.reference, r.candidate) for r in report.parity] == [
        ("torch", "onnx fp32"), ("torch", "onnx fp32"),
        ("onnx fp32", "onnx fp16"), ("onnx fp32", "onnx fp16"),
    ]
    assert all(r.passed for r in report.parity)
    assert report.fp32_op_counts["DynamicSnakeConv"] == len(
        [k for k in report.fp32_nodes if k.endswith("(DynamicSnakeConv)")]
    ) > 0


def test_export_model_fp16_check_runs_each_graph_once_per_input(tmp_path, monkeypatch) -> None:
    """The FP16 check compares against the FP32 outputs of the torch-vs-ONNX check: per
    check input one FP32 ONNX run and one FP16 run, not a second FP32 run."""
    import edgesr.export.parity as parity

    runs = []
    real_run = parity.run_onnx

    def counting_run(session, lr):  # noqa: ANN001, ANN202
        runs.append(lr.shape)
        return real_run(session, lr)

    monkeypatch.setattr(parity, "run_onnx", counting_run)
    report = export_model("osffnet-tiny_x4", fp16=True, output=tmp_path / "o.onnx")
    assert [r.candidate for r in report.parity].count("onnx fp16") == len(report.parity) // 2 > 0
    assert len(runs) == len(report.parity)
    assert report.precision == report.spec.precision == "fp16"
    assert sum(report.fp32_op_counts.values()) == len(report.fp32_nodes) > 0
