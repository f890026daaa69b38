"""The runtime on a machine without PyTorch (Jetson / phone installs).

A subprocess gets a fake ``torch`` package first on PYTHONPATH whose import raises, so any
import of torch, direct or indirect, fails there. In that process every ``edgesr.runtime``
module imports (or fails for a reason other than torch, e.g. TensorRT missing), and
``edgesr-run`` upscales an image with an .onnx file end to end. The ONNX file is built with
the onnx package, so this file needs no torch either.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import skimage.data
from onnx import TensorProto, helper, numpy_helper

from edgesr.spec import ModelSpec

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("edgesr-run")


def conv_x2_onnx(path: Path) -> Path:
    """A small x2 SR graph (conv + DepthToSpace) with edgesr metadata, built without torch."""
    w = np.random.default_rng(0).normal(0.0, 0.01, (12, 3, 3, 3)).astype(np.float32)
    for c in range(3):
        w[c * 4 : (c + 1) * 4, c, 1, 1] += 1.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["lr", "w"], ["f"], pads=[1, 1, 1, 1]),
         helper.make_node("DepthToSpace", ["f"], ["sr"], blocksize=2, mode="CRD")],
        "conv_x2",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3, "h2", "w2"])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    for key, value in ModelSpec(arch="conv_x2", scale=2, tile_px=32, overlap_px=4).to_metadata().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    fake = tmp_path_factory.mktemp("fake_torch")
    (fake / "torch").mkdir()
    (fake / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is deliberately broken here (runtime-only install test)")\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(fake), *filter(None, [env.get("PYTHONPATH")])])
    env["EDGESR_CACHE_DIR"] = str(fake / "cache")
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, cwd=cwd)


def _edgesr_run(*args: object) -> list[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "edgesr.runtime.cli"]
    return command + [str(a) for a in args] + ["--threads", "1"]


def test_the_fake_torch_really_breaks_torch(no_torch_env) -> None:
    result = _run([sys.executable, "-c", "import torch"], no_torch_env)
    assert result.returncode != 0 and "deliberately broken" in result.stderr


def test_every_runtime_module_imports_without_torch(no_torch_env) -> None:
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import edgesr.runtime as runtime
        failed = {}
        names = sorted(m.name for m in pkgutil.iter_modules(runtime.__path__))
        for name in names:
            try:
                importlib.import_module(f"edgesr.runtime.{name}")
            except ImportError as exc:  # e.g. tensorrt missing: allowed, but never torch
                failed[name] = str(exc)
        torch_failures = {k: v for k, v in failed.items() if "torch" in v}
        assert not torch_failures, torch_failures
        assert "torch" not in sys.modules
        for required in ("cli", "engines", "ort_engine", "model_file", "upscale", "imageio", "tiling"):
            assert required in names and required not in failed, (required, failed)
        print("imported", len(names) - len(failed), "of", len(names))
    """)
    result = _run([sys.executable, "-c", code], no_torch_env)
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


def test_edgesr_run_works_end_to_end_without_torch(no_torch_env, tmp_path: Path) -> None:
    model = conv_x2_onnx(tmp_path / "conv_x2.onnx")
    photo = np.ascontiguousarray(skimage.data.chelsea()[100:148, 150:214, ::-1])
    assert cv2.imwrite(str(tmp_path / "cat.png"), photo)
    result = _run(_edgesr_run(tmp_path / "cat.png", "-o", tmp_path / "cat_x2.png", "--model", model), no_torch_env)
    assert result.returncode == 0, result.stderr
    assert "engine: ort on CPUExecutionProvider" in result.stdout
    out = cv2.imread(str(tmp_path / "cat_x2.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (96, 128, 3)


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--model", "lmfn_x4"], ["needs PyTorch", ".onnx"]),  # weights ship, its ONNX does not
        (["--model", "osffnet_x4", "--engine", "torch"], ["engine 'torch' is not available", "--engine ort"]),
    ],
)
def test_torch_paths_fail_in_one_line_without_torch(no_torch_env, tmp_path: Path, extra: list[str],
                                                    needles: list[str]) -> None:
    photo = np.ascontiguousarray(skimage.data.chelsea()[100:132, 150:182, ::-1])
    assert cv2.imwrite(str(tmp_path / "cat.png"), photo)
    result = _run(_edgesr_run(tmp_path / "cat.png", "-o", tmp_path / "o.png", *extra), no_torch_env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    assert not (tmp_path / "o.png").exists()
