"""TrtEngine's plumbing and the cuda-python wrapper, over the stand-ins of fake_trt.py."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from fake_trt import FakeCuda, fake_tensorrt
from trt_tiny_model import tiny_sr_onnx

from edgesr.errors import ConfigError, EngineUnavailableError, ImageError
from edgesr.runtime.engines.trt import build, cuda_memory
from edgesr.runtime.engines.trt.options import TrtOptions
from edgesr.runtime.engines.trt.profile import OptimizationProfile
from edgesr.runtime.engines.trt.runner import TrtEngine, available


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeCuda, dict[str, object]]:
    cuda = FakeCuda()
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
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(cuda, log))
    monkeypatch.setattr(build, "_TRT_LOGGER", [])  # restored afterwards: no fake logger leaks
    cuda_memory._reset_for_tests()
    yield cuda, log
    cuda_memory._reset_for_tests()


def test_build_cache_and_run_plumbing_with_fake_tensorrt(
    fake_trt: tuple[FakeCuda, dict[str, object]], tmp_path: Path
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
    fake_trt: tuple[FakeCuda, dict[str, object]], tmp_path: Path
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


def test_device_info_is_queried_once_per_device(fake_trt: tuple[FakeCuda, dict[str, object]]) -> None:
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


def test_cuda_python_wrapper_with_fake_binding(fake_trt: tuple[FakeCuda, dict[str, object]]) -> None:
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
