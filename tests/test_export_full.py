"""PyTorch -> ONNX export of the full-size OSFFNet x4 and LMFN x4, where the numbers matter:
the exact parameter count and FP32/FP16 parity on a real photo crop. Real exporter, onnxsim
and ONNX Runtime (no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgesr.export.dsconv_onnx import dsconv_nodes  # noqa: E402
from edgesr.export.fp16 import fp16_from_onnx, mixed_precision_nodes  # noqa: E402
from edgesr.export.onnx_export import export_model, onnx_from_model, spec_for  # noqa: E402
from edgesr.export.graph_tidy import float_param_count  # noqa: E402
from edgesr.export.parity import (  # noqa: E402
    check_fp16_parity,
    check_parity,
    onnx_session,
    photo_crop,
)
from edgesr.models.registry import count_params  # noqa: E402
from edgesr.ops.dsconv import DSConv  # noqa: E402
from edgesr.weights_io import save_weights  # noqa: E402
from export_util import perturbed, seeded_model  # noqa: E402
from oracles import assert_checker_agrees, ort_sr, torch_sr  # noqa: E402


@pytest.fixture(scope="module")
def photo64() -> np.ndarray:
    crop = photo_crop(size_px=64)
    if crop is None:
        pytest.skip("scikit-image is not installed (no real photo)")
    return crop


def fp32_and_fp16_parity(model: torch.nn.Module, proto: onnx.ModelProto, photo: np.ndarray) -> tuple:
    """The exported graph against the torch model (FP32) and its FP16 conversion against the
    FP32 graph, each judged by edgesr's checker and by the oracles; returns (fp16 graph, the
    nodes kept in FP32)."""
    session = onnx_session(proto)
    fp32 = check_parity(model, session, lr=photo, scale=4, label="photo crop")
    onnx_fp32 = ort_sr(proto, photo)
    assert assert_checker_agrees(fp32, torch_sr(model, photo), onnx_fp32, fp16=False)
    fp16, kept = fp16_from_onnx(proto)
    half = check_fp16_parity(session, fp16, lr=photo, scale=4, label="photo crop")
    assert assert_checker_agrees(half, onnx_fp32, ort_sr(fp16, photo), fp16=True)
    return fp16, kept


@pytest.mark.slow
def test_full_osffnet_x4_params_and_fp32_fp16_parity(tmp_path, photo64) -> None:
    name = "osffnet_x4"
    model = perturbed(seeded_model(name), seed=3)
    weights = tmp_path / "osffnet_x4.safetensors"
    save_weights(model, weights)
    report = export_model(name, weights=weights, output=tmp_path / "o.onnx", check=False)
    assert report.weights_source.startswith("file ")
    proto = onnx.load(str(report.path))
    # Initializers hold every trainable parameter but lambda_8 (OSFFNet's SFGC has 8 scalars,
    # only lambda_1..7 scale an input: the exporter drops the unused one) plus the
    # BatchNorm running mean and variance (2 x 64 x 8 buffers). Exact, after onnxsim too.
    torch_params = count_params(model)
    assert torch_params == 536_504 == report.torch_params
    bn_buffers = sum(b.numel() for k, b in model.named_buffers() if "running_" in k)
    assert bn_buffers == 1024
    training_form = onnx_from_model(model, spec=spec_for(name, model=model), path=None, deployment=False)
    assert float_param_count(training_form) == torch_params - 1 + bn_buffers
    # The deployment form (the default) folds the 8 stacked input copies into one 3-channel
    # pointwise conv (24 -> 3 input channels of 64 filters: 21 x 64 fewer) and each AEFD
    # LayerNorm's affine into the MLP's first conv (8 blocks x 2 x 64 fewer).
    assert float_param_count(proto) == report.params == torch_params - 1 + bn_buffers - 21 * 64 - 8 * 2 * 64

    fp16, kept = fp32_and_fp16_parity(model, proto, photo64)
    assert mixed_precision_nodes(fp16) == []
    assert {"BatchNormalization", "GlobalAveragePool", "ReduceMean", "Sqrt"} <= {
        k.rsplit(" (", 1)[1].rstrip(")") for k in kept
    }


@pytest.mark.slow
def test_full_lmfn_x4_fp32_and_fp16_parity(photo64) -> None:
    name = "lmfn_x4"
    model = seeded_model(name)
    proto = onnx_from_model(model, spec=spec_for(name, model=model), path=None)
    assert len(dsconv_nodes(proto)) == sum(isinstance(m, DSConv) for m in model.modules())
    _, kept = fp32_and_fp16_parity(model, proto, photo64)
    assert any(k.endswith("(DynamicSnakeConv)") for k in kept)
    assert any(k.endswith("(InstanceNormalization)") for k in kept)
