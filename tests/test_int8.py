"""edgesr-export --int8 on a tiny model: a QDQ graph that runs on ONNX Runtime and OpenVINO,
whose stated quality is recomputed with scikit-image, and the refusals.

The shipped lkdn_x4 / osffnet_x4 measurements (Set5, latency) are commands in README's INT8
section, too slow for the suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

from battery_util import assert_refused, run  # noqa: E402
from edgesr.errors import ConfigError  # noqa: E402
from edgesr.export.int8 import export_int8  # noqa: E402
from edgesr.export.int8_calib import calibration_photos, calibration_tiles  # noqa: E402
from edgesr.export.int8_trt_contract import qdq_violations  # noqa: E402

MODEL = "lkdn-tiny_x2"  # LayerNorm and large-kernel attention, like lkdn_x4, 3 s to export


def _ort_sr(path_or_proto, lr: np.ndarray) -> np.ndarray:  # noqa: ANN001
    source = path_or_proto.SerializeToString() if hasattr(path_or_proto, "graph") else str(path_or_proto)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(["sr"], {"lr": lr})[0]


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.mktemp("int8")
    report = export_int8(MODEL, calib=None, output=folder / "tiny_int8.onnx", allow_untrained=True,
                         target_db=44.0)
    return report, onnx.load(str(report.path))


@pytest.fixture(scope="module")
def tiny_fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FP32 graph the INT8 export starts from (same untrained seed, inlined, unchecked)."""
    from edgesr.export.onnx_export import export_model
    path = tmp_path_factory.mktemp("fp32") / "fp32.onnx"
    export_model(MODEL, output=path, allow_untrained=True, inline_functions=True, check=False)
    return path


def test_the_graph_is_s8s8_qdq_with_per_channel_conv_weights(tiny_int8) -> None:  # noqa: ANN001
    report, model = tiny_int8
    init = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    quantized_convs = 0
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zero_point = init[node.input[2]]
            assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
        if node.op_type == "DequantizeLinear" and node.input[0] in init:  # a weight
            weight = init[node.input[0]]
            assert weight.dtype == np.int8
            assert init[node.input[1]].shape == (weight.shape[0],)  # one scale per output channel
            quantized_convs += 1
    assert quantized_convs == report.conv_int8 > 0
    assert model.graph.node[-1].op_type == "Clip"  # the output clipped to [0, 1]
    assert not any(n.op_type == "DepthToSpace" and n.input[0].endswith("DequantizeLinear_Output")
                   for n in model.graph.node)


def test_metadata_states_int8_and_the_kept_groups_with_their_measured_cost(tiny_int8) -> None:  # noqa: ANN001
    report, model = tiny_int8
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["edgesr.precision"] == "int8"
    kept = json.loads(meta["edgesr.int8_kept_float"])
    assert [k["scope"] for k in kept] == [k.scope for k in report.kept]
    assert all(k["alone_int8_db"] < float(meta["edgesr.int8_target_db"]) for k in kept)
    assert float(meta["edgesr.int8_calibration_db"]) >= float(meta["edgesr.int8_target_db"])


def test_quality_vs_fp32_recomputed_with_scikit_image(tiny_int8, tiny_fp32: Path) -> None:  # noqa: ANN001
    report, model = tiny_int8
    fp32_path = tiny_fp32
    tiles = np.concatenate(calibration_tiles(calibration_photos(None)))
    reference = np.clip(_ort_sr(fp32_path, tiles), 0, 1)
    got = _ort_sr(report.path, tiles)
    db = peak_signal_noise_ratio(reference.astype(np.float64), got.astype(np.float64), data_range=1.0)
    assert db == pytest.approx(report.reached_db, abs=0.01)
    assert db >= 44.0
    for result in report.parity:  # the self-check's photo crop and odd size, recomputed
        assert result.passed and result.candidate == "onnx int8"


def test_placement_contract_holds_and_says_no_on_a_misplaced_pair(tiny_int8) -> None:  # noqa: ANN001
    _, model = tiny_int8
    assert qdq_violations(model) == []
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    # a Q/DQ pair in front of the pixel shuffle: TensorRT has no INT8 fusion for it there
    shuffle = next(n for n in bad.graph.node if n.op_type == "DepthToSpace")
    conv_q = next(n for n in bad.graph.node if n.op_type == "QuantizeLinear")
    q = onnx.helper.make_node("QuantizeLinear", [shuffle.input[0], conv_q.input[1], conv_q.input[2]],
                              ["moved_q"], name="moved_q")
    dq = onnx.helper.make_node("DequantizeLinear", ["moved_q", conv_q.input[1], conv_q.input[2]],
                               ["moved_dq"], name="moved_dq")
    shuffle.input[0] = "moved_dq"
    bad.graph.node.extend([q, dq])
    problems = qdq_violations(bad)
    assert len(problems) == 1 and "moved_dq: feeds DepthToSpace" in problems[0], problems


def test_contract_says_no_to_asymmetric_and_per_input_channel_weights(tiny_int8) -> None:  # noqa: ANN001
    _, model = tiny_int8
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    weight_dq = next(n for n in bad.graph.node if n.op_type == "DequantizeLinear"
                     and any(i.name == n.input[0] for i in bad.graph.initializer))
    for attr in weight_dq.attribute:
        if attr.name == "axis":
            attr.i = 1
    activation_q = next(n for n in bad.graph.node if n.op_type == "QuantizeLinear")
    zp = next(i for i in bad.graph.initializer if i.name == activation_q.input[2])
    zp.CopyFrom(onnx.numpy_helper.from_array(np.array(3, np.int8), zp.name))
    problems = " | ".join(qdq_violations(bad))
    assert f"{weight_dq.name}: Conv weights need one scale per output channel on axis 0" in problems
    assert f"{activation_q.name}: zero-point not 0" in problems


def test_the_int8_graph_runs_on_openvino_and_onnx_runtime_close_to_fp32(tiny_int8, tiny_fp32: Path) -> None:  # noqa: ANN001
    pytest.importorskip("openvino")
    from edgesr.export.int8 import INT8_MIN_PSNR_DB
    from edgesr.runtime.engines.openvino import OpenVinoEngine, OpenVinoOptions
    report, _ = tiny_int8
    fp32_path = tiny_fp32
    _, rgb = calibration_photos(None)[0]
    lr = np.ascontiguousarray(rgb[20:68, 30:94].transpose(2, 0, 1)[None])  # a 64x48 photo crop
    reference = np.clip(_ort_sr(fp32_path, lr), 0, 1).astype(np.float64)
    with OpenVinoEngine(model_path=report.path, options=OpenVinoOptions(threads=1)) as engine:
        on_openvino = engine.run(lr)
    on_ort = _ort_sr(report.path, lr)
    for got in (on_openvino, on_ort):
        assert got.shape == (1, 3, 96, 128)
        db = peak_signal_noise_ratio(reference, got.astype(np.float64), data_range=1.0)
        assert db >= INT8_MIN_PSNR_DB  # the export's own self-check floor, on either engine


def test_calibration_refuses_the_test_sets(tmp_path: Path) -> None:
    for name in ("Set5", "set14", "SET_5"):
        (tmp_path / name).mkdir()
        with pytest.raises(ConfigError, match="Set5/Set14 are the test sets"):
            calibration_photos(tmp_path / name)
    with pytest.raises(ConfigError, match="no images found"):
        calibration_photos(tmp_path)


def test_cli_refuses_clashing_flags_in_one_line(tmp_path: Path) -> None:
    result = run("edgesr-export", "--model", MODEL, "--int8", "--fp16", "-o", tmp_path / "b.onnx")
    assert_refused(result, "edgesr-export", "--fp16")
    result = run("edgesr-export", "--model", MODEL, "--calib", tmp_path, "-o", tmp_path / "c.onnx")
    assert_refused(result, "edgesr-export", "add --int8")
    assert not list(tmp_path.glob("*.onnx"))
