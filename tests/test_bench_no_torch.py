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
    (fake / "torch").mkdir()
    (fake / "torch" / "__init__.py").write_text('raise ImportError("torch is deliberately broken here")\n')
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
    assert result.returncode == 0, result.stderr
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
