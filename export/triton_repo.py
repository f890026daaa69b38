"""A Triton Inference Server model repository from an exported edgesr ONNX file.

    REPO/<name>/config.pbtxt      the model configuration (Triton's ModelConfig, text format)
    REPO/<name>/1/model.onnx      version 1: the ONNX file, copied unchanged

Two backends:

- ``onnxruntime`` (the default, what ``edgesr-export --format triton`` writes): platform
  ``onnxruntime_onnx``, the model's own graph in Triton's ONNX Runtime backend, with TensorRT
  as the GPU execution accelerator (FP16, an engine cache, the optimization profile from the
  export's tiling advice). Instances are KIND_AUTO: the GPUs where there are some, else the CPU
  (the accelerator then does not apply).
- ``python``: the same tensors and batching, served by Triton's Python backend running ONNX
  Runtime (``1/model.py``, from :mod:`edgesr.export.triton_python_model`), for a server built
  without the ONNX Runtime backend, such as the ``tritonserver`` inside ``nvidia-pytriton``.

The text is written here by hand (the export extra does not need tritonclient); the tests parse
it into tritonclient's ``model_config_pb2.ModelConfig``, Triton's real schema.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesr.errors import ConfigError, ModelFileError
from edgesr.fileio import ensure_folder, write_atomically, write_text_atomically
from edgesr.spec import ModelSpec

BACKENDS = ("onnxruntime", "python")

#: Why these numbers (SR, not classification):
#: - max_batch_size 4: one SR input is large (the deployment graphs peak at about 1,800 float32
#:   values per LR pixel, so one advised 288x288 tile needs about 0.6 GB of activations) and a
#:   single tile already fills a GPU's cores; more than 4 would multiply memory for little more
#:   throughput.
#: - dynamic batching with a short 2 ms queue delay: Triton batches only requests of the same
#:   shape, which SR gets from clients that send fixed-size tiles or video frames; 2 ms is small
#:   next to one tile's inference (tens of ms), so a lone request barely waits.
MAX_BATCH_SIZE = 4
MAX_QUEUE_DELAY_US = 2000
#: TensorRT's engine cache, one folder per model, inside the server's (container's) own /tmp:
#: engines are built once per GPU and profile; relative paths would follow the server's cwd.
TRT_CACHE_ROOT = "/tmp/edgesr_trt_cache"

_ONNX_TO_TRITON = {1: "TYPE_FP32", 10: "TYPE_FP16", 2: "TYPE_UINT8"}  # onnx.TensorProto values
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, kw_only=True)
class TensorInfo:
    name: str
    triton_type: str  # TYPE_FP32 ...
    channels: int  # the fixed C of [N, C, H, W]


@dataclass(frozen=True, kw_only=True)
class TritonModel:
    """What was written: the model folder, its config and the model file."""

    folder: Path
    config: Path
    model_file: Path
    backend: str


def _tensor(value_info, what: str, source: Path) -> TensorInfo:  # noqa: ANN001 (onnx.ValueInfoProto)
    tensor_type = value_info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
    triton_type = _ONNX_TO_TRITON.get(tensor_type.elem_type)
    if len(dims) != 4 or dims[1] <= 0 or triton_type is None:
        raise ModelFileError(
            f"{source}: {what} {value_info.name!r} is not an [N, C, H, W] float/uint8 image "
            f"tensor (dims {dims}, type {tensor_type.elem_type}); export it with edgesr-export"
        )
    return TensorInfo(name=value_info.name, triton_type=triton_type, channels=dims[1])


def read_io(onnx_path: Path) -> tuple[TensorInfo, TensorInfo, ModelSpec]:
    """The graph's one input and one output, and the edgesr spec from its metadata."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelFileError(f"{onnx_path}: expected one input and one output, found "
                             f"{len(inputs)} and {len(graph.output)}; export it with edgesr-export")
    metadata = {p.key: p.value for p in model.metadata_props}
    spec = ModelSpec.from_metadata(metadata, source=str(onnx_path))
    return _tensor(inputs[0], "input", onnx_path), _tensor(graph.output[0], "output", onnx_path), spec


def io_block(kind: str, t: TensorInfo) -> str:
    return (f"{kind} [\n  {{\n    name: \"{t.name}\"\n    data_type: {t.triton_type}\n"
            f"    dims: [ {t.channels}, -1, -1 ]\n  }}\n]\n")


def _trt_accelerator(name: str, lr: TensorInfo, spec: ModelSpec) -> str:
    side = spec.tile_px + 2 * spec.overlap_px  # the advised engine input: tile plus context
    low = max(spec.min_size_px, 1)
    shapes = {"trt_profile_min_shapes": f"{lr.name}:1x{lr.channels}x{low}x{low}",
              "trt_profile_opt_shapes": f"{lr.name}:1x{lr.channels}x{side}x{side}",
              "trt_profile_max_shapes": f"{lr.name}:{MAX_BATCH_SIZE}x{lr.channels}x{side}x{side}"}
    params = {"precision_mode": "FP16", "trt_engine_cache_enable": "1",
              "trt_engine_cache_path": f"{TRT_CACHE_ROOT}/{name}", **shapes}
    lines = "".join(f"      parameters {{ key: \"{k}\" value: \"{v}\" }}\n" for k, v in params.items())
    return ("# TensorRT through ONNX Runtime on GPU instances: FP16, engines cached, one profile up\n"
            f"# to the export's advised tile ({spec.tile_px} px + 2 x {spec.overlap_px} px context):\n"
            "# clients send tiles of at most that side (edgesr's tiling does).\n"
            "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator [ {\n"
            f"      name: \"tensorrt\"\n{lines}    }} ]\n  }}\n}}\n")


def config_text(name: str, lr: TensorInfo, sr: TensorInfo, spec: ModelSpec, *, backend: str) -> str:
    """The config.pbtxt of one model (see the module notes and MAX_BATCH_SIZE's)."""
    head = (f"# edgesr {spec.arch} x{spec.scale} ({spec.precision}); written by edgesr-export\n"
            f"name: \"{name}\"\n")
    head += ("platform: \"onnxruntime_onnx\"\n" if backend == "onnxruntime" else "backend: \"python\"\n")
    batching = (f"# max_batch_size {MAX_BATCH_SIZE}: SR inputs are large and one tile fills a GPU;\n"
                f"# more would multiply activation memory for little throughput.\n"
                f"max_batch_size: {MAX_BATCH_SIZE}\n")
    dynamic = ("# Triton batches requests of equal shape only (fixed-size tiles, video frames);\n"
               f"# {MAX_QUEUE_DELAY_US} us is small next to one tile's inference.\n"
               f"dynamic_batching {{\n  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}\n}}\n")
    instances = "instance_group [\n  {\n    count: 1\n    kind: KIND_AUTO\n  }\n]\n"
    text = head + batching + io_block("input", lr) + io_block("output", sr) + dynamic + instances
    if backend == "onnxruntime":
        text += _trt_accelerator(name, lr, spec)
    return text


def write_triton_repo(onnx_path: str | Path, repo: str | Path, *, name: str | None = None,
                      backend: str = "onnxruntime", overwrite: bool = False) -> TritonModel:
    """Write ``repo/<name>/config.pbtxt`` and ``repo/<name>/1/model.onnx`` (+ ``model.py`` for
    the python backend). ``name`` defaults to the ONNX file's stem. Existing files are refused
    unless ``overwrite``; each file is written atomically."""
    source = Path(onnx_path)
    if backend not in BACKENDS:
        raise ConfigError(f"Triton backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    name = name or source.stem
    if not MODEL_NAME_PATTERN.match(name):
        raise ConfigError(f"Triton model name {name!r}: use letters, digits, '_', '.' or '-'")
    lr, sr, spec = read_io(source)
    folder = Path(repo) / name
    version = ensure_folder(folder / "1", what="Triton model version folder")
    model_file = write_atomically(version / "model.onnx", lambda tmp: shutil.copyfile(source, tmp),
                                  overwrite=overwrite)
    if backend == "python":
        code = Path(__file__).with_name("triton_python_model.py").read_text()
        write_text_atomically(version / "model.py", code, overwrite=overwrite)
    config = write_text_atomically(folder / "config.pbtxt",
                                   config_text(name, lr, sr, spec, backend=backend), overwrite=overwrite)
    return TritonModel(folder=folder, config=config, model_file=model_file, backend=backend)


def export_into_repo(repo: str | Path | None, *, fp16: bool, overwrite: bool,
                     export: Callable[[str], Any]) -> tuple[Any, TritonModel]:
    """``edgesr-export --format triton -o REPO``: ``export(path)`` (an ExportReport) into a
    private temporary folder, then ``REPO/<name>/`` named like the ONNX file would be
    (``lkdn_x4``, ``lkdn_x4_fp16``). The report's path is the repository's copy."""
    if repo is None:
        raise ConfigError("--format triton needs -o REPO, the model repository folder to write into")
    if Path(repo).exists() and not Path(repo).is_dir():
        raise ConfigError(f"-o {str(repo)!r} is a file; --format triton writes a model repository folder")
    with tempfile.TemporaryDirectory(prefix="edgesr-triton-") as tmp:
        report = export(str(Path(tmp) / "model.onnx"))
        name = f"{report.model}_fp16" if fp16 else report.model
        model = write_triton_repo(report.path, repo, name=name, overwrite=overwrite)
    return dataclasses.replace(report, path=model.model_file), model
