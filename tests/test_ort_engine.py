"""The ONNX Runtime engine, the engine table and ONNX model files, on real ONNX files.

Fixtures export the tiny OSFFNet (``osffnet-tiny_x4``, ESA inside: needs 15 px) with
``torch.onnx.export`` and build small graphs with the onnx package (no metadata, not SR).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesr.errors import (
    ConfigError,
    EngineUnavailableError,
    ImageError,
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
from edgesr.runtime.engines.checks import pad_for_model
from edgesr.runtime.engines.ort import (
    CPU_EP,
    CUDA_EP,
    TENSORRT_EP,
    OrtEngine,
    OrtOptions,
    resolve_providers,
)
from edgesr.runtime.engines.protocol import Engine
from edgesr.runtime.model_file import UNKNOWN_MODEL_MIN_PX, inspect_onnx, spec_from_onnx
from edgesr.spec import ModelSpec

TINY = "osffnet-tiny_x4"
TINY_SPEC = ModelSpec(arch=TINY, scale=4, min_size_px=15, tile_px=64, overlap_px=8)


def _add_metadata(model: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    for key, value in spec.to_metadata().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return model


def _graph_model(nodes: list, inputs: list, outputs: list, inits: list = ()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _lr_info() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, "h", "w"])


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, Path]:
    """(torch model, ONNX with edgesr metadata, same ONNX without metadata)."""
    torch = pytest.importorskip("torch")
    from edgesr.models import create_model

    folder = tmp_path_factory.mktemp("ort_engine")
    model = create_model(TINY)
    raw = folder / "raw.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (torch.rand(1, 3, 24, 24),), str(raw), dynamo=False, opset_version=18,
            input_names=["lr"], output_names=["sr"],
            dynamic_axes={"lr": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "h2", 3: "w2"}},
        )
    proto = onnx.load(str(raw))
    plain = folder / "tiny_nometa.onnx"
    onnx.save(proto, str(plain))
    with_meta = folder / "tiny.onnx"
    onnx.save(_add_metadata(proto, TINY_SPEC), str(with_meta))
    return model, with_meta, plain


@pytest.fixture(scope="session")
def odd_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files that must be refused or probed: classifier, identity, x2 conv, garbage, ..."""
    folder = tmp_path_factory.mktemp("odd_models")
    paths = {}
    classifier = _graph_model(
        [helper.make_node("GlobalAveragePool", ["lr"], ["p"]), helper.make_node("Flatten", ["p"], ["sr"])],
        [_lr_info()], [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3])])
    identity = _graph_model([helper.make_node("Identity", ["lr"], ["sr"])], [_lr_info()],
                            [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3, "h", "w"])])
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.1, (12, 3, 3, 3)).astype(np.float32), "w")
    conv_x2 = _graph_model(
        [helper.make_node("Conv", ["lr", "w"], ["f"], pads=[1, 1, 1, 1]),
         helper.make_node("DepthToSpace", ["f"], ["sr"], blocksize=2, mode="CRD")],
        [_lr_info()], [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3, "h2", "w2"])], [weight])
    for name, proto in (("classifier", classifier), ("identity", identity), ("conv_x2", conv_x2)):
        paths[name] = folder / f"{name}.onnx"
        onnx.save(proto, str(paths[name]))
    paths["identity_meta"] = folder / "identity_meta.onnx"
    onnx.save(_add_metadata(identity, ModelSpec(arch="identity", scale=4)), str(paths["identity_meta"]))
    paths["garbage"] = folder / "garbage.onnx"
    paths["garbage"].write_bytes(b"this is not a protobuf \x00\xff" * 10)
    paths["empty"] = folder / "empty.onnx"
    paths["empty"].write_bytes(b"")
    full = paths["conv_x2"].read_bytes()
    paths["truncated"] = folder / "truncated.onnx"
    paths["truncated"].write_bytes(full[: len(full) // 2])
    return paths


def _torch_sr(model: object, lr: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(lr)).numpy()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


# ------------------------------------------------------------------------ engine


def test_ort_engine_matches_the_torch_model(tiny) -> None:
    model, path, _ = tiny
    lr = np.random.default_rng(1).random((2, 3, 20, 27), dtype=np.float32)
    with OrtEngine(model_path=path, options=OrtOptions(intra_op_threads=1)) as engine:
        assert isinstance(engine, Engine)
        assert engine.spec == spec_from_onnx(path)
        sr = engine.run(lr)
    assert sr.shape == (2, 3, 80, 108) and sr.dtype == np.float32
    np.testing.assert_allclose(sr, _torch_sr(model, lr), atol=1e-4)


def test_info_reports_the_provider_it_got(tiny) -> None:
    _, path, _ = tiny
    with OrtEngine(model_path=path, options=OrtOptions(providers=("cpu",), intra_op_threads=1)) as engine:
        info = engine.info()
        assert engine.providers == [CPU_EP]
    assert (info.name, info.device, info.precision) == ("ort", CPU_EP, "fp32")
    assert info.details["model"] == "tiny.onnx"
    assert info.describe().startswith("ort on CPUExecutionProvider (fp32")


def test_engine_reads_its_spec_from_its_own_session(tiny, odd_models, monkeypatch: pytest.MonkeyPatch) -> None:
    """spec=None: the metadata comes from the engine's session (one session per engine), and
    the SR checks of model_file (check_io) refuse what is not an SR model."""
    import onnxruntime

    _, path, _ = tiny
    made: list[str] = []
    real = onnxruntime.InferenceSession

    def counting(model_path: str, *args: object, **kwargs: object) -> object:
        made.append(model_path)
        return real(model_path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting)
    with OrtEngine(model_path=path, options=OrtOptions(intra_op_threads=1, graph_cache=False)) as engine:
        assert engine.spec == TINY_SPEC
    assert made == [str(path)]
    with pytest.raises(ModelFileError, match="not an SR model") as exc:
        OrtEngine(model_path=odd_models["classifier"])
    _one_line(exc)
    with pytest.raises(ModelFileError, match="pass --scale"):
        OrtEngine(model_path=odd_models["conv_x2"])  # no metadata and no spec


def test_provider_order_and_names() -> None:
    everything = ["AzureExecutionProvider", CPU_EP, CUDA_EP, TENSORRT_EP]
    assert resolve_providers((), everything) == [TENSORRT_EP, CUDA_EP, CPU_EP]
    assert resolve_providers((), ["AzureExecutionProvider", CPU_EP]) == [CPU_EP]
    assert resolve_providers(("cuda", "cpu"), everything) == [CUDA_EP, CPU_EP]
    assert resolve_providers(("TensorrtExecutionProvider",), everything) == [TENSORRT_EP]
    with pytest.raises(UnknownNameError, match="Did you mean 'cuda'"):
        resolve_providers(("cdua",), everything)
    with pytest.raises(EngineUnavailableError, match="onnxruntime-gpu"):
        resolve_providers(("cuda",), [CPU_EP])


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is not None
    and CUDA_EP in __import__("onnxruntime").get_available_providers(),
    reason="this onnxruntime has CUDA",
)
def test_requesting_a_missing_provider_fails_in_one_line(tiny) -> None:
    _, path, _ = tiny
    with pytest.raises(EngineUnavailableError) as exc:
        OrtEngine(model_path=path, options=OrtOptions(providers=("cuda",)))
    assert "CPUExecutionProvider" in _one_line(exc)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="tuple"):
        OrtOptions(providers="cpu")  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError):
        OrtOptions(precision="fp8")
    with pytest.raises(ConfigError):
        OrtOptions(intra_op_threads=-1)


def test_fp16_request_on_an_fp32_graph_says_how_to_export(tiny) -> None:
    _, path, _ = tiny
    with pytest.raises(ConfigError) as exc:
        OrtEngine(model_path=path, options=OrtOptions(precision="fp16"))
    assert "edgesr-export" in _one_line(exc) and "--fp16" in str(exc.value)


def test_inputs_below_min_size_are_replicate_padded(tiny) -> None:
    """ESA needs 15 px: an 8x10 tile is padded (edge), run, and the output cropped."""
    model, path, _ = tiny
    lr = np.random.default_rng(2).random((1, 3, 8, 10), dtype=np.float32)
    with OrtEngine(model_path=path, options=OrtOptions(intra_op_threads=1)) as engine:
        sr = engine.run(lr)
    assert sr.shape == (1, 3, 32, 40)
    padded = np.pad(lr, ((0, 0), (0, 0), (0, 7), (0, 5)), mode="edge")
    np.testing.assert_allclose(sr, _torch_sr(model, padded)[:, :, :32, :40], atol=1e-4)


def test_size_multiple_padding_is_cropped_back() -> None:
    spec = ModelSpec(arch="x", scale=2, size_multiple=8, min_size_px=4)
    lr = np.arange(2 * 3 * 5 * 9, dtype=np.float32).reshape(2, 3, 5, 9)
    padded, h, w = pad_for_model(lr, spec)
    assert padded.shape == (2, 3, 8, 16) and (h, w) == (5, 9)
    assert (padded[:, :, 7, :9] == lr[:, :, 4, :]).all()  # replicated, not zeros


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([[0.5]], "type list"),
        (np.zeros((3, 16, 16), np.float32), "shape"),
        (np.zeros((1, 4, 16, 16), np.float32), "shape"),
        (np.zeros((1, 3, 16, 16), np.uint8), "dtype"),
        (np.full((1, 3, 16, 16), np.nan, np.float32), "NaN"),
        (np.full((1, 3, 16, 16), 255.0, np.float32), "values in"),
    ],
)
def test_bad_inputs_are_refused_in_one_line(tiny, bad: object, match: str) -> None:
    _, path, _ = tiny
    with OrtEngine(model_path=path) as engine, pytest.raises(ImageError, match=match) as exc:
        engine.run(bad)  # type: ignore[arg-type]
    _one_line(exc)


def test_closed_engine_refuses_to_run(tiny) -> None:
    _, path, _ = tiny
    engine = OrtEngine(model_path=path)
    with engine:
        pass
    with pytest.raises(EngineUnavailableError, match="closed"):
        engine.run(np.zeros((1, 3, 16, 16), np.float32))


def test_engine_checks_the_output_shape_of_a_lying_model(odd_models) -> None:
    """Metadata says x4 but the graph is an identity: the first run says so."""
    with OrtEngine(model_path=odd_models["identity_meta"]) as engine:
        with pytest.raises(ModelFileError, match="not an x4 super-resolution model") as exc:
            engine.run(np.zeros((1, 3, 16, 16), np.float32))
    _one_line(exc)


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
    assert "--engine ort" in _one_line(exc)


def test_unknown_engine_names_suggest_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'trt'") as exc:
        open_engine("trtt", model_path="x.onnx")
    assert "auto, openvino, openvino:GPU, openvino:NPU, ort, torch, trt" in _one_line(exc)
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
    _one_line(exc)
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
    _one_line(exc)
    spec = spec_from_onnx(plain, scale=4)
    assert (spec.arch, spec.scale, spec.min_size_px) == ("unknown", 4, UNKNOWN_MODEL_MIN_PX)
    with pytest.raises(ModelFileError, match="upscales by 4.*--scale 4") as exc:
        spec_from_onnx(plain, scale=2)
    _one_line(exc)


def test_scale_contradicting_the_metadata_is_refused(tiny) -> None:
    _, path, _ = tiny
    with pytest.raises(ModelFileError, match="--scale 3 contradicts") as exc:
        spec_from_onnx(path, scale=3)
    _one_line(exc)


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
    _one_line(exc)


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist") as exc:
        spec_from_onnx(tmp_path / "nope.onnx")
    assert "edgesr-export" in _one_line(exc)
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
