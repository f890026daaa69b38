"""The ``tensorrt_plan`` variant of a Triton model repository: a TensorRT engine edgesr built.

    python -m edgesr.export.triton_plan_cli ENGINE --onnx MODEL.onnx -o REPO [--name NAME] [--overwrite]

writes ``REPO/<name>/config.pbtxt`` (platform ``tensorrt_plan``) and ``REPO/<name>/1/model.plan``
(the engine, copied). ENGINE is a file of edgesr's TensorRT cache (``edgesr-run --engine trt``
writes ``<cache>/trt/engines/<digest>.engine`` beside its manifest ``<digest>.json``); the
manifest says what the engine is, and the engine is used only when it matches:

- its bytes hash to the manifest's ``engine_sha256`` and it was built from MODEL.onnx (the
  manifest's ``onnx_sha256``), whose inputs and outputs name the config's tensors;
- ``max_batch_size`` is the optimization profile's largest N (the engine takes no more), and
  the profile's height and width range is written in the config for clients;
- an engine with the DSConv plugin must carry it in AOT form (TensorRT >= 10.9: the kernel
  is inside the engine, so Triton's TensorRT backend needs no plugin library); a JIT plugin
  runs Python at every call, which Triton's TensorRT backend cannot, so it is refused.

A plan is executable code for one TensorRT version and one GPU model: serve it with the
Triton release built on that TensorRT version, on that GPU (the config's comments say which).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from edgesr.errors import ConfigError, ModelFileError
from edgesr.export.triton_repo import (
    MAX_QUEUE_DELAY_US,
    MODEL_NAME_PATTERN,
    TritonModel,
    io_block,
    read_io,
)
from edgesr.fileio import ensure_folder, file_sha256, write_atomically, write_text_atomically

def _manifest(engine: Path) -> dict[str, Any]:
    from edgesr.runtime.engines.trt.cache import read_manifest

    manifest = read_manifest(engine.with_suffix(".json"))
    if manifest is None or not isinstance(manifest.get("key"), dict):
        raise ModelFileError(f"{engine}: no edgesr manifest beside it ({engine.with_suffix('.json').name}); "
                             "pass an engine from edgesr's TensorRT cache (edgesr-run --engine trt builds one)")
    return manifest


def _check_engine(engine: Path, onnx: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's key, once the engine's bytes, ONNX file and plugin form are checked."""
    key = manifest["key"]
    digest = hashlib.sha256(engine.read_bytes()).hexdigest()
    if digest != manifest.get("engine_sha256"):
        raise ModelFileError(f"{engine}: its sha256 does not match its manifest's (modified, truncated "
                             "or replaced); rebuild it with edgesr-run --engine trt")
    if file_sha256(onnx) != key.get("onnx_sha256"):
        raise ModelFileError(f"{engine} was built from another ONNX file than {onnx}; pass the one "
                             "edgesr-run --engine trt was given")
    plugin = str(key.get("plugin_version", ""))
    if "/jit/" in plugin:
        raise ConfigError(f"{engine} holds the DSConv plugin in JIT form ({plugin}), which runs Python "
                          "at every call; Triton's TensorRT backend cannot: rebuild it with TensorRT "
                          ">= 10.9 (the AOT plugin, edgesr's default there)")
    return key


def _profile(key: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    profile = key.get("profile")
    try:
        low, opt, high = ([int(v) for v in profile[k]] for k in ("min", "opt", "max"))
    except (TypeError, KeyError, ValueError):
        raise ModelFileError(f"the engine manifest's profile {profile!r} is not min/opt/max NCHW shapes") from None
    if len(low) != 4 or len(high) != 4 or low[0] != 1:
        raise ModelFileError(f"the engine's profile {profile!r}: expected NCHW shapes starting at batch 1")
    return low, opt, high


def plan_config_text(name: str, onnx: Path, key: dict[str, Any]) -> str:
    lr, sr, spec = read_io(onnx)
    low, opt, high = _profile(key)
    if low[1] != lr.channels:
        raise ModelFileError(f"the engine's profile has {low[1]} channels, {onnx} {lr.channels}")
    batch = high[0]
    text = (f"# edgesr {spec.arch} x{spec.scale}: TensorRT {key.get('trt_version')} engine for "
            f"{key.get('gpu_name')} (sm {key.get('compute_capability')}), {key.get('precision')}\n"
            "# Serve it with the Triton release built on that TensorRT version, on that GPU model.\n"
            f"# Inputs from {low[2]}x{low[3]} to {high[2]}x{high[3]} pixels (H x W, the engine's profile;\n"
            f"# best at {opt[2]}x{opt[3]}): clients send tiles in that range (edgesr's tiling does).\n"
            f"name: \"{name}\"\nplatform: \"tensorrt_plan\"\ndefault_model_filename: \"model.plan\"\n"
            f"# the engine's profile takes at most {batch} images per call\nmax_batch_size: {batch}\n")
    text += io_block("input", lr) + io_block("output", sr)
    if batch > 1:
        text += f"dynamic_batching {{\n  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}\n}}\n"
    return text + "instance_group [\n  {\n    count: 1\n    kind: KIND_GPU\n  }\n]\n"


def write_triton_plan(engine_path: str | Path, onnx_path: str | Path, repo: str | Path, *,
                      name: str | None = None, overwrite: bool = False) -> TritonModel:
    """``repo/<name>/config.pbtxt`` and ``repo/<name>/1/model.plan`` (module notes); ``name``
    defaults to the ONNX file's stem + ``_plan``. Nothing is written unless every check passes."""
    engine, onnx = Path(engine_path), Path(onnx_path)
    for path, what in ((engine, "engine"), (onnx, "ONNX file")):
        if not path.is_file():
            raise ConfigError(f"{what} {str(path)!r} does not exist; check the path")
    name = name or f"{onnx.stem}_plan"
    if not MODEL_NAME_PATTERN.match(name):
        raise ConfigError(f"Triton model name {name!r}: use letters, digits, '_', '.' or '-'")
    key = _check_engine(engine, onnx, _manifest(engine))
    text = plan_config_text(name, onnx, key)
    folder = Path(repo) / name
    version = ensure_folder(folder / "1", what="Triton model version folder")
    model_file = write_atomically(version / "model.plan", lambda tmp: shutil.copyfile(engine, tmp),
                                  overwrite=overwrite)
    config = write_text_atomically(folder / "config.pbtxt", text, overwrite=overwrite)
    return TritonModel(folder=folder, config=config, model_file=model_file, backend="tensorrt_plan")
