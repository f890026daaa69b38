"""The TensorRT engine on a real TensorRT and GPU (marked ``tensorrt``, skipped without them),
compared with ONNX Runtime; and, on the CPU, the graphs those tests build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from oracles import ort_sr
from trt_tiny_model import SCALE, psnr_db, tiny_sr_onnx

from edgesr.errors import ConfigError, EngineUnavailableError
from edgesr.runtime.engines.trt import cuda_memory, engine_bytes
from edgesr.runtime.engines.trt.cache import engine_paths
from edgesr.runtime.engines.trt.onnx_bytes import read_onnx_metadata
from edgesr.runtime.engines.trt.options import TrtOptions
from edgesr.runtime.engines.trt.runner import TrtEngine, available

TRT_OK, TRT_REASON = available()
needs_trt = pytest.mark.skipif(not TRT_OK, reason=f"TensorRT + CUDA GPU not usable: {TRT_REASON}")


@pytest.fixture(scope="module")
def tiny_fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sr_onnx(tmp_path_factory.mktemp("onnx") / "tiny_fp32.onnx")


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
    expected = ort_sr(tiny_fp32, lr)
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
    np.testing.assert_allclose(by_plugin, ort_sr(tiny_fp32, lr), atol=1e-3)


@pytest.mark.tensorrt
@needs_trt
def test_trt_jit_plugin(tiny_fp32: Path, tmp_path: Path) -> None:
    if not cuda_memory.binding_available()[1] == "cuda-python":
        pytest.skip("the JIT plugin launches through cuda-python, which is not installed")
    lr = np.random.default_rng(4).random((2, 3, 16, 16), dtype=np.float32)
    with TrtEngine(model_path=tiny_fp32, options=TrtOptions(cache_dir=tmp_path, plugin_impl="jit")) as engine:
        got = engine.run(lr)
    np.testing.assert_allclose(got, ort_sr(tiny_fp32, lr), atol=1e-3)


@pytest.mark.tensorrt
@needs_trt
def test_trt_fp16_graph_psnr(tmp_path: Path) -> None:
    fp32 = tiny_sr_onnx(tmp_path / "tiny32.onnx", seed=5)
    fp16 = tiny_sr_onnx(tmp_path / "tiny16.onnx", precision="fp16", seed=5)
    lr = np.random.default_rng(5).random((1, 3, 30, 30), dtype=np.float32)
    reference = ort_sr(fp32, lr)
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
        got = ort_sr(fp16, lr)
    except OrtNotImplemented as exc:  # an ORT build without float16 CPU kernels; any other error fails
        pytest.skip(f"ONNX Runtime has no float16 CPU kernel for the graph: {exc}")
    assert psnr_db(got, ort_sr(fp32, lr)) > 40.0
