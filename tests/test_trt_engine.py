"""The TensorRT engine on the CPU: availability, options and keys, ONNX tagging for the
plugin, and the plugin helpers. Real builds are in test_trt_gpu.py, the plumbing over fake
TensorRT in test_trt_fake.py."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from oracles import ort_sr
from trt_tiny_model import SCALE, tiny_sr_onnx

from edgesr.errors import ConfigError, EngineUnavailableError, ModelFileError
from edgesr.runtime.engines.trt import build, cuda_memory, plugin, plugin_launch
from edgesr.runtime.engines.trt.build import engine_key
from edgesr.runtime.engines.trt.cuda_memory import DeviceInfo
from edgesr.runtime.engines.trt.onnx_bytes import count_plugin_nodes, mark_plugin_nodes, read_onnx_metadata
from edgesr.runtime.engines.trt.options import TrtOptions
from edgesr.runtime.engines.trt.profile import OptimizationProfile
from edgesr.runtime.engines.trt.runner import TrtEngine, available
from edgesr.spec import DSCONV_OP_TYPE, ModelSpec

TRT_OK, TRT_REASON = available()


@pytest.fixture(scope="module")
def tiny_fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sr_onnx(tmp_path_factory.mktemp("onnx") / "tiny_fp32.onnx")


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
    sr = ort_sr(tiny_fp32, lr)
    assert sr.shape == (1, 3, 18, 22)
    np.testing.assert_allclose(sr, ReferenceEvaluator(str(tiny_fp32)).run(["sr"], {"lr": lr})[0], atol=1e-5)

    plain = tiny_sr_onnx(tmp_path / "plain.onnx", dsconv=False)
    w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(str(plain)).graph.initializer}
    f = torch.nn.functional
    with torch.no_grad():
        features = f.conv2d(torch.from_numpy(lr), w["w1"], w["b1"], padding=1)
        expected = f.pixel_shuffle(f.conv2d(features, w["w3"], w["b3"], padding=1), SCALE).numpy()
    np.testing.assert_allclose(ort_sr(plain, lr), expected, atol=1e-5)



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
