"""The TensorRT engine: availability, options, ONNX tagging for the plugin, and (marked
``tensorrt``, skipped without TensorRT and a GPU) real builds compared with ONNX Runtime."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from edgesr.errors import ConfigError, EngineUnavailableError, ImageError, ModelFileError
from edgesr.runtime.engines.trt import build, cuda_memory, engine_bytes, plugin, plugin_launch
from edgesr.runtime.engines.trt.build import engine_key
from edgesr.runtime.engines.trt.cache import engine_paths
from edgesr.runtime.engines.trt.cuda_memory import DeviceInfo
from edgesr.runtime.engines.trt.onnx_bytes import count_plugin_nodes, mark_plugin_nodes, read_onnx_metadata
from edgesr.runtime.engines.trt.options import TrtOptions
from edgesr.runtime.engines.trt.profile import OptimizationProfile
from edgesr.runtime.engines.trt.runner import TrtEngine, available
from edgesr.spec import DSCONV_DOMAIN, DSCONV_OP_TYPE, ModelSpec

TRT_OK, TRT_REASON = available()
needs_trt = pytest.mark.skipif(not TRT_OK, reason=f"TensorRT + CUDA GPU not usable: {TRT_REASON}")

SCALE = 2
META = {
    "edgesr.arch": "tiny_dsconv",
    "edgesr.scale": str(SCALE),
    "edgesr.version": "0.1.0",
    "edgesr.tile_px": "32",
    "edgesr.overlap_px": "4",
    "edgesr.min_size_px": "8",
    "edgesr.size_multiple": "1",
}


# --------------------------------------------------------------------------- tiny models


def tiny_sr_onnx(path: Path, *, precision: str = "fp32", dsconv: bool = True, seed: int = 0) -> Path:
    """A tiny x2 SR model: conv -> [DSConv morph 0 -> ReLU -> DSConv morph 1] -> conv ->
    DepthToSpace, with the edgesr.DynamicSnakeConv local function attached (needs onnx and,
    for the function body, the export layer's torch import)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    np_dtype = np.float16 if precision == "fp16" else np.float32
    inits = []

    def weight(name: str, shape: tuple[int, ...], scale: float = 0.3) -> str:
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np_dtype), name))
        return name

    k, feat = 3, 4
    nodes = []
    x = "lr"
    if precision == "fp16":
        nodes.append(helper.make_node("Cast", ["lr"], ["lr16"], to=TensorProto.FLOAT16))
        x = "lr16"
    nodes.append(helper.make_node("Conv", [x, weight("w1", (feat, 3, 3, 3)), weight("b1", (feat,))], ["f1"], pads=[1, 1, 1, 1]))
    last = "f1"
    if dsconv:
        for i, morph in enumerate((0, 1)):
            wshape = (feat, feat, k, 1) if morph == 0 else (feat, feat, 1, k)
            nodes += [
                helper.make_node("Conv", [last, weight(f"wo{i}", (2 * k, feat, 3, 3)), weight(f"bo{i}", (2 * k,))], [f"o{i}"], pads=[1, 1, 1, 1]),
                helper.make_node("Tanh", [f"o{i}"], [f"t{i}"]),
                helper.make_node(
                    DSCONV_OP_TYPE,
                    [last, f"t{i}", weight(f"wd{i}", wshape), weight(f"bd{i}", (feat,))],
                    [f"d{i}"],
                    domain=DSCONV_DOMAIN,
                    name=f"dsconv{i}",
                    kernel_size=k,
                    morph=morph,
                    extend_scope=1.0,
                ),
                helper.make_node("Relu", [f"d{i}"], [f"r{i}"]),
            ]
            last = f"r{i}"
    nodes.append(helper.make_node("Conv", [last, weight("w3", (3 * SCALE * SCALE, feat, 3, 3)), weight("b3", (3 * SCALE * SCALE,))], ["up"], pads=[1, 1, 1, 1]))
    out = "sr"
    if precision == "fp16":
        nodes.append(helper.make_node("DepthToSpace", ["up"], ["sr16"], blocksize=SCALE, mode="CRD"))
        nodes.append(helper.make_node("Cast", ["sr16"], ["sr"], to=TensorProto.FLOAT))
    else:
        nodes.append(helper.make_node("DepthToSpace", ["up"], [out], blocksize=SCALE, mode="CRD"))
    graph = helper.make_graph(
        nodes,
        "tiny_sr",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["N", 3, "H2", "W2"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    helper.set_model_props(model, {**META, "edgesr.precision": precision})
    if dsconv:
        pytest.importorskip("torch")  # the export layer (function body builder) imports torch
        from edgesr.export.dsconv_onnx import attach_dsconv_function

        model = attach_dsconv_function(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sr_onnx(tmp_path_factory.mktemp("onnx") / "tiny_fp32.onnx")


def ort_run(path: Path, lr: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["sr"], {"lr": lr})[0])


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    peak = float(np.max(np.abs(b)))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


# --------------------------------------------------------------------------- availability (CPU)


def test_available_says_why_not_here() -> None:
    if TRT_OK:
        pytest.skip(f"TensorRT is usable here ({TRT_REASON})")
    ok, reason = available()
    assert ok is False
    assert reason and "\n" not in reason
    assert "TensorRT" in reason or "CUDA" in reason or "cuda" in reason


def test_trt_engine_raises_one_line_error_here(tiny_fp32: Path) -> None:
    if TRT_OK:
        pytest.skip("TensorRT is usable here")
    with pytest.raises(EngineUnavailableError) as info:
        TrtEngine(model_path=tiny_fp32, options=TrtOptions(cache_dir=tiny_fp32.parent / "cache"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("the trt engine cannot run here:")
    assert "install" in message or "--engine ort" in message
    assert not (tiny_fp32.parent / "cache").exists()  # nothing built or cached


def test_available_explains_stubs_missing_trt_and_missing_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # not installed at all
    ok, reason = available()
    assert not ok and "TensorRT is not installed" in reason and "pip install -e '.[trt-cu12]'" in reason

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))  # stubs only
    ok, reason = available()
    assert not ok and "type stubs" in reason

    fake = types.ModuleType("tensorrt")
    fake.Builder = object  # type: ignore[attr-defined]
    fake.__version__ = "10.13.0.35"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt", fake)

    def no_binding() -> None:
        raise EngineUnavailableError("cuda-python is not installed (pip install -e '.[trt-cu12]')")

    monkeypatch.setattr(cuda_memory, "cuda_api", no_binding)
    ok, reason = available()
    assert not ok and "cuda-python" in reason

    class NoDevice:
        def device_count(self) -> int:
            return 0

    monkeypatch.setattr(cuda_memory, "cuda_api", lambda: NoDevice())
    ok, reason = available()
    assert not ok and "no CUDA device" in reason


def test_cuda_helper_without_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    if cuda_memory.binding_available()[0]:
        pytest.skip("a CUDA Python binding is installed here")
    cuda_memory._reset_for_tests()
    with pytest.raises(EngineUnavailableError, match=r"cuda-python is not importable.*\.\[trt-cu12\]") as info:
        cuda_memory.cuda_api()
    assert "\n" not in str(info.value)
    cuda_memory._reset_for_tests()


# --------------------------------------------------------------------------- options and keys


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"precision": "int8"}, "precision"),
        ({"workspace_bytes": 10}, "workspace_bytes"),
        ({"workspace_bytes": True}, "workspace_bytes"),
        ({"plugin_impl": "cuda"}, "plugin_impl"),
        ({"builder_optimization_level": 7}, "builder_optimization_level"),
    ],
)
def test_trt_options_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TrtOptions(**kwargs)  # type: ignore[arg-type]


def test_trt_options_are_keyword_only_and_paths() -> None:
    with pytest.raises(TypeError):
        TrtOptions("fp16")  # type: ignore[misc]
    options = TrtOptions(cache_dir="some/dir", builder_optimization_level=5)  # type: ignore[arg-type]
    assert isinstance(options.cache_dir, Path)
    assert options.builder_fields() == {"workspace_bytes": str(1 << 30), "builder_optimization_level": "5"}


DEVICE = DeviceInfo(index=0, name="NVIDIA Jetson AGX Orin", compute_capability=(8, 7), total_memory_bytes=1, driver_version=12020)


def test_engine_key_from_spec_options_and_plugin() -> None:
    spec = ModelSpec(arch="tiny", scale=2, precision="fp16", tile_px=64, overlap_px=8, min_size_px=15)
    common = dict(onnx_sha256="c" * 64, spec=spec, trt_version="10.13.0.35", device=DEVICE)
    key = engine_key(options=TrtOptions(), plugin_impl="aot", **common)  # type: ignore[arg-type]
    assert key.precision == "fp16" and key.compute_capability == "8.7"
    assert key.profile == OptimizationProfile(min=(1, 3, 15, 15), opt=(1, 3, 80, 80), max=(1, 3, 80, 80))
    assert key.plugin_version.startswith("edgesr::DynamicSnakeConv/v1/aot/")
    jit = engine_key(options=TrtOptions(), plugin_impl="jit", **common)  # type: ignore[arg-type]
    off = engine_key(options=TrtOptions(plugin=False), plugin_impl="", **common)  # type: ignore[arg-type]
    assert off.plugin_version == ""
    assert len({key.digest(), jit.digest(), off.digest()}) == 3
    custom = OptimizationProfile(min=(1, 3, 8, 8), opt=(1, 3, 64, 64), max=(2, 3, 128, 128))
    assert engine_key(options=TrtOptions(profile=custom), plugin_impl="", **common).profile == custom  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="strongly typed") as info:
        engine_key(options=TrtOptions(precision="fp32"), plugin_impl="", source="m.onnx", **common)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- ONNX bytes


def test_read_onnx_metadata_matches_onnx(tiny_fp32: Path) -> None:
    onnx = pytest.importorskip("onnx")
    data = tiny_fp32.read_bytes()
    expected = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert read_onnx_metadata(data) == expected
    spec = ModelSpec.from_metadata(read_onnx_metadata(data), source="tiny")
    assert spec.scale == SCALE and spec.min_size_px == 8 and spec.precision == "fp32"
    bare = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    assert read_onnx_metadata(bare.SerializeToString()) == {}


def test_mark_plugin_nodes_tags_only_dsconv_nodes(tiny_fp32: Path) -> None:
    onnx = pytest.importorskip("onnx")
    data = tiny_fp32.read_bytes()
    assert count_plugin_nodes(data) == 2
    marked, tagged = mark_plugin_nodes(data, aot=True)
    assert tagged == 2
    model = onnx.load_from_string(marked)
    original = onnx.load_from_string(data)
    for node, before in zip(model.graph.node, original.graph.node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == DSCONV_OP_TYPE:
            assert attrs["plugin_namespace"] == b"edgesr" and attrs["aot"] == 1
            assert attrs["kernel_size"] == 3 and attrs["extend_scope"] == 1.0
            del node.attribute[-2:]  # what was appended; the rest is byte-identical
        assert node.SerializeToString() == before.SerializeToString()
    assert model.SerializeToString() == original.SerializeToString()
    assert len(model.functions) == 1 and model.metadata_props == original.metadata_props

    again, tagged_again = mark_plugin_nodes(marked, aot=True)  # idempotent
    assert tagged_again == 0 and again == marked
    jit, _ = mark_plugin_nodes(data, aot=False)
    node = next(n for n in onnx.load_from_string(jit).graph.node if n.op_type == DSCONV_OP_TYPE)
    assert {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}["aot"] == 0
    legacy, _ = mark_plugin_nodes(data, aot=None)  # TensorRT without AOT plugins
    node = next(n for n in onnx.load_from_string(legacy).graph.node if n.op_type == DSCONV_OP_TYPE)
    assert "aot" not in {a.name for a in node.attribute}


def test_mark_plugin_nodes_leaves_other_models_alone(tmp_path: Path) -> None:
    path = tiny_sr_onnx(tmp_path / "plain.onnx", dsconv=False)
    data = path.read_bytes()
    assert count_plugin_nodes(data) == 0
    assert mark_plugin_nodes(data, aot=True) == (data, 0)
    with pytest.raises(ModelFileError, match="damaged"):
        mark_plugin_nodes(data[: len(data) // 2], aot=True)


def test_tiny_model_runs_in_onnxruntime(tiny_fp32: Path, tmp_path: Path) -> None:
    """ONNX Runtime against onnx's reference evaluator (DSConv's function body op by op), and
    the model without DSConv against torch's conv2d + pixel_shuffle on the same weights."""
    onnx = pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    lr = np.random.default_rng(1).random((1, 3, 9, 11), dtype=np.float32)
    sr = ort_run(tiny_fp32, lr)
    assert sr.shape == (1, 3, 18, 22)
    np.testing.assert_allclose(sr, ReferenceEvaluator(str(tiny_fp32)).run(["sr"], {"lr": lr})[0], atol=1e-5)

    plain = tiny_sr_onnx(tmp_path / "plain.onnx", dsconv=False)
    w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(str(plain)).graph.initializer}
    f = torch.nn.functional
    with torch.no_grad():
        features = f.conv2d(torch.from_numpy(lr), w["w1"], w["b1"], padding=1)
        expected = f.pixel_shuffle(f.conv2d(features, w["w3"], w["b3"], padding=1), SCALE).numpy()
    np.testing.assert_allclose(ort_run(plain, lr), expected, atol=1e-5)


# --------------------------------------------------------------------------- TensorRT + GPU


def trt_version() -> str:
    import tensorrt

    return tensorrt.__version__


def predicted_plugin(version: str) -> str:
    """The DSConv path for the default plugin_impl "aot", as test_trt_parser_choice.py's
    table derives it from onnx-tensorrt's sources: local function before 10.7 (the engine
    reports "off"), the JIT plugin on 10.7 and 10.8 (no aot_impl yet), the AOT plugin from 10.9."""
    major, minor = (int(part) for part in version.split(".")[:2])
    if (major, minor) < (10, 7):
        return "off"
    return "jit" if (major, minor) < (10, 9) else "aot"


def test_predicted_plugin_follows_the_parser_choice_table() -> None:
    # the rows of test_trt_parser_choice.test_dsconv_path_per_tensorrt_version for option "aot"
    rows = {"10.3.0": "local function", "10.6.0": "local function", "10.7.0": "JIT plugin",
            "10.9.0": "AOT plugin", "10.13.0.35": "AOT plugin", "10.15.1": "AOT plugin", "11.0.0": "AOT plugin"}
    detail = {"local function": "off", "JIT plugin": "jit", "AOT plugin": "aot"}
    assert {v: predicted_plugin(v) for v in rows} == {v: detail[route] for v, route in rows.items()}

@pytest.mark.tensorrt
@needs_trt
def test_trt_matches_onnxruntime_and_caches(tiny_fp32: Path, tmp_path: Path) -> None:
    lr = np.random.default_rng(2).random((1, 3, 20, 27), dtype=np.float32)
    expected = ort_run(tiny_fp32, lr)
    options = TrtOptions(cache_dir=tmp_path)
    with TrtEngine(model_path=tiny_fp32, options=options) as engine:
        assert engine.info().details["engine_cache"] == "built"
        got = engine.run(lr)
        assert engine.info().name == "trt" and engine.spec.scale == SCALE
    assert got.shape == expected.shape and got.dtype == np.float32
    assert float(np.abs(got - expected).max()) < 1e-3
    assert list((tmp_path / "timing").glob("*.cache")), "the timing cache was not saved"
    with TrtEngine(model_path=tiny_fp32, options=options) as engine:
        assert engine.info().details["engine_cache"] == "hit"
        np.testing.assert_allclose(engine.run(lr), got, atol=1e-5)
        key = engine._key
    engine_file, _ = engine_paths(key, root=tmp_path)
    engine_file.write_bytes(engine_file.read_bytes()[:-16] + b"\0" * 16)  # tamper
    with TrtEngine(model_path=tiny_fp32, options=options) as engine:
        assert engine.info().details["engine_cache"] == "built"  # refused, rebuilt


@pytest.mark.tensorrt
@needs_trt
def test_trt_plugin_matches_local_function(tiny_fp32: Path, tmp_path: Path) -> None:
    lr = np.random.default_rng(3).random((1, 3, 24, 19), dtype=np.float32)
    with TrtEngine(model_path=tiny_fp32, options=TrtOptions(cache_dir=tmp_path, plugin=False)) as local:
        assert local.info().details["plugin"] == "off"
        by_function = local.run(lr)
    with TrtEngine(model_path=tiny_fp32, options=TrtOptions(cache_dir=tmp_path, plugin=True)) as plug:
        assert plug.info().details["plugin"] == predicted_plugin(trt_version())
        by_plugin = plug.run(lr)
    assert float(np.abs(by_plugin - by_function).max()) < 1e-3
    np.testing.assert_allclose(by_plugin, ort_run(tiny_fp32, lr), atol=1e-3)


@pytest.mark.tensorrt
@needs_trt
def test_trt_jit_plugin(tiny_fp32: Path, tmp_path: Path) -> None:
    if not cuda_memory.binding_available()[1] == "cuda-python":
        pytest.skip("the JIT plugin launches through cuda-python, which is not installed")
    lr = np.random.default_rng(4).random((2, 3, 16, 16), dtype=np.float32)
    with TrtEngine(model_path=tiny_fp32, options=TrtOptions(cache_dir=tmp_path, plugin_impl="jit")) as engine:
        got = engine.run(lr)
    np.testing.assert_allclose(got, ort_run(tiny_fp32, lr), atol=1e-3)


@pytest.mark.tensorrt
@needs_trt
def test_trt_fp16_graph_psnr(tmp_path: Path) -> None:
    fp32 = tiny_sr_onnx(tmp_path / "tiny32.onnx", seed=5)
    fp16 = tiny_sr_onnx(tmp_path / "tiny16.onnx", precision="fp16", seed=5)
    lr = np.random.default_rng(5).random((1, 3, 30, 30), dtype=np.float32)
    reference = ort_run(fp32, lr)
    with TrtEngine(model_path=fp16, options=TrtOptions(cache_dir=tmp_path, precision="fp16")) as engine:
        assert engine.info().precision == "fp16"
        got = engine.run(lr)
    assert np.isfinite(got).all(), "FP16 engine produced NaN/Inf"
    assert psnr_db(got, reference) > 40.0
    with pytest.raises(ConfigError, match="strongly typed"):
        TrtEngine(model_path=fp32, options=TrtOptions(cache_dir=tmp_path, precision="fp16"))


@pytest.mark.tensorrt
@needs_trt
def test_trt_pads_small_inputs_and_rejects_large_ones(tiny_fp32: Path, tmp_path: Path) -> None:
    with TrtEngine(model_path=tiny_fp32, options=TrtOptions(cache_dir=tmp_path)) as engine:
        small = np.random.default_rng(6).random((1, 3, 5, 6), dtype=np.float32)  # min_size_px = 8
        out = engine.run(small)
        assert out.shape == (1, 3, 10, 12) and np.isfinite(out).all()
        with pytest.raises(ConfigError, match="tiler"):
            engine.run(np.zeros((1, 3, 41, 8), dtype=np.float32))  # max side = 32 + 2*4
        engine.close()
        engine.close()  # idempotent
        with pytest.raises(EngineUnavailableError, match="closed"):
            engine.run(small)


@pytest.mark.tensorrt
@needs_trt
def test_engine_from_onnx_returns_a_deserializable_engine(tiny_fp32: Path, tmp_path: Path) -> None:
    import tensorrt as trt

    data = engine_bytes.engine_from_onnx(tiny_fp32, options=TrtOptions(cache_dir=tmp_path))
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(data)
    assert engine is not None and engine.num_io_tensors == 2


def test_fp16_fixture_runs_in_onnxruntime(tmp_path: Path) -> None:
    """The FP16 graph the GPU test builds is valid and close to the FP32 one (ORT CPU)."""
    fp32 = tiny_sr_onnx(tmp_path / "tiny32.onnx", seed=5)
    fp16 = tiny_sr_onnx(tmp_path / "tiny16.onnx", precision="fp16", seed=5)
    assert read_onnx_metadata(fp16.read_bytes())["edgesr.precision"] == "fp16"
    lr = np.random.default_rng(5).random((1, 3, 12, 10), dtype=np.float32)
    from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

    try:
        got = ort_run(fp16, lr)
    except OrtNotImplemented as exc:  # an ORT build without float16 CPU kernels; any other error fails
        pytest.skip(f"ONNX Runtime has no float16 CPU kernel for the graph: {exc}")
    assert psnr_db(got, ort_run(fp32, lr)) > 40.0


# --------------------------------------------------------------------------- plugin helpers (CPU)


def test_plugin_helpers_without_tensorrt() -> None:
    plugin._reset_for_tests()
    assert plugin.PLUGIN_ID == "edgesr::DynamicSnakeConv"
    combos = plugin.autotune_type_combinations()
    assert len(combos) == 16 and len(set(combos)) == 16
    for combo in combos:
        types_ = [t.strip() for t in combo.split(",")]
        assert len(types_) == 5 and types_[4] == types_[0]  # output typed like x
    assert plugin_launch.dsconv_ptx_isa(12020) == 82  # JetPack 6 (CUDA 12.2)
    assert plugin_launch.dsconv_ptx_isa(12060) == 85
    assert plugin_launch.dsconv_ptx_isa(12080) == 87
    assert plugin_launch.dsconv_ptx_isa(13000) == 90
    assert plugin_launch.dsconv_ptx_isa(11040) == 74
    assert plugin.plugin_version_tag("aot").startswith("edgesr::DynamicSnakeConv/v1/aot/triton-")
    if not TRT_OK:
        with pytest.raises(EngineUnavailableError, match="TensorRT >= 10.7") as info:
            plugin.register_dsconv_plugin()
        assert "\n" not in str(info.value)


def test_runtime_trt_modules_never_import_torch() -> None:
    """DESIGN section 1: edgesr.runtime imports no torch (nor models/ops/export)."""
    import subprocess

    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith(('torch.', 'edgesr.models', 'edgesr.ops', 'edgesr.export')):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import edgesr.runtime.engines.trt.runner, edgesr.runtime.engines.trt.build, edgesr.runtime.engines.trt.cache\n"
        "import edgesr.runtime.engines.trt.plugin, edgesr.runtime.engines.trt.kernel_compile, edgesr.runtime.engines.trt.cuda_memory\n"
        "from edgesr.runtime.engines.trt.runner import available\n"
        "print(available()[0])\n"
        "assert 'torch' not in sys.modules\n"
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(repo), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# --------------------------------------------------------------------------- fake TensorRT + CUDA
#
# The build/run plumbing of TrtEngine (network flags, profile, timing cache, engine cache,
# padding, chunking, cropping, buffers, close) checked against stand-ins for TensorRT and
# cuda-python that keep "device memory" in a dict. The fake engine upsamples by nearest
# neighbour. The real thing is covered by the `tensorrt` tests above.


class _FakeCuda:
    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.memory: dict[int, bytearray] = {}
        self.next_addr = 0x1000
        self.freed: list[int] = []
        self.streams_destroyed = 0

        class Kind:
            cudaMemcpyHostToDevice = 1
            cudaMemcpyDeviceToHost = 2

        self.cudaMemcpyKind = Kind

    def cudaGetErrorString(self, err: int) -> tuple[int, bytes]:
        return 0, b"fake error"

    def cudaGetDeviceCount(self) -> tuple[int, int]:
        return 0, 1

    def cudaGetDeviceProperties(self, index: int) -> tuple[int, object]:
        return 0, types.SimpleNamespace(name=b"Fake GPU\x00", major=8, minor=7, totalGlobalMem=8 << 30)

    def cudaDriverGetVersion(self) -> tuple[int, int]:
        return 0, 12020

    def cudaMalloc(self, nbytes: int) -> tuple[int, int]:
        addr = self.next_addr
        self.next_addr += nbytes + 256
        self.memory[addr] = bytearray(nbytes)
        return 0, addr

    def cudaFree(self, addr: int) -> tuple[int]:
        del self.memory[addr]
        self.freed.append(addr)
        return (0,)

    def cudaStreamCreate(self) -> tuple[int, int]:
        return 0, 77

    def cudaStreamSynchronize(self, stream: object) -> tuple[int]:
        return (0,)

    def cudaStreamDestroy(self, stream: object) -> tuple[int]:
        self.streams_destroyed += 1
        return (0,)

    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind: int, stream: object) -> tuple[int]:
        if kind == 1:
            self.memory[dst][:count] = self.ctypes.string_at(src, count)
        else:
            self.ctypes.memmove(dst, bytes(self.memory[src][:count]), count)
        return (0,)


def _fake_tensorrt(cuda: _FakeCuda, log: dict[str, object]) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99.0.1"  # type: ignore[attr-defined]

    class Severity:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger:
        pass

    ILogger.Severity = Severity  # type: ignore[attr-defined]
    trt.ILogger = ILogger  # type: ignore[attr-defined]
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)  # type: ignore[attr-defined]
    trt.OnnxParserFlag = types.SimpleNamespace()  # type: ignore[attr-defined]
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")  # type: ignore[attr-defined]
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")  # type: ignore[attr-defined]
    trt.Dims = lambda dims: tuple(dims)  # type: ignore[attr-defined]
    trt.nptype = lambda dtype: np.float32  # type: ignore[attr-defined]

    class Network:
        num_inputs = num_outputs = 1

        def get_input(self, index: int) -> object:
            return types.SimpleNamespace(name="lr")

    class TimingCache:
        def serialize(self) -> bytes:
            return b"timings"

    class Config:
        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            log["workspace"] = size

        def add_optimization_profile(self, profile: object) -> None:
            log["profile"] = profile

        def create_timing_cache(self, data: bytes) -> TimingCache:
            log["timing_in"] = bytes(data)
            return TimingCache()

        def set_timing_cache(self, cache: object, ignore_mismatch: bool) -> bool:
            return True

        def get_timing_cache(self) -> TimingCache:
            return TimingCache()

    class Profile:
        def set_shape(self, name: str, lo: tuple[int, ...], opt: tuple[int, ...], hi: tuple[int, ...]) -> None:
            log["shapes"] = (name, lo, opt, hi)

    class Builder:
        def __init__(self, logger: object) -> None:
            pass

        def create_network(self, flags: int) -> Network:
            log["flags"] = flags
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: object, config: object) -> bytes:
            log["builds"] = int(log.get("builds", 0)) + 1  # type: ignore[call-overload]
            shapes = log["shapes"]
            return b"FAKE-ENGINE:" + repr(shapes).encode()

    class OnnxParser:
        num_errors = 0

        def __init__(self, network: object, logger: object) -> None:
            pass

        def set_flag(self, flag: object) -> None:
            pass

        def parse(self, model: bytes, path: str) -> bool:
            log["parsed"] = path
            return True

    class Context:
        def __init__(self, engine: "Engine") -> None:
            self.engine = engine
            self.shape: tuple[int, ...] = ()
            self.addr: dict[str, int] = {}

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            self.shape = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            n, c, h, w = self.shape
            return (n, c, 2 * h, 2 * w)

        def set_tensor_address(self, name: str, addr: int) -> bool:
            self.addr[name] = addr
            return True

        def execute_async_v3(self, stream: int) -> bool:
            log.setdefault("runs", []).append(self.shape)  # type: ignore[union-attr]
            n, c, h, w = self.shape
            count = n * c * h * w
            x = np.frombuffer(bytes(cuda.memory[self.addr["lr"]][: count * 4]), dtype=np.float32).reshape(self.shape)
            y = np.ascontiguousarray(x.repeat(2, axis=2).repeat(2, axis=3))
            cuda.memory[self.addr["sr"]][: y.nbytes] = y.tobytes()
            return True

    class Engine:
        num_io_tensors = 2

        def __init__(self, data: bytes) -> None:
            self.data = data

        def get_tensor_name(self, index: int) -> str:
            return ("lr", "sr")[index]

        def get_tensor_mode(self, name: str) -> str:
            return "in" if name == "lr" else "out"

        def get_tensor_dtype(self, name: str) -> str:
            return "float"

        def get_tensor_profile_shape(self, name: str, index: int) -> tuple[tuple[int, ...], ...]:
            _, lo, opt, hi = log["shapes"]  # type: ignore[misc]
            return lo, opt, hi

        def create_execution_context(self) -> Context:
            return Context(self)

    class Runtime:
        def __init__(self, logger: object) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            return Engine(data) if bytes(data).startswith(b"FAKE-ENGINE") else None

    trt.Builder = Builder  # type: ignore[attr-defined]
    trt.OnnxParser = OnnxParser  # type: ignore[attr-defined]
    trt.Runtime = Runtime  # type: ignore[attr-defined]
    return trt


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> tuple[_FakeCuda, dict[str, object]]:
    cuda = _FakeCuda()
    log: dict[str, object] = {}
    runtime_mod = types.ModuleType("cuda.bindings.runtime")
    for name in dir(cuda):
        if name.startswith("cuda"):
            setattr(runtime_mod, name, getattr(cuda, name))
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = runtime_mod  # type: ignore[attr-defined]
    package = types.ModuleType("cuda")
    package.bindings = bindings  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cuda", package)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime_mod)
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(cuda, log))
    monkeypatch.setattr(build, "_TRT_LOGGER", [])  # restored afterwards: no fake logger leaks
    cuda_memory._reset_for_tests()
    yield cuda, log
    cuda_memory._reset_for_tests()


def test_build_cache_and_run_plumbing_with_fake_tensorrt(
    fake_trt: tuple[_FakeCuda, dict[str, object]], tmp_path: Path
) -> None:
    cuda, log = fake_trt
    model = tiny_sr_onnx(tmp_path / "plain.onnx", dsconv=False)
    assert available() == (True, "TensorRT 10.99.0.1 on Fake GPU (sm_87)")
    options = TrtOptions(cache_dir=tmp_path / "cache", workspace_bytes=1 << 28)
    with TrtEngine(model_path=model, options=options) as engine:
        assert log["flags"] == 1 << 1  # STRONGLY_TYPED only
        assert log["workspace"] == 1 << 28
        assert log["shapes"] == ("lr", (1, 3, 8, 8), (1, 3, 40, 40), (1, 3, 40, 40))
        info = engine.info()
        assert info.device == "Fake GPU (sm_87)" and info.precision == "fp32"
        assert info.details["engine_cache"] == "built" and info.details["plugin"] == "off"
        lr = np.random.default_rng(0).random((3, 3, 5, 7), dtype=np.float32)  # N > max, H/W < min
        sr = engine.run(lr)
        assert sr.shape == (3, 3, 10, 14) and sr.dtype == np.float32
        np.testing.assert_array_equal(sr, lr.repeat(2, axis=2).repeat(2, axis=3))
        assert log["runs"] == [(1, 3, 8, 8)] * 3  # one chunk per image, padded to the minimum
        big = np.random.default_rng(1).random((1, 3, 40, 33), dtype=np.float32)
        np.testing.assert_array_equal(engine.run(big), big.repeat(2, axis=2).repeat(2, axis=3))
        with pytest.raises(ConfigError, match="tiler"):
            engine.run(np.zeros((1, 3, 41, 8), dtype=np.float32))
        # the input checks every engine shares (engines.checks.check_lr): not 4-D, not 3 channels
        with pytest.raises(ImageError, match=r"shape \(3, 8, 8\), expected \(N, 3, H, W\)"):
            engine.run(np.zeros((3, 8, 8), dtype=np.float32))
        with pytest.raises(ImageError, match=r"shape \(1, 4, 8, 8\), expected \(N, 3, H, W\)"):
            engine.run(np.zeros((1, 4, 8, 8), dtype=np.float32))
    assert not cuda.memory and cuda.streams_destroyed == 1  # close() released everything
    with pytest.raises(EngineUnavailableError, match="closed"):
        engine.run(lr)
    timing = list((tmp_path / "cache" / "timing").glob("*.cache"))
    assert len(timing) == 1 and timing[0].read_bytes() == b"timings"

    # second engine: cache hit, no build, and the timing cache was read back
    with TrtEngine(model_path=model, options=options) as engine:
        assert engine.info().details["engine_cache"] == "hit"
    assert log["builds"] == 1

    # a tampered cached engine is refused and rebuilt
    engine_file = next((tmp_path / "cache" / "engines").glob("*.engine"))
    engine_file.write_bytes(engine_file.read_bytes() + b"x")
    with TrtEngine(model_path=model, options=options) as engine:
        assert engine.info().details["engine_cache"] == "built"
    assert log["builds"] == 2 and log["timing_in"] == b"timings"


def test_profile_minimum_padding_chunking_and_shared_checks_with_fake_tensorrt(
    fake_trt: tuple[_FakeCuda, dict[str, object]], tmp_path: Path
) -> None:
    """A profile whose minimum exceeds the model's (N 2, 12x12) pads batch and sides for
    TensorRT and crops them back; out-of-range input is refused by the shared check."""
    _, log = fake_trt
    model = tiny_sr_onnx(tmp_path / "plain.onnx", dsconv=False)
    profile = OptimizationProfile(min=(2, 3, 12, 12), opt=(2, 3, 24, 24), max=(3, 3, 40, 40))
    options = TrtOptions(cache_dir=tmp_path / "cache", profile=profile)
    with TrtEngine(model_path=model, options=options) as engine:
        lr = np.random.default_rng(2).random((4, 3, 5, 9), dtype=np.float32)
        sr = engine.run(lr)
        np.testing.assert_array_equal(sr, lr.repeat(2, axis=2).repeat(2, axis=3))
        assert sr.flags.c_contiguous
        # min_size_px 8 pads to 8x9 (engines.checks.pad_for_model), the profile to 12x12; N 4 = 3 + 1 (+1 pad)
        assert log["runs"] == [(3, 3, 12, 12), (2, 3, 12, 12)]
        with pytest.raises(ImageError, match="values in"):
            engine.run(np.full((1, 3, 8, 8), 255.0, dtype=np.float32))


def test_device_info_is_queried_once_per_device(fake_trt: tuple[_FakeCuda, dict[str, object]]) -> None:
    runtime_mod = sys.modules["cuda.bindings.runtime"]
    real = runtime_mod.cudaGetDeviceProperties  # type: ignore[attr-defined]
    calls: list[int] = []

    def counting(index: int) -> tuple[int, object]:
        calls.append(index)
        return real(index)

    runtime_mod.cudaGetDeviceProperties = counting  # type: ignore[attr-defined]
    api = cuda_memory.cuda_api()
    first = api.device_info(0)
    assert api.device_info(0) is first and api.device_info() is first
    assert available()[0] and cuda_memory.cuda_api().device_info(0) is first
    assert calls == [0]
    api.device_info(1)
    assert calls == [0, 1]


def test_cuda_python_wrapper_with_fake_binding(fake_trt: tuple[_FakeCuda, dict[str, object]]) -> None:
    cuda, _ = fake_trt
    api = cuda_memory.cuda_api()
    assert api.name == "cuda-python" and api.device_count() == 1
    info = api.device_info(0)
    assert (info.name, info.compute_capability, info.sm, info.driver_version) == ("Fake GPU", (8, 7), "sm_87", 12020)
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    back = np.empty_like(host)
    with api.stream() as stream, api.alloc(host.nbytes) as buf:
        api.copy_htod_async(buf.ptr, host, stream)
        api.copy_dtoh_async(back, buf.ptr, stream)
        stream.synchronize()
    np.testing.assert_array_equal(back, host)
    assert not cuda.memory and cuda.streams_destroyed == 1
    with pytest.raises(ValueError, match="contiguous"):
        api.copy_dtoh_async(back[:, ::2], 0x1000, api.stream())

    def failing_malloc(nbytes: int) -> tuple[int, None]:
        return 2, None

    sys.modules["cuda.bindings.runtime"].cudaMalloc = failing_malloc  # type: ignore[attr-defined]
    with pytest.raises(cuda_memory.CudaError, match="cudaMalloc failed: fake error") as err:
        api.alloc(16)
    assert "\n" not in str(err.value)


def test_plugin_falls_back_to_the_local_function(tiny_fp32: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tiny_fp32.read_bytes()
    assert build.choose_plugin_impl(TrtOptions(plugin=False), data, "10.13.0.35") == ""
    if TRT_OK:
        pytest.skip("TensorRT is usable here: the plugin path is tested by the tensorrt tests")
    import logging

    plugin._reset_for_tests()
    with caplog.at_level(logging.WARNING, logger="edgesr"):
        assert build.choose_plugin_impl(TrtOptions(), data, "10.13.0.35") == ""
    assert len(caplog.records) == 1 and "local function" in caplog.text
