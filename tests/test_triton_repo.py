"""Triton model repositories (edgesr.export.triton_repo, edgesr-export --format triton).

Oracles: Triton's real ModelConfig schema (tritonclient's model_config_pb2, parsed with
google.protobuf.text_format, which rejects unknown fields and wrong types), and ONNX Runtime's
view of the ONNX file (its inputs, outputs and metadata), not edgesr's reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesr.errors import ConfigError, OutputError
from edgesr.weights import shipped_onnx

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="tritonclient is not installed (pip install 'edgesr[serve]')")
text_format = pytest.importorskip("google.protobuf.text_format")
ort = pytest.importorskip("onnxruntime")

from edgesr.export.triton_repo import write_triton_repo  # noqa: E402 (after the skips)

_TYPES = {"tensor(float)": model_config_pb2.TYPE_FP32, "tensor(float16)": model_config_pb2.TYPE_FP16}


def _parsed(config: Path):  # noqa: ANN202 (ModelConfig)
    return text_format.Parse(config.read_text(), model_config_pb2.ModelConfig())


def _check_against_onnx(config, onnx_file: Path) -> None:  # noqa: ANN001 (ModelConfig)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for tensors, ours in ((session.get_inputs(), config.input), (session.get_outputs(), config.output)):
        assert len(tensors) == len(ours) == 1
        onnx_tensor, tensor = tensors[0], ours[0]
        assert tensor.name == onnx_tensor.name
        assert tensor.data_type == _TYPES[onnx_tensor.type]
        # Triton's dims leave out the batch dimension when max_batch_size > 0: C, H, W
        assert list(tensor.dims) == [onnx_tensor.shape[1], -1, -1]


@pytest.fixture(scope="module")
def shipped() -> Path:
    return shipped_onnx("lkdn_x4")


def test_onnxruntime_config_is_triton_schema_and_matches_the_onnx(tmp_path, shipped) -> None:
    model = write_triton_repo(shipped, tmp_path / "repo")
    assert model.config == tmp_path / "repo" / "lkdn_x4" / "config.pbtxt"
    assert model.model_file.read_bytes() == shipped.read_bytes()
    config = _parsed(model.config)
    assert config.name == "lkdn_x4" and config.platform == "onnxruntime_onnx" and not config.backend
    assert config.max_batch_size == 4  # the choice triton_repo's notes argue for (one tile fills a GPU)
    assert config.HasField("dynamic_batching") and config.dynamic_batching.max_queue_delay_microseconds > 0
    _check_against_onnx(config, model.model_file)
    trt = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in trt] == ["tensorrt"]
    params = dict(trt[0].parameters)
    assert params["precision_mode"] == "FP16" and params["trt_engine_cache_enable"] == "1"
    assert params["trt_engine_cache_path"].startswith("/")
    # the profile ends at the advised engine input: tile + 2 x overlap (ORT's metadata view)
    meta = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"]).get_modelmeta()
    side = int(meta.custom_metadata_map["edgesr.tile_px"]) + 2 * int(meta.custom_metadata_map["edgesr.overlap_px"])
    assert params["trt_profile_max_shapes"] == f"lr:{config.max_batch_size}x3x{side}x{side}"
    assert params["trt_profile_opt_shapes"] == f"lr:1x3x{side}x{side}"


def test_python_backend_config_and_model_file(tmp_path, shipped) -> None:
    model = write_triton_repo(shipped, tmp_path, name="sr_py", backend="python")
    config = _parsed(model.config)
    assert config.backend == "python" and not config.platform and config.name == "sr_py"
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator
    _check_against_onnx(config, model.model_file)
    assert "class TritonPythonModel" in (tmp_path / "sr_py" / "1" / "model.py").read_text()


def test_existing_files_are_refused_then_replaced_with_overwrite(tmp_path, shipped) -> None:
    model = write_triton_repo(shipped, tmp_path)
    model.config.write_text("mine")
    with pytest.raises(OutputError):
        write_triton_repo(shipped, tmp_path)
    assert model.config.read_text() == "mine"
    write_triton_repo(shipped, tmp_path, overwrite=True)
    assert _parsed(model.config).name == "lkdn_x4"


@pytest.mark.parametrize("kwargs", [{"backend": "tensorflow"}, {"name": "../escape"}])
def test_bad_backend_or_name_is_a_config_error(tmp_path, shipped, kwargs) -> None:
    with pytest.raises(ConfigError):
        write_triton_repo(shipped, tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_edgesr_export_format_triton_writes_the_repository(tmp_path, capsys) -> None:
    pytest.importorskip("torch", reason="edgesr-export needs the export extra")
    from edgesr.export.cli import main

    repo = tmp_path / "repo"
    assert main(["--model", "osffnet-tiny_x4", "--no-check", "--format", "triton", "-o", str(repo)]) == 0
    folder = repo / "osffnet-tiny_x4"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "1", "1/model.onnx", "config.pbtxt"]
    config = _parsed(folder / "config.pbtxt")
    assert config.name == "osffnet-tiny_x4" and config.platform == "onnxruntime_onnx"
    _check_against_onnx(config, folder / "1" / "model.onnx")
    assert f"wrote {folder / 'config.pbtxt'}" in capsys.readouterr().out


def test_edgesr_export_format_triton_needs_a_repository_folder(tmp_path, capsys) -> None:
    pytest.importorskip("torch", reason="edgesr-export needs the export extra")
    from edgesr.export.cli import main

    assert main(["--model", "osffnet-tiny_x4", "--no-check", "--format", "triton"]) == 2
    assert "needs -o REPO" in capsys.readouterr().err
