"""The tensorrt_plan variant of a Triton model repository (edgesr.export.triton_plan).

TensorRT cannot run here, so the engine is a stand-in byte string stored through edgesr's own
TensorRT cache writer (``cache.save_engine``, which writes the manifest a real build writes).
Oracles: Triton's real ModelConfig schema (tritonclient's model_config_pb2, parsed with
google.protobuf.text_format), ONNX Runtime's view of the ONNX file, and the EngineKey the test
builds (its profile's largest batch is the max_batch_size Triton must be given)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesr.errors import ConfigError, ModelFileError
from edgesr.fileio import file_sha256
from edgesr.weights import shipped_onnx

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="tritonclient is not installed (pip install 'edgesr[serve]')")
text_format = pytest.importorskip("google.protobuf.text_format")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx", reason="the export extra reads the ONNX file")

from edgesr.export.triton_plan_cli import main as plan_main  # noqa: E402 (after the skips)
from edgesr.export.triton_plan import write_triton_plan  # noqa: E402
from edgesr.runtime.engines.trt.cache import EngineKey, save_engine  # noqa: E402
from edgesr.runtime.engines.trt.profile import OptimizationProfile  # noqa: E402

ONNX = shipped_onnx("lkdn_x4")
PROFILE = OptimizationProfile(min=(1, 3, 16, 16), opt=(1, 3, 288, 288), max=(3, 3, 288, 288))
ENGINE_BYTES = b"stand-in for a serialized TensorRT engine"


def _engine(root: Path, *, onnx: Path = ONNX, plugin: str = "") -> Path:
    key = EngineKey(onnx_sha256=file_sha256(onnx), trt_version="10.13.0.35", gpu_name="NVIDIA H100",
                    compute_capability="9.0", precision="fp32", profile=PROFILE, plugin_version=plugin)
    return save_engine(key, ENGINE_BYTES, root=root)


def test_plan_config_is_triton_schema_and_matches_the_onnx_and_the_profile(tmp_path) -> None:
    model = write_triton_plan(_engine(tmp_path / "cache"), ONNX, tmp_path / "repo")
    assert model.config == tmp_path / "repo" / "lkdn_x4_plan" / "config.pbtxt"
    assert model.model_file == tmp_path / "repo" / "lkdn_x4_plan" / "1" / "model.plan"
    assert model.model_file.read_bytes() == ENGINE_BYTES
    config = text_format.Parse(model.config.read_text(), model_config_pb2.ModelConfig())
    assert config.platform == "tensorrt_plan" and config.default_model_filename == "model.plan"
    assert config.max_batch_size == PROFILE.max[0]  # the engine takes no larger batch
    assert config.HasField("dynamic_batching")
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    session = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    for onnx_tensors, ours in ((session.get_inputs(), config.input), (session.get_outputs(), config.output)):
        assert [t.name for t in ours] == [t.name for t in onnx_tensors]
        assert ours[0].data_type == model_config_pb2.TYPE_FP32 and onnx_tensors[0].type == "tensor(float)"
        assert list(ours[0].dims) == [onnx_tensors[0].shape[1], -1, -1]


def test_an_aot_plugin_engine_is_accepted_and_a_jit_one_refused(tmp_path) -> None:
    aot = _engine(tmp_path / "aot", plugin="edgesr::DSConv/v1/aot/triton-3.2.0")
    assert write_triton_plan(aot, ONNX, tmp_path / "repo").config.is_file()
    jit = _engine(tmp_path / "jit", plugin="edgesr::DSConv/v1/jit/triton-3.2.0")
    with pytest.raises(ConfigError, match="JIT form"):
        write_triton_plan(jit, ONNX, tmp_path / "repo2")
    assert not (tmp_path / "repo2").exists()


def test_a_changed_engine_or_another_onnx_is_refused(tmp_path) -> None:
    engine = _engine(tmp_path / "cache")
    with pytest.raises(ModelFileError, match="another ONNX"):
        write_triton_plan(engine, shipped_onnx("osffnet_x4"), tmp_path / "repo")
    engine.write_bytes(ENGINE_BYTES + b"!")
    with pytest.raises(ModelFileError, match="sha256 does not match"):
        write_triton_plan(engine, ONNX, tmp_path / "repo")
    bare = tmp_path / "bare.engine"
    bare.write_bytes(ENGINE_BYTES)
    with pytest.raises(ModelFileError, match="no edgesr manifest"):
        write_triton_plan(bare, ONNX, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_command_line_writes_then_refuses_to_clobber(tmp_path, capsys) -> None:
    argv = [str(_engine(tmp_path / "cache")), "--onnx", str(ONNX), "-o", str(tmp_path / "repo"), "--name", "sr"]
    assert plan_main(argv) == 0
    assert "tensorrt_plan" in capsys.readouterr().out
    assert plan_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0]
