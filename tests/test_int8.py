"""edgesr-export --int8 on a tiny model: a QDQ graph that runs on ONNX Runtime and OpenVINO,
whose stated quality is recomputed with scikit-image, the self-check and the TensorRT
placement contract each shown to say no, edgesr-bench timing it beside FP32 in one run, and
the refusals.

The shipped lkdn_x4 / osffnet_x4 measurements (Set5, latency) are commands in docs/int8.md,
too slow for the suite. The OpenVINO test runs in a forked child (pytest-forked): OpenVINO
loaded beside torch in the suite's one process crashes a later test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
from importlib.util import find_spec
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
from edgesr.export.int8_calib import calibration_and_scoring_tiles, calibration_photos  # noqa: E402
from edgesr.export.int8_trt_contract import qdq_violations  # noqa: E402

MODEL = "lkdn-tiny_x2"  # LayerNorm and large-kernel attention, like lkdn_x4, 3 s to export


def _ort_sr(path_or_proto, lr: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """ONNX Runtime's output, Q/DQ computed as written (``session.disable_quant_qdq``): its fused
    int8 kernels are wrong on CPUs without VNNI (runtime/engines/int8_cpu.py)."""
    source = path_or_proto.SerializeToString() if hasattr(path_or_proto, "graph") else str(path_or_proto)
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
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
    # costliest first: each kept group's INT8-alone PSNR is at most the next one's. (Not "below
    # the target": groups that each pass alone can still miss it together, and then the
    # costliest are kept; ONNX Runtime 1.32 gives 57.9-68.3 dB alone against 44 for this model.)
    alone = [k["alone_int8_db"] for k in kept]
    assert alone == sorted(alone)
    assert float(meta["edgesr.int8_calibration_db"]) >= float(meta["edgesr.int8_target_db"])


def test_quality_vs_fp32_recomputed_with_scikit_image(tiny_int8, tiny_fp32: Path) -> None:  # noqa: ANN001
    report, model = tiny_int8
    fp32_path = tiny_fp32
    _, held_out = calibration_and_scoring_tiles(calibration_photos(None))
    tiles = np.concatenate(held_out)
    reference = np.clip(_ort_sr(fp32_path, tiles), 0, 1)
    got = _ort_sr(report.path, tiles)
    db = peak_signal_noise_ratio(reference.astype(np.float64), got.astype(np.float64), data_range=1.0)
    assert db == pytest.approx(report.reached_db, abs=0.01)
    assert db >= 44.0
    labels = [r.label for r in report.parity]
    assert labels == ["odd-size random", "photo crop", "odd-size photo"]
    for result in report.parity:
        assert result.passed and result.candidate == "onnx int8"
        assert ("not gated" in result.tolerance) == (result.label == "odd-size random")


def test_self_check_says_no_to_a_graph_with_wrong_scales(tiny_int8, tiny_fp32: Path) -> None:  # noqa: ANN001
    from edgesr.export.int8 import _int8_parity
    report, model = tiny_int8
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    init = {i.name: i for i in bad.graph.initializer}
    for node in bad.graph.node:  # every weight dequantized 4x too large
        if node.op_type == "DequantizeLinear" and node.input[0] in init:
            scale = init[node.input[1]]
            scale.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(scale) * 4, scale.name))
    results = {r.label: r for r in _int8_parity(onnx.load(str(tiny_fp32)), bad, report.fp32.spec)}
    assert not results["photo crop"].passed and not results["odd-size photo"].passed


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


@pytest.mark.forked
def test_the_int8_graph_runs_on_openvino_as_on_onnx_runtime(tiny_int8, tiny_fp32: Path,  # noqa: ANN001
                                                             caplog: pytest.LogCaptureFixture) -> None:
    ov = pytest.importorskip("openvino")
    from edgesr.export.int8 import INT8_MIN_PSNR_DB
    from edgesr.runtime.engines.openvino import OpenVinoEngine, OpenVinoOptions
    report, _ = tiny_int8
    _, rgb = calibration_photos(None)[0]
    lr = np.ascontiguousarray(rgb[20:68, 30:94].transpose(2, 0, 1)[None])  # a 64x48 photo crop
    reference = np.clip(_ort_sr(tiny_fp32, lr), 0, 1).astype(np.float64)
    caplog.set_level("INFO", logger="edgesr.runtime.engines.openvino")
    with OpenVinoEngine(model_path=report.path, options=OpenVinoOptions(threads=1)) as engine:
        on_openvino = engine.run(lr).astype(np.float64)
    # the CPU plugin compiles a copy rewritten around its two INT8 faults (openvino_qdq), and says so
    assert any("for OpenVINO's CPU plugin" in r.getMessage() for r in caplog.records)
    on_ort = _ort_sr(report.path, lr).astype(np.float64)
    assert on_openvino.shape == on_ort.shape == (1, 3, 96, 128)
    # Oracle: ONNX Runtime's reference QDQ arithmetic on the same file. Measured on an AVX2 CPU:
    # 43.9 dB before the rewrite (saturating int16 sums, a wrong u8 Concat), 83 dB after it.
    assert peak_signal_noise_ratio(on_ort, on_openvino, data_range=1.0) >= 55.0
    for got in (on_ort, on_openvino):
        assert peak_signal_noise_ratio(reference, got, data_range=1.0) >= INT8_MIN_PSNR_DB
    # OpenVINO's own record of what ran the rewritten copy: most convolutions still in 8 bits
    from edgesr.runtime.engines.openvino import load_onnx
    rewritten, _ = load_onnx(report.path, spec=None, cpu=True)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(rewritten, ov.Tensor(np.empty(0, np.uint8))), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    ran = [op.get_rt_info()["runtimePrecision"].astype(str) for op in compiled.get_runtime_model().get_ops()
           if op.get_rt_info()["layerType"].astype(str) == "Convolution"]
    assert sum(p in ("i8", "u8") for p in ran) >= report.conv_int8 // 2, ran


def test_bench_times_fp32_and_int8_in_one_run(tiny_int8, tiny_fp32: Path, tmp_path: Path) -> None:  # noqa: ANN001
    report, _ = tiny_int8
    model = tmp_path / "tiny.onnx"
    shutil.copy(tiny_fp32, model)
    engines = ["ort", "ort@int8"] + (["openvino", "openvino@int8"] if find_spec("openvino") else [])
    args = ("latency", model, "--engine", *engines, "--size", "24x16", "--warmup", "1", "--repeats", "3")
    missing = run("edgesr-bench", *args)
    assert_refused(missing, "edgesr-bench", "tiny_int8.onnx", "edgesr-export")
    shutil.copy(tiny_fp32, tmp_path / "tiny_int8.onnx")  # an FP32 graph under the INT8 name
    assert_refused(run("edgesr-bench", *args), "edgesr-bench", "not the INT8 graph")
    shutil.copy(report.path, tmp_path / "tiny_int8.onnx")
    result = run("edgesr-bench", *args, "--json", tmp_path / "t.json", timeout=600)
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "t.json").read_text())
    rows = {r["label"]: r for r in document["results"]}
    assert list(rows) == engines
    digest = hashlib.sha256((tmp_path / "tiny_int8.onnx").read_bytes()).hexdigest()
    for label in engines:
        assert ("graph" in rows[label]) == label.endswith("@int8")
        if label.endswith("@int8"):
            assert rows[label]["precision"] == "int8" and rows[label]["graph"]["sha256"] == digest
            base = statistics.median(rows[label.removesuffix("@int8")]["samples_ms"])
            ratio = statistics.median(rows[label]["samples_ms"]) / base
            assert f"p50 {label} / {label.removesuffix('@int8')} at 24x16: {ratio:.2f}" in result.stdout


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


def test_engine_suffix_int8_parses_and_is_refused_for_the_torch_model() -> None:
    from edgesr.benchmarks.latency_run import EngineRequest
    request = EngineRequest.parse("openvino@int8")
    assert (request.engine, request.precision, request.label) == ("openvino", "int8", "openvino@int8")
    with pytest.raises(ConfigError, match="runs the PyTorch model"):
        EngineRequest.parse("torch@int8")
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        EngineRequest.parse("ort@int4")


@pytest.mark.parametrize("saturating", [True, False])
def test_the_ort_engine_gives_a_saturating_cpu_its_unsaturated_int8_kernels(
        tiny_int8, tiny_fp32: Path, saturating: bool, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
        caplog: pytest.LogCaptureFixture) -> None:
    import edgesr.runtime.engines.ort as ort_engine
    monkeypatch.setattr(ort_engine, "saturating_int8_cpu", lambda: saturating)
    caplog.set_level("INFO", logger="edgesr.runtime.engines.ort")
    report, _ = tiny_int8
    lr = np.random.default_rng(0).random((1, 3, 24, 32), dtype=np.float32)
    for path in (report.path, tiny_fp32):  # only the INT8 graph, and only where the CPU saturates
        with ort_engine.OrtEngine(model_path=path, options=ort_engine.OrtOptions(providers=("cpu",))) as engine:
            got = engine.run(lr)
        if saturating:  # the Q/DQ arithmetic as written, to the rounding of ORT's int8 requantization
            # (the default kernels, on an AVX2 CPU without VNNI: 33.4 dB here)
            want = _ort_sr(path, lr).astype(np.float64)
            with np.errstate(divide="ignore"):  # bit-identical outputs score inf dB, which passes
                assert peak_signal_noise_ratio(want, got.astype(np.float64), data_range=1.0) >= 55.0
    told = [r for r in caplog.records if "x64quantprecision" in r.getMessage()]
    assert len(told) == (1 if saturating else 0)
