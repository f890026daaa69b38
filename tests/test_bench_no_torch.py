"""edgesr-bench on a runtime-only install: torch made unimportable in a subprocess.

A fake ``torch`` package whose import raises goes first on PYTHONPATH, as in
tests/test_runtime_no_torch.py. latency, report and predict work on the shipped .onnx; the
torch subcommands refuse in one line with the install command and exit code 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgesr.weights import shipped_onnx

SCRIPT = Path(sys.executable).with_name("edgesr-bench")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    fake = tmp_path_factory.mktemp("fake_torch")
    for package in ("torch", "onnx"):  # neither is in a runtime-only install
        (fake / package).mkdir()
        (fake / package / "__init__.py").write_text(f'raise ImportError("{package} is deliberately broken here")\n')
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(fake), *filter(None, [environ.get("PYTHONPATH")])])
    environ["EDGESR_CACHE_DIR"] = str(fake / "cache")
    return environ


def bench(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "edgesr.benchmarks.cli"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)


def test_latency_and_report_run_without_torch(env: dict[str, str], tmp_path: Path) -> None:
    assert "deliberately broken" in subprocess.run([sys.executable, "-c", "import torch"], env=env,
                                                   capture_output=True, text=True).stderr
    assert bench("--help", env=env).returncode == 0
    result = bench("latency", shipped_onnx("osffnet_x4"), "--engine", "ort", "--size", "20x16",
                   "--warmup", "0", "--repeats", "2", "--json", tmp_path / "r.json", env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr  # no notice nobody asked for
    doc = json.loads((tmp_path / "r.json").read_text())
    assert "torch" not in doc["machine"]["versions"] and doc["results"][0]["provider_ran"] == "CPUExecutionProvider"
    result = bench("report", tmp_path / "r.json", "--target", "jetson-orin-nano", "-o", tmp_path / "rep.md", env=env)
    assert result.returncode == 0, result.stderr
    assert "| jetson-orin-nano | osffnet_x4 | 20x16 | fp32 |" in (tmp_path / "rep.md").read_text()


@pytest.mark.parametrize("command", [["complexity"], ["tiling"], ["--model", "osffnet"]])
def test_torch_commands_say_what_to_install(env: dict[str, str], command: list[str]) -> None:
    result = bench(*command, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "needs the `export` extra: pip install" in lines[0]


def _resize_only_graph(path: Path, *, mode: str) -> Path:
    """A x2 graph that is one Resize node (so Resize is all its Multi-Adds), with edgesr metadata."""
    import onnx
    from onnx import TensorProto, helper

    from edgesr.spec import ModelSpec

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    node = helper.make_node("Resize", ["lr", "", "scales"], ["sr"], mode=mode)
    graph = helper.make_graph([node], "resize_x2", [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1, 3, "h", "w"])],
                              [helper.make_tensor_value_info("sr", TensorProto.FLOAT, [1, 3, "H", "W"])], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    for key, value in ModelSpec(arch="resize_x2", scale=2).to_metadata().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.save(model, str(path))
    return path


def test_the_resize_guess_is_said_only_where_it_weighs(env: dict[str, str], tmp_path: Path) -> None:
    # Without onnx, Resize counts as linear (4 per output). The shipped osffnet_x4's bilinear ESA
    # upsampling is ~0.1 % of its Multi-Adds: nothing said. A graph that is one cubic Resize
    # (16 per output, so the guess is 4x short) gets the notice, with the bound 3 x 100 %.
    quiet = bench("predict", shipped_onnx("osffnet_x4"), "--target", "jetson-orin-nx", "--size", "80x60", env=env)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = bench("predict", _resize_only_graph(tmp_path / "r.onnx", mode="cubic"), "--target", "jetson-orin-nx",
                 "--size", "64x48", env=env)
    assert loud.returncode == 0, loud.stderr
    assert loud.stderr.strip().splitlines() == [
        "the onnx package is not installed: Resize nodes are counted as linear (4 multiply-adds per output), "
        "which may be off by up to 300.0 % of the Multi-Adds"]
    assert "Resize 100%" in loud.stdout
