"""The engine table, the torch engine and ONNX model files (spec from metadata, scale probes,
refusals), on the real ONNX files of ort_models.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesr.errors import (
    ConfigError,
    EngineUnavailableError,
    ModelFileError,
    UnknownNameError,
    WeightsError,
)
from edgesr.runtime.engines import (
    choose_engine,
    engine_available,
    engine_class,
    open_engine,
)
from edgesr.runtime.engines.ort import (
    CPU_EP,
    CUDA_EP,
    OrtEngine,
    OrtOptions,
)
from edgesr.runtime.model_file import UNKNOWN_MODEL_MIN_PX, inspect_onnx, spec_from_onnx

from battery_util import one_line
from ort_models import TINY, TINY_SPEC, odd_models_fixture, tiny_fixture  # noqa: F401 (fixtures)


# ------------------------------------------------------------------------ table


def test_auto_picks_ort_on_the_cpu_here(tiny) -> None:
    if engine_available("trt")[0] or CUDA_EP in __import__("onnxruntime").get_available_providers():
        pytest.skip("this machine has TensorRT or CUDA: auto picks a GPU engine")
    choice = choose_engine("auto")
    assert choice.name == "ort" and "on the CPU" in choice.reason
    _, path, _ = tiny
    with open_engine("auto", model_path=path, options={"ort": OrtOptions(intra_op_threads=1)}) as engine:
        assert isinstance(engine, OrtEngine)
        assert engine.info().device == CPU_EP


def test_explicit_trt_without_tensorrt_is_a_clean_error(tiny) -> None:
    if engine_available("trt")[0]:
        pytest.skip("TensorRT is usable here")
    _, path, _ = tiny
    with pytest.raises(EngineUnavailableError) as exc:
        open_engine("trt", model_path=path)
    assert "--engine ort" in one_line(exc)


def test_unknown_engine_names_suggest_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'trt'") as exc:
        open_engine("trtt", model_path="x.onnx")
    assert "auto, openvino, openvino:GPU, openvino:NPU, ort, torch, trt" in one_line(exc)
    with pytest.raises(UnknownNameError):
        engine_class("onnxruntime")


def test_engine_table_sends_arguments_to_the_right_kind(tiny) -> None:
    _, path, _ = tiny
    with pytest.raises(ConfigError, match="model_path"):
        open_engine("ort", model_name=TINY)
    with pytest.raises(ConfigError, match="weights"):
        open_engine("ort", model_path=path, weights="w.safetensors")
    with pytest.raises(ConfigError, match="auto"):
        open_engine("auto", model_path=path, options=OrtOptions())


# ------------------------------------------------------------------------ torch engine


def test_torch_engine_matches_ort_with_the_same_weights(tiny, tmp_path: Path) -> None:
    from edgesr.weights_io import save_weights

    model, path, _ = tiny
    weights = save_weights(model, tmp_path / "tiny.safetensors")
    lr = np.random.default_rng(3).random((1, 3, 12, 17), dtype=np.float32)  # below min size
    with open_engine("torch", model_name=TINY, weights=weights) as torch_engine:
        info = torch_engine.info()
        assert (info.name, info.device, info.precision) == ("torch", "cpu", "fp32")
        assert info.details["weights"] == "tiny.safetensors"
        assert torch_engine.spec.scale == 4 and torch_engine.spec.min_size_px == 15
        reference = torch_engine.run(lr)
    with OrtEngine(model_path=path) as ort_engine:
        np.testing.assert_allclose(ort_engine.run(lr), reference, atol=1e-4)


def test_torch_engine_weights_rules() -> None:
    pytest.importorskip("torch")
    from edgesr.torch_engine import TorchEngine, TorchOptions
    from edgesr.weights import shipped_weights

    assert shipped_weights("imdn_x3") is None  # a real model without weights is refused
    with pytest.raises(WeightsError, match="--weights") as exc:
        TorchEngine(model_name="imdn_x3")
    one_line(exc)
    engine = TorchEngine(model_name=TINY, options=TorchOptions(allow_untrained=True))
    assert engine.info().details["weights"] == "untrained"
    with pytest.raises(ConfigError, match="CUDA"):
        TorchEngine(model_name=TINY, options=TorchOptions(precision="fp16", allow_untrained=True))
    with pytest.raises(UnknownNameError, match="osffnet-tiny_x4"):
        TorchEngine(model_name="osffnet-tiny_x5")


# ------------------------------------------------------------------------ model files


def test_spec_comes_from_the_metadata(tiny) -> None:
    _, path, _ = tiny
    info = inspect_onnx(path)
    assert info.has_metadata and info.spec == TINY_SPEC
    assert (info.input_name, info.output_name) == ("lr", "sr")
    assert spec_from_onnx(path, scale=4) == TINY_SPEC


def test_no_metadata_asks_for_scale_and_probes_with_it(tiny) -> None:
    _, _, plain = tiny
    with pytest.raises(ModelFileError, match="--scale") as exc:
        spec_from_onnx(plain)
    one_line(exc)
    spec = spec_from_onnx(plain, scale=4)
    assert (spec.arch, spec.scale, spec.min_size_px) == ("unknown", 4, UNKNOWN_MODEL_MIN_PX)
    with pytest.raises(ModelFileError, match="upscales by 4.*--scale 4") as exc:
        spec_from_onnx(plain, scale=2)
    one_line(exc)


def test_scale_contradicting_the_metadata_is_refused(tiny) -> None:
    _, path, _ = tiny
    with pytest.raises(ModelFileError, match="--scale 3 contradicts") as exc:
        spec_from_onnx(path, scale=3)
    one_line(exc)


@pytest.mark.parametrize(
    ("name", "scale", "match"),
    [
        ("classifier", 4, "not an SR model.*shape"),
        ("identity", 4, "not an SR model.*does not upscale"),
        ("garbage", None, "cannot load"),
        ("truncated", None, "cannot load"),
        ("empty", None, "empty"),
    ],
)
def test_bad_model_files_are_refused_in_one_line(odd_models, name: str, scale: int | None, match: str) -> None:
    with pytest.raises(ModelFileError, match=match) as exc:
        spec_from_onnx(odd_models[name], scale=scale)
    one_line(exc)


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist") as exc:
        spec_from_onnx(tmp_path / "nope.onnx")
    assert "edgesr-export" in one_line(exc)
    with pytest.raises(ModelFileError, match="folder"):
        spec_from_onnx(tmp_path)


def test_a_plain_onnx_sr_graph_runs_with_scale(odd_models) -> None:
    spec = spec_from_onnx(odd_models["conv_x2"], scale=2)
    with OrtEngine(model_path=odd_models["conv_x2"], spec=spec) as engine:
        lr = np.random.default_rng(4).random((1, 3, 5, 7), dtype=np.float32)
        out = engine.run(lr)
    assert out.shape == (1, 3, 10, 14)
    # Oracle by hand: a model without metadata runs at 16 px or more (UNKNOWN_MODEL_MIN_PX),
    # the input replicated at the bottom and right; then the fixture's weights (same seed), a
    # zero-padded 3x3 convolution in numpy, DepthToSpace CRD (sr[c, 2y + i, 2x + j] =
    # f[4c + 2i + j, y, x]) and the top-left 10x14 kept.
    assert spec.min_size_px == 16
    grown = np.pad(lr[0], ((0, 0), (0, 16 - 5), (0, 16 - 7)), mode="edge")
    weight = np.random.default_rng(0).normal(0, 0.1, (12, 3, 3, 3)).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(grown, ((0, 0), (1, 1), (1, 1))), (3, 3), axis=(1, 2))
    features = np.einsum("kcij,cyxij->kyx", weight.astype(np.float64), windows)
    expected = features.reshape(3, 2, 2, 16, 16).transpose(0, 3, 1, 4, 2).reshape(3, 32, 32)[:, :10, :14]
    np.testing.assert_allclose(out[0], expected, atol=1e-5)


def test_torch_engine_runs_channels_last_with_the_module_values() -> None:
    """channels_last (the default) changes the layout, not the values: the oracle is the
    module called directly on a contiguous NCHW tensor."""
    torch = pytest.importorskip("torch")
    from edgesr.models.registry import create_model
    from edgesr.torch_engine import TorchEngine, TorchOptions

    model = create_model(TINY)
    lr = np.random.default_rng(5).random((1, 3, 31, 27), dtype=np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(lr)).numpy()
    with TorchEngine.from_module(model, spec=TINY_SPEC) as engine:
        conv = next(m for m in engine._model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        np.testing.assert_allclose(engine.run(lr), expected, atol=1e-5)
    for flag in ("channels_last", "compile"):
        with pytest.raises(ConfigError, match=flag):
            TorchOptions(**{flag: "yes"})
