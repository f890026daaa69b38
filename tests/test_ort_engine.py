"""The ONNX Runtime engine on real ONNX files (ort_models.py makes them): results against the
torch model, providers, options, padding, refusals. The engine table, the torch engine and
model files are in test_engine_models.py."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgesr.errors import (
    ConfigError,
    EngineUnavailableError,
    ImageError,
    ModelFileError,
    UnknownNameError,
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
from edgesr.runtime.model_file import spec_from_onnx
from edgesr.spec import ModelSpec

from battery_util import one_line
from oracles import torch_sr
from ort_models import TINY_SPEC, odd_models_fixture, tiny_fixture  # noqa: F401 (fixtures)


# ------------------------------------------------------------------------ engine


def test_ort_engine_matches_the_torch_model(tiny) -> None:
    model, path, _ = tiny
    lr = np.random.default_rng(1).random((2, 3, 20, 27), dtype=np.float32)
    with OrtEngine(model_path=path, options=OrtOptions(intra_op_threads=1)) as engine:
        assert isinstance(engine, Engine)
        assert engine.spec == spec_from_onnx(path)
        sr = engine.run(lr)
    assert sr.shape == (2, 3, 80, 108) and sr.dtype == np.float32
    np.testing.assert_allclose(sr, torch_sr(model, lr), atol=1e-4)


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
    one_line(exc)
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
    assert "CPUExecutionProvider" in one_line(exc)


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
    assert "edgesr-export" in one_line(exc) and "--fp16" in str(exc.value)


def test_inputs_below_min_size_are_replicate_padded(tiny) -> None:
    """ESA needs 15 px: an 8x10 tile is padded (edge), run, and the output cropped."""
    model, path, _ = tiny
    lr = np.random.default_rng(2).random((1, 3, 8, 10), dtype=np.float32)
    with OrtEngine(model_path=path, options=OrtOptions(intra_op_threads=1)) as engine:
        sr = engine.run(lr)
    assert sr.shape == (1, 3, 32, 40)
    padded = np.pad(lr, ((0, 0), (0, 0), (0, 7), (0, 5)), mode="edge")
    np.testing.assert_allclose(sr, torch_sr(model, padded)[:, :, :32, :40], atol=1e-4)


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
    one_line(exc)


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
    one_line(exc)
